"""Scores for OPeRA next-action prediction (DESIGN §1.1), vectorised so a million predictions score in ~1 s.

``next_action_scores(predictions, references)`` takes two equally long lists of dicts with
``session_id, type, name, text, click_type`` (a prediction may also carry ``parse_error``) and returns::

    {metric: {"value": float, "ci_low": float | None, "ci_high": float | None, "n": int}}

for ``exact_match`` (headline), ``action_type_macro_f1``, ``action_type_weighted_f1``,
``click_type_weighted_f1``, ``outcome_accuracy``, ``outcome_weighted_f1`` and ``parse_error_rate``.
``n`` counts steps (steps with a click reference for the click-type metric, sessions for the outcome
metrics). The confidence interval is the 2.5/97.5 percentile of ``bootstrap`` resamples of whole
sessions drawn with a fixed ``seed``; it is ``None`` when ``bootstrap`` is 0 or there is nothing to score.

Definitions:
- exact match: the types are equal; a click also needs the same ``name``; an input the same ``name`` and
  the same text after whitespace collapse and casefold; a terminate matches on type alone.
- a prediction whose type is not click/input/terminate, or that carries a ``parse_error``, is the class
  ``invalid``: it never matches and counts against the recall of the true class.
- action-type F1 follows ``sklearn.metrics.f1_score(labels=["click", "input", "terminate"],
  zero_division=0)`` with ``average="macro"`` / ``"weighted"``.
- click-type weighted F1 follows ``f1_score(average="weighted", zero_division=0)`` over the steps whose
  reference is a click; the predicted label is the prediction's click_type when it predicted a click and
  a label matching no class otherwise.
- session outcome: "purchase" when the session holds a click with click_type ``purchase`` (reference and
  prediction alike); accuracy and weighted F1 over sessions.
"""

from __future__ import annotations

from operator import eq, itemgetter
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from evaluation.metrics.bootstrap import bootstrap_intervals, cluster_sums

ACTION_TYPES: tuple[str, ...] = ("click", "input", "terminate")
CLICK_TYPES: tuple[str, ...] = (
    "purchase", "search", "review", "filter", "quantity", "product_option", "cart_side_bar",
    "suggested_term", "nav_bar", "page_related", "cart_page_select", "product_link", "other",
)
METRIC_NAMES: tuple[str, ...] = (
    "exact_match", "action_type_macro_f1", "action_type_weighted_f1", "click_type_weighted_f1",
    "outcome_accuracy", "outcome_weighted_f1", "parse_error_rate",
)
_CLICK, _INPUT, _TERMINATE, _INVALID = 0, 1, 2, 3


def normalize_text(text: Any) -> str:
    return " ".join(str(text or "").split()).casefold()


def is_exact_match(prediction: dict[str, Any], reference: dict[str, Any]) -> bool:
    """The per-instance exact match, with the same rules as the vectorised scorer."""
    kind = prediction.get("type")
    if prediction.get("parse_error") or kind not in ACTION_TYPES or kind != reference.get("type"):
        return False
    if kind == "terminate":
        return True
    if prediction.get("name") != reference.get("name"):
        return False
    return kind == "click" or normalize_text(prediction.get("text")) == normalize_text(reference.get("text"))


_REF_KEYS = ("session_id", "type", "name", "text", "click_type")
_PRED_KEYS = ("type", "name", "text", "click_type", "parse_error")


class _Codes(dict):
    """A label -> code map; unknown labels get ``default`` or, when growing, the next free code."""

    def __init__(self, labels: Sequence[Any], default: int | None = None) -> None:
        super().__init__((label, i) for i, label in enumerate(labels))
        self.default = default

    def __missing__(self, label: Any) -> int:
        if self.default is not None:
            return self.default
        self[label] = code = len(self)
        return code


