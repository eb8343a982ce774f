"""pass^k for repeated tool-use trials (tau-bench's reliability metric) and its bootstrap interval."""

from __future__ import annotations

import random
from math import comb


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
    """Percentile bootstrap interval of ``pass_hat_k``, resampling tasks (fixed seed: reproducible)."""
    per_task = [comb(sum(map(bool, t)), k) / comb(len(t), k) for t in trials_by_task.values() if len(t) >= k]
    if len(per_task) != len(trials_by_task):
        raise ValueError(f"every task needs at least k={k} trials")
    rng = random.Random(seed)
    n = len(per_task)
    means = sorted(sum(rng.choices(per_task, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2
    return means[int(tail * (resamples - 1))], means[int(round((1 - tail) * (resamples - 1)))]
