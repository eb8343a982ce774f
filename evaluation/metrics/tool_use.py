"""pass^k for repeated tool-use trials (tau-bench's reliability metric), its bootstrap interval, and the
policy's protocol metrics (confirmed writes, asking before acting)."""

from __future__ import annotations

from math import comb
from typing import Any, Callable

import numpy as np

from datasets.tool_use.text import normalise
from evaluation.metrics.bootstrap import bootstrap_intervals
from evaluation.tool_use.simulator import is_confirmation_request, is_question


def pass_hat_k(trials_by_task: dict[str, list[bool]], k: int) -> float:
    """Mean over tasks of C(c, k) / C(n, k), with n trials and c successes per task.

    The chance that k trials drawn without replacement from a task's n all succeed; pass^1 is the plain
    success rate. Every task needs n >= k trials: a task with fewer raises ``ValueError`` rather than
    being left out silently, which would inflate the score with only the easy-to-finish tasks.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if not trials_by_task:
        raise ValueError("no tasks")
    total = 0.0
    for task, trials in trials_by_task.items():
        n, c = len(trials), sum(bool(t) for t in trials)
        if n < k:
            raise ValueError(f"task '{task}' has {n} trials, fewer than k={k}")
        total += comb(c, k) / comb(n, k)
    return total / len(trials_by_task)


def pass_hat_k_ci(trials_by_task: dict[str, list[bool]], k: int, *, resamples: int = 1000, seed: int = 0,
                  level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``pass_hat_k``: tasks resampled, each with all its trials."""
    per_task = [comb(sum(map(bool, t)), k) / comb(len(t), k) for t in trials_by_task.values() if len(t) >= k]
    if len(per_task) != len(trials_by_task):
        raise ValueError(f"every task needs at least k={k} trials")
    if not per_task:
        raise ValueError("no tasks")
    stats = np.column_stack([per_task, np.ones(len(per_task))])  # a replicate's pass^k = sum of values / tasks
    intervals = bootstrap_intervals(stats, lambda sums: {"pass": sums[..., 0] / sums[..., 1]}, resamples=resamples,
                                    seed=seed, level=level)
    return intervals["pass"]


_AFFIRMATIVE = ("yes", "yeah", "yep", "sure", "ok", "okay", "go ahead", "please go ahead", "please do", "confirmed", "correct")


def protocol_counts(messages: list[dict[str, Any]], is_write: Callable[[str], bool]) -> dict[str, float]:
    """The policy's protocol in one transcript, reported beside pass^k and never gating it.

    ``writes``: write calls the agent made; ``confirmed_writes``: those made right after the user said
    yes to the agent's confirmation request (the policy's rule: describe, ask, act only after a yes);
    ``acted``: 1 when the agent made any write; ``asked_first``: 1 when it asked the user a question
    before its first write (what an ambiguous request calls for).
    """
    counts = {"writes": 0.0, "confirmed_writes": 0.0, "acted": 0.0, "asked_first": 0.0}
    asked = False
    last_agent_text, last_user_text = "", ""
    for message in messages:
        role = message.get("role")
        if role == "user":
            last_user_text = str(message.get("content") or "")
            continue
        if role != "assistant":
            continue
        calls = [c for c in message.get("tool_calls") or [] if is_write(str((c.get("function") or {}).get("name") or ""))]
        if calls:
            if not counts["acted"]:
                counts["acted"], counts["asked_first"] = 1.0, float(asked)
            confirmed = is_confirmation_request(last_agent_text) and normalise(last_user_text).startswith(_AFFIRMATIVE)
            counts["writes"] += len(calls)
            counts["confirmed_writes"] += len(calls) if confirmed else 0
            last_user_text = ""  # one yes confirms one step
        elif message.get("content") and not message.get("tool_calls"):
            last_agent_text = str(message["content"])
            asked = asked or is_question(last_agent_text)
    return counts