def _complete(rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows with every key present and every value hashable (numbers or lists from a model become text)."""
    fix = lambda v: v if v is None or isinstance(v, (str, bool)) else str(v)  # noqa: E731
    return [{key: fix(row.get(key)) for key in keys} for row in rows]


def _encode(predictions: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]]) -> tuple[Any, ...]:
    """The one per-row pass: C-level ``map`` over the dicts, turning every field into integer codes.

    Cache misses on a million scattered dicts dominate, so each field is read once and every loop runs in
    C (``map`` / ``itemgetter``); sessions are factorised by Arrow's hash table.
    """
    n = len(references)
    session_ids = pa.array(list(map(itemgetter("session_id"), references)), type=pa.string()).dictionary_encode()
    if session_ids.null_count:
        raise ValueError("every reference needs a session_id")
    session = session_ids.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    types = _Codes(ACTION_TYPES, default=_INVALID)
    ref_type = np.fromiter(map(types.__getitem__, map(itemgetter("type"), references)), np.int64, n)
    pred_type = np.fromiter(map(types.__getitem__, map(itemgetter("type"), predictions)), np.int64, n)
    # Reference click types outside the 13 (other releases, other sites) still form their own classes.
    ref_click_types = _Codes(CLICK_TYPES)
    ref_ct = np.fromiter(map(ref_click_types.__getitem__, map(itemgetter("click_type"), references)), np.int64, n)
    k = len(ref_click_types)
    pred_click_types = _Codes(list(ref_click_types), default=k)
    pred_ct = np.fromiter(map(pred_click_types.__getitem__, map(itemgetter("click_type"), predictions)), np.int64, n)
    same_name = np.fromiter(map(eq, map(itemgetter("name"), predictions), map(itemgetter("name"), references)), bool, n)
    parse_error = np.fromiter(map(bool, map(itemgetter("parse_error"), predictions)), bool, n)
    pred_type[parse_error] = _INVALID
    pred_ct[pred_type != _CLICK] = k
    return session, len(session_ids.dictionary), ref_type, ref_ct, pred_type, pred_ct, same_name, k


def _f1(tp: np.ndarray, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2TP / (T + P), 0 where T + P = 0 (scikit-learn's zero_division=0)."""
    denom = true + pred
    return np.divide(2.0 * tp, denom, out=np.zeros_like(denom, dtype=np.float64), where=denom > 0)


def _weighted(f1: np.ndarray, true: np.ndarray) -> np.ndarray:
    total = true.sum(axis=-1)
    return np.divide((f1 * true).sum(axis=-1), total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)


class _Layout:
    """Column layout of the per-session sufficient statistics; every metric is a function of their sums."""

    def __init__(self, n_click_types: int) -> None:
        k = n_click_types
        cols = ["em", "steps", "invalid", "clicks"]
        cols += [f"at_{w}{c}" for w in ("tp", "t", "p") for c in range(3)]
        cols += [f"ct_{w}{c}" for w in ("tp", "t", "p") for c in range(k)]
        cols += [f"out{c}" for c in range(4)]  # reference outcome * 2 + predicted outcome
        self.index = {name: i for i, name in enumerate(cols)}
        self.width = len(cols)
        self.k = k

    def block(self, stats: np.ndarray, prefix: str, n: int) -> np.ndarray:
        start = self.index[f"{prefix}0"]
        return stats[..., start:start + n]

    def metrics(self, stats: np.ndarray) -> dict[str, np.ndarray]:
        """Metric values for each row of ``stats`` (shape [..., width])."""
        col = lambda name: stats[..., self.index[name]]  # noqa: E731 - tiny local accessor
        steps = col("steps")
        safe = lambda num, den: np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)  # noqa: E731
        at_tp, at_t, at_p = (self.block(stats, f"at_{w}", 3) for w in ("tp", "t", "p"))
        at_f1 = _f1(at_tp, at_t, at_p)
        ct_tp, ct_t, ct_p = (self.block(stats, f"ct_{w}", self.k) for w in ("tp", "t", "p"))
        out = self.block(stats, "out", 4)  # cells: (no,no) (no,yes) (yes,no) (yes,yes)
        sessions = out.sum(axis=-1)
        out_t = np.stack([out[..., 0] + out[..., 1], out[..., 2] + out[..., 3]], axis=-1)
        out_p = np.stack([out[..., 0] + out[..., 2], out[..., 1] + out[..., 3]], axis=-1)
        out_tp = np.stack([out[..., 0], out[..., 3]], axis=-1)
        return {
            "exact_match": safe(col("em"), steps),
            "action_type_macro_f1": at_f1.mean(axis=-1),
            "action_type_weighted_f1": _weighted(at_f1, at_t),
            "click_type_weighted_f1": _weighted(_f1(ct_tp, ct_t, ct_p), ct_t),
            "outcome_accuracy": safe(out[..., 0] + out[..., 3], sessions),
            "outcome_weighted_f1": _weighted(_f1(out_tp, out_t, out_p), out_t),
            "parse_error_rate": safe(col("invalid"), steps),
        }


