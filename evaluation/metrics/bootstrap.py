"""The one bootstrap of both benchmark families: clusters resampled with replacement, fixed seed.

A cluster is the unit that is independent of the others: a session of OPeRA (all its steps, in every
trial), a task of the tool-use family (all its trials). Resampling a cluster keeps its trials together, so
repeated trials narrow an interval only as much as they really add information.

Every metric of both families is a function of sums of per-cluster statistics (counts, per-task values),
so a replicate is a weighted sum: the weights of one replicate are how often each cluster was drawn. The
interval is the percentile interval (numpy's linear interpolation between order statistics) of the
replicates' metric values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Hashable

import numpy as np
import numpy.ma  # noqa: F401 - np.percentile imports it on first use (0.1 s): paid when a worker starts, not when it scores
from numpy.random import default_rng

# Replicates are summed this many at a time, which bounds memory at about chunk x clusters floats.
_CHUNK = 64


def cluster_sums(unit_stats: np.ndarray, clusters: Sequence[Hashable]) -> np.ndarray:
    """Rows of ``unit_stats`` added up per cluster (``clusters[i]`` is row i's cluster), in first-seen order."""
    codes: dict[Hashable, int] = {}
    index = np.fromiter((codes.setdefault(c, len(codes)) for c in clusters), dtype=np.int64, count=len(clusters))
    if len(codes) == len(clusters):  # every unit its own cluster
        return unit_stats
    out = np.zeros((len(codes), unit_stats.shape[1]), dtype=unit_stats.dtype)
    np.add.at(out, index, unit_stats)
    return out


def bootstrap_intervals(
    cluster_stats: np.ndarray,
    statistic: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of ``statistic`` over ``resamples`` resamples of the clusters.

    ``cluster_stats`` has one row per cluster; ``statistic`` maps summed rows (shape ``[..., width]``) to
    named metric values (shape ``[...]``). Returns ``{metric: (low, high)}``; empty without resamples or
    clusters.
    """
    n = cluster_stats.shape[0]
    if resamples <= 0 or n == 0:
        return {}
    rng = default_rng(seed)
    stats32 = cluster_stats.astype(np.float32)  # counts stay exact well past any realistic cluster size
    replicates: dict[str, list[np.ndarray]] = {}
    for start in range(0, resamples, _CHUNK):
        b = min(_CHUNK, resamples - start)
        draws = rng.integers(0, n, size=(b, n), dtype=np.int32)
        weights = np.empty((b, n), dtype=np.float32)
        for row in range(b):  # one bincount per replicate keeps its counters in cache
            weights[row] = np.bincount(draws[row], minlength=n)
        for name, values in statistic((weights @ stats32).astype(np.float64)).items():
            replicates.setdefault(name, []).append(values)
    tail = 100 * (1 - level) / 2
    intervals = {}
    for name, parts in replicates.items():
        low, high = np.percentile(np.concatenate(parts), [tail, 100 - tail])
        intervals[name] = (float(low), float(high))
    return intervals
