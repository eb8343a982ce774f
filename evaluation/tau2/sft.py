"""Successful tau2 rollouts as chat fine-tuning JSONL, in the shape of Trajectory2Task's ``5_sft.jsonl``.

Each line is ``{"messages": [...], "tools": [...]}``: the policy as system message, the agent's greeting
(tau2's conversations open with it, and the user's first line answers it), the user's turns, the
assistant's turns with ``tool_calls`` and the ``tool`` results, with the domain's tool schemas. Lines are
built and validated by ``evaluation.tool_use.export``; the simulator's closing line is dropped there, so
every example ends on the assistant.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from functools import lru_cache
from typing import Any

from evaluation.tau2.environment import load_environment
from evaluation.tau2.user import AGENT_GREETING
from evaluation.tool_use.export import Rollout, export_rollouts


@lru_cache(maxsize=8)
def _tools(domain: str) -> tuple[dict[str, Any], ...]:
    return tuple(load_environment(domain).tool_schemas())


def tau2_tools(domain: str) -> list[dict[str, Any]]:
    return list(_tools(domain))


def with_greeting(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript with the agent's greeting after the system message, as the user simulator saw it."""
    head = 1 if transcript and transcript[0].get("role") == "system" else 0
    return [*transcript[:head], {"role": "assistant", "content": AGENT_GREETING}, *transcript[head:]]


def export_tau2_rollouts(rollouts: Iterable[Rollout], scenarios: Iterable[str] | None = None) -> Iterator[str]:
    """JSONL lines for the successful rollouts of tau2 domains (of the given scenarios, or all)."""
    greeted = (replace(r, transcript=with_greeting(r.transcript)) for r in rollouts)
    return export_rollouts(greeted, scenarios, tools=tau2_tools)