def _session_stats(predictions: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]]) -> tuple[_Layout, np.ndarray, np.ndarray]:
    """One encoding pass over the dicts, then per-session sums of every sufficient statistic (and each
    row's session code)."""
    try:
        session, n_sessions, ref_type, ref_ct, pred_type, pred_ct, names_equal, k = _encode(predictions, references)
    except (KeyError, TypeError, pa.ArrowException):  # a missing key or an odd value: redo on cleaned copies
        predictions, references = _complete(predictions, _PRED_KEYS), _complete(references, _REF_KEYS)
        session, n_sessions, ref_type, ref_ct, pred_type, pred_ct, names_equal, k = _encode(predictions, references)
    if (ref_type == _INVALID).any():
        bad = int(np.flatnonzero(ref_type == _INVALID)[0])
        raise ValueError(f"reference {bad} has type {references[bad].get('type')!r}, not one of {ACTION_TYPES}")
    same_type = pred_type == ref_type
    named = same_type & (ref_type != _TERMINATE)
    match = same_type & ((ref_type == _TERMINATE) | names_equal)
    # Text normalisation only runs on the few inputs whose type and name already agree.
    for i in np.flatnonzero(named & names_equal & (ref_type == _INPUT)):
        match[i] = normalize_text(predictions[i].get("text")) == normalize_text(references[i].get("text"))

    layout = _Layout(k)
    stats = np.zeros((n_sessions, layout.width), dtype=np.float64)
    count = lambda mask: np.bincount(session, weights=mask.astype(np.float64), minlength=n_sessions)  # noqa: E731

    def per_class(values: np.ndarray, mask: np.ndarray, n_classes: int) -> np.ndarray:
        keep = mask & (values < n_classes)
        flat = np.bincount(session[keep] * n_classes + values[keep], minlength=n_sessions * n_classes)
        return flat.reshape(n_sessions, n_classes)

    idx = layout.index
    stats[:, idx["em"]] = count(match)
    stats[:, idx["steps"]] = np.bincount(session, minlength=n_sessions)
    stats[:, idx["invalid"]] = count(pred_type == _INVALID)
    is_click = ref_type == _CLICK
    stats[:, idx["clicks"]] = count(is_click)
    everything = np.ones_like(is_click)
    layout.block(stats, "at_tp", 3)[:] = per_class(ref_type, same_type, 3)
    layout.block(stats, "at_t", 3)[:] = per_class(ref_type, everything, 3)
    layout.block(stats, "at_p", 3)[:] = per_class(pred_type, everything, 3)
    layout.block(stats, "ct_tp", k)[:] = per_class(ref_ct, is_click & (ref_ct == pred_ct), k)
    layout.block(stats, "ct_t", k)[:] = per_class(ref_ct, is_click, k)
    layout.block(stats, "ct_p", k)[:] = per_class(pred_ct, is_click, k)
    purchase = CLICK_TYPES.index("purchase")
    ref_buys = count(is_click & (ref_ct == purchase)) > 0
    pred_buys = count((pred_type == _CLICK) & (pred_ct == purchase)) > 0
    cell = ref_buys.astype(np.int64) * 2 + pred_buys.astype(np.int64)
    layout.block(stats, "out", 4)[np.arange(n_sessions), cell] = 1.0
    return layout, stats, session


def next_action_scores(
    predictions: Sequence[dict[str, Any]],
    references: Sequence[dict[str, Any]],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    clusters: Sequence[Any] | None = None,
) -> dict[str, dict[str, Any]]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        return {m: {"value": 0.0, "ci_low": None, "ci_high": None, "n": 0} for m in METRIC_NAMES}
    if clusters is not None and len(clusters) != len(references):
        raise ValueError(f"{len(clusters)} clusters for {len(references)} references")
    layout, stats, session = _session_stats(predictions, references)
    totals = stats.sum(axis=0)
    values = layout.metrics(totals)
    n_sessions = stats.shape[0]
    sizes = {
        "click_type_weighted_f1": int(totals[layout.index["clicks"]]),
        "outcome_accuracy": n_sessions,
        "outcome_weighted_f1": n_sessions,
    }
    # Trials of one session are one cluster: resampled together, they do not pass for independent sessions.
    if clusters is None:
        cluster_stats = stats
    else:
        _, first_rows = np.unique(session, return_index=True)  # sessions are coded 0..n-1: row of each's first step
        cluster_stats = cluster_sums(stats, [clusters[i] for i in first_rows])
    ci = bootstrap_intervals(cluster_stats, layout.metrics, resamples=bootstrap, seed=seed)
    steps = len(references)
    result: dict[str, dict[str, Any]] = {}
    for name in METRIC_NAMES:
        n = sizes.get(name, steps)
        low, high = ci.get(name, (None, None)) if n else (None, None)
        result[name] = {"value": float(values[name]), "ci_low": low, "ci_high": high, "n": n}
    return result
