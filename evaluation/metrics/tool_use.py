"""pass^k for repeated tool-use trials (tau-bench's reliability metric) and its bootstrap interval."""

from __future__ import annotations

from math import comb

import numpy as np

from evaluation.metrics.bootstrap import bootstrap_intervals


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
