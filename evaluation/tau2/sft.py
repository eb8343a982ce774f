"""Successful tool-use rollouts as chat fine-tuning JSONL, in the shape of Trajectory2Task's ``5_sft.jsonl``.

Both tool-use families export this way (``tau2`` and the generated ``tool_use`` tasks run on the same
environments). Each line is ``{"messages": [...], "tools": [...]}``: the policy as system message, the
agent's greeting (tau2's conversations open with it, and the user's first line answers it), the user's
turns, the assistant's turns with ``tool_calls`` (arguments as JSON strings) and the ``tool`` results, with
the domain's tool schemas. The simulator's closing line (with the stop marker) is dropped, so every example
ends on the assistant. A successful rollout that still holds a malformed call (one the agent recovered
from) is not exported: it would teach the format error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from evaluation.tau2.environment import load_environment
from evaluation.tau2.user import AGENT_GREETING


@dataclass(frozen=True)
class Rollout:
    domain: str
    scenario: str
    success: bool
    transcript: list[dict[str, Any]]


@lru_cache(maxsize=8)
def _tools(domain: str) -> tuple[dict[str, Any], ...]:
    return tuple(load_environment(domain).tool_schemas())


def tau2_tools(domain: str) -> list[dict[str, Any]]:
    return list(_tools(domain))


def with_greeting(transcript: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The transcript with the agent's greeting after the system message, as the user simulator saw it."""
    head = 1 if transcript and transcript[0].get("role") == "system" else 0
    return [*transcript[:head], {"role": "assistant", "content": AGENT_GREETING}, *transcript[head:]]


ROLES = ("system", "user", "assistant", "tool")


def finetune_example(transcript: list[dict[str, Any]], tools: list[dict[str, Any]]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for message in transcript:
        role = message.get("role")
        if role == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or None}
            if message.get("tool_calls"):
                out["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
                    for c in message["tool_calls"]
                ]
            messages.append(out)
        elif role == "tool":
            messages.append({"role": "tool", "tool_call_id": message["tool_call_id"], "content": str(message.get("content") or "")})
        elif role in ("system", "user"):
            messages.append({"role": role, "content": str(message.get("content") or "")})
    while messages and messages[-1]["role"] != "assistant":
        messages.pop()
    return {"messages": messages, "tools": tools}


def export_rollouts(rollouts: Iterable[Rollout], scenarios: Iterable[str] | None = None) -> Iterator[str]:
    """JSONL lines for the successful rollouts (of the given scenarios, or all), with tau2's tools of each
    rollout's domain and the agent's greeting the user answered first."""
    wanted = set(scenarios) if scenarios is not None else None
    for rollout in rollouts:
        if not rollout.success or (wanted is not None and rollout.scenario not in wanted):
            continue
        example = finetune_example(with_greeting(rollout.transcript), tau2_tools(rollout.domain))
        line = json.dumps(example, ensure_ascii=False)
        try:
            validate_line(line)
        except ValueError:
            continue
        yield line


def validate_line(line: str) -> dict[str, Any]:
    """Parse one fine-tuning line and check the format; raise ``ValueError`` saying what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list) or not data["messages"]:
        raise ValueError("'messages' must be a non-empty list")
    tools = data.get("tools", [])
    if not isinstance(tools, list):
        raise ValueError("'tools' must be a list")
    names = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not isinstance(function.get("name"), str) \
                or not isinstance(function.get("parameters", {}), dict):
            raise ValueError(f"tools[{i}] must be {{'type': 'function', 'function': {{'name', 'parameters'}}}}")
        names.add(function["name"])
    open_calls: set[str] = set()
    for i, message in enumerate(data["messages"]):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"messages[{i}] needs a role in {ROLES}")
        role, content = message["role"], message.get("content")
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if content is None and not calls:
                raise ValueError(f"messages[{i}]: an assistant message needs content or tool_calls")
            for call in calls:
                function = call.get("function") or {}
                if call.get("type") != "function" or not isinstance(call.get("id"), str) or not isinstance(function.get("arguments"), str):
                    raise ValueError(f"messages[{i}]: each tool call needs an id, type 'function' and string arguments")
                if names and function.get("name") not in names:
                    raise ValueError(f"messages[{i}]: tool '{function.get('name')}' is not in 'tools'")
                try:
                    if not isinstance(json.loads(function["arguments"]), dict):
                        raise ValueError
                except ValueError:
                    raise ValueError(f"messages[{i}]: arguments of '{function.get('name')}' are not a JSON object") from None
                open_calls.add(call["id"])
        elif role == "tool":
            if message.get("tool_call_id") not in open_calls:
                raise ValueError(f"messages[{i}]: tool result for an unknown tool_call_id")
            open_calls.discard(message["tool_call_id"])
        if content is not None and not isinstance(content, str):
            raise ValueError(f"messages[{i}]: content must be a string")
    if data["messages"][-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    return data
