"""The tables behind the browse pages: leaderboards, a submission's scores and errors, comparisons.

Every function here runs a fixed number of queries whatever the number of models, submissions or
results: the leaderboard picks the best submission per model in SQL (a window function over the headline
score of one tab) and reads the scores of that tab only, as plain tuples rather than model instances.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Any

from django.core.cache import cache
from django.db.models import Count, F, Min, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from evaluation.base import OVERALL, PROMPT_ROLE, MetricSpec, ScoreValue
from evaluation.registry import get_evaluator_class
from leaderboard.models import Benchmark, InstanceResult, Score, Submission, TaskInstance

PASS_K = re.compile(r"^pass_(\d+)$")
# An upper bound only: entries are replaced as soon as the board's version changes.
BOARD_CACHE_SECONDS = 3600
# Boards also kept in this process, unpickled: a key names one version of one board, so an entry never goes
# stale, and unpickling a thousand rows from the shared cache cost ~20 ms of the 50 ms budget per view.
# Rows only ever gain scores (``fill_scores``) after they are cached, the same ones any view would load.
LOCAL_BOARDS = 32
_local_boards: OrderedDict[str, list["BoardRow"]] = OrderedDict()
_local_lock = threading.Lock()


# A leaderboard row carries the few Submission and ModelEntry columns it shows as plain objects: building
# a thousand ORM instances per request cost ~15 ms of the page's 50 ms budget (DESIGN §3).
@dataclass(slots=True)
class BoardModel:
    id: int
    name: str
    organisation: str
    price_prompt_per_mtok: float | None
    price_completion_per_mtok: float | None


@dataclass(slots=True)
class BoardSubmission:
    id: int
    model: BoardModel
    finished_at: datetime | None
    max_instances: int | None
    prompt_tokens: int
    completion_tokens: int
    latency_mean_ms: float | None
    latency_p95_ms: float | None
    is_baseline: bool
    is_verified: bool
    is_flagged: bool
    # The endpoint was asked for the reply's JSON schema (the next-action family's structured outputs).
    structured_output: bool | None

    # The same estimate as Submission's: it only reads the fields above.
    estimated_cost_usd = property(Submission.estimated_cost_usd.fget)


_MODEL_COLUMNS = ("submission__model_id", "submission__model__name", "submission__model__organisation",
                  "submission__model__price_prompt_per_mtok", "submission__model__price_completion_per_mtok")
_SUBMISSION_COLUMNS = ("submission__finished_at", "submission__max_instances", "submission__prompt_tokens",
                       "submission__completion_tokens", "submission__latency_mean_ms", "submission__latency_p95_ms",
                       "submission__is_baseline", "submission__is_verified", "submission__is_flagged",
                       "submission__config__evaluator__structured_output")


@dataclass
class BoardRow:
    rank: int
    submission: BoardSubmission
    scores: dict[str, ScoreValue] = field(default_factory=dict)
    # The headline interval overlaps the leader's: this row is not distinguishable from rank 1.
    near_leader: bool = False

    @property
    def model(self) -> BoardModel:
        return self.submission.model

    @property
    def cost_usd(self) -> float | None:
        return self.submission.estimated_cost_usd

    @property
    def tokens(self) -> int:
        return self.submission.prompt_tokens + self.submission.completion_tokens


def metric_specs(benchmark: Benchmark) -> tuple[MetricSpec, ...]:
    return get_evaluator_class(benchmark.kind).metrics


def headline_spec(benchmark: Benchmark) -> MetricSpec:
    return get_evaluator_class(benchmark.kind).headline_metric()


def pass_k_metrics(metrics: Iterable[MetricSpec]) -> list[tuple[int, MetricSpec]]:
    """The pass^k metrics of a schema (named pass_1 .. pass_n), by k."""
    found = [(int(m.group(1)), spec) for spec in metrics if (m := PASS_K.match(spec.name))]
    return sorted(found, key=lambda pair: pair[0])


def tabs(benchmark: Benchmark) -> list[tuple[str, str]]:
    return [(OVERALL, "Overall")] + [(s.slug, s.name) for s in benchmark.scenarios.all()]


# --- leaderboard ------------------------------------------------------------------------------------


def board(benchmark: Benchmark, scenario: str, *, all_submissions: bool = False) -> list[BoardRow]:
    """The ranked rows of one tab with all their scores (two queries); see ``ranked``."""
    rows = ranked(benchmark, scenario, all_submissions=all_submissions)
    fill_scores(rows, scenario)
    return rows


def ranked(benchmark: Benchmark, scenario: str, *, all_submissions: bool = False, with_metric: str | None = None) -> list[BoardRow]:
    """Rows of one tab with their headline score (and ``with_metric``'s, to sort by it), best first; by
    default only each model's best submission.

    Cached under the benchmark's ``board_version``, which every change that can reorder a board bumps
    (a finished run, moderation, a re-run, an edited model): no stale rows, and the ranking queries run
    once per change instead of once per page view.
    """
    key = f"board:{benchmark.pk}:{benchmark.board_version}:{scenario}:{int(all_submissions)}:{with_metric or ''}"
    with _local_lock:
        rows = _local_boards.get(key)
        if rows is not None:
            _local_boards.move_to_end(key)
            return rows
    rows = cache.get(key)
    if rows is None:
        rows = _ranked(benchmark, scenario, all_submissions=all_submissions)
        if with_metric:
            fill_scores(rows, scenario, metrics=[with_metric])
        cache.set(key, rows, BOARD_CACHE_SECONDS)
    with _local_lock:
        _local_boards[key] = rows
        while len(_local_boards) > LOCAL_BOARDS:
            _local_boards.popitem(last=False)
    return rows


def clear_local_boards() -> None:
    """Forget this process's boards (tests, whose rolled-back benchmarks may reuse an id and a version)."""
    with _local_lock:
        _local_boards.clear()


def _ranked(benchmark: Benchmark, scenario: str, *, all_submissions: bool) -> list[BoardRow]:
    """One query. The best submission per model is picked in SQL by a window function over a narrow
    subquery (ids and the headline value only); the outer query then reads the winners' columns.
    """
    headline = headline_spec(benchmark)
    value = F("value").desc() if headline.higher_is_better else F("value").asc()
    order = [value, F("submission__finished_at").asc(), F("submission_id").asc()]  # ties: the earlier result first
    tab = Score.objects.filter(
        scenario=scenario, metric=headline.name, submission__benchmark=benchmark, submission__status=Submission.Status.FINISHED,
        submission__is_public=True, submission__is_hidden=False,
        # Submissions made under an earlier simulator setting stay on their own pages, off the board.
        submission__simulator_epoch=benchmark.simulator_epoch,
    )
    if all_submissions:
        scores = tab
    else:
        # Reads (submission, value) only: an index-only scan of score_tab_cover_idx on PostgreSQL.
        best = tab.annotate(best=Window(RowNumber(), partition_by=[F("submission__model_id")], order_by=order)).filter(best=1)
        scores = Score.objects.filter(scenario=scenario, metric=headline.name, submission_id__in=best.values("submission_id"))
    columns = scores.order_by(*order).values_list("submission_id", "value", "ci_low", "ci_high", "n", *_MODEL_COLUMNS, *_SUBMISSION_COLUMNS)
    rows = []
    for rank, (sid, v, low, high, n, *rest) in enumerate(columns, start=1):
        model = BoardModel(*rest[: len(_MODEL_COLUMNS)])
        rows.append(BoardRow(rank, BoardSubmission(sid, model, *rest[len(_MODEL_COLUMNS):]), {headline.name: ScoreValue(scenario, headline.name, v, low, high, n)}))
    if rows:
        leader = rows[0].scores[headline.name]
        for row in rows[1:]:
            row.near_leader = bool(row.scores[headline.name].overlaps(leader))
    return rows


def fill_scores(rows: list[BoardRow], scenario: str, metrics: Iterable[str] | None = None) -> None:
    """Add the tab's other scores (or only ``metrics``) to some rows, in one query.

    The page fills only the rows it shows, and, to sort by another metric, that metric for every row.
    """
    by_id = {row.submission.id: row for row in rows}
    if not by_id:
        return
    scores = Score.objects.filter(submission_id__in=list(by_id), scenario=scenario).order_by()
    if metrics is not None:
        scores = scores.filter(metric__in=list(metrics))
    for sid, metric, value, low, high, n in scores.values_list("submission_id", "metric", "value", "ci_low", "ci_high", "n"):
        by_id[sid].scores[metric] = ScoreValue(scenario, metric, value, low, high, n)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    higher_is_better: bool | None  # None: not a quality measure (model name, date)
    metric: MetricSpec | None = None


def columns(metrics: Iterable[MetricSpec]) -> list[Column]:
    """Sortable columns of a leaderboard, in display order: the headline metric first."""
    ordered = sorted(metrics, key=lambda m: not m.headline)
    return (
        [Column("rank", "#", None), Column("model", "Model", None)]
        + [Column(m.name, m.label, m.higher_is_better, m) for m in ordered]
        + [Column("tokens", "Tokens", False), Column("latency", "Latency mean (ms)", False),
           Column("latency_p95", "Latency p95 (ms)", False), Column("cost", "Est. cost (USD)", False),
           Column("date", "Date", None)]
    )


def _sort_value(row: BoardRow, key: str) -> Any:
    s = row.submission
    match key:
        case "rank":
            return row.rank
        case "model":
            return s.model.name.casefold()
        case "tokens":
            return row.tokens
        case "latency":
            return s.latency_mean_ms
        case "latency_p95":
            return s.latency_p95_ms
        case "cost":
            return row.cost_usd
        case "date":
            return s.finished_at
        case _:
            cell = row.scores.get(key)
            return cell.value if cell else None


@dataclass(frozen=True)
class BoardQuery:
    """What the reader asked for: search, filters, sort. Parsed leniently from the query string."""

    q: str = ""
    baselines: bool = True
    all_submissions: bool = False
    sort: str = "rank"
    descending: bool = False

    @classmethod
    def from_params(cls, params, cols: list[Column]) -> "BoardQuery":
        by_key = {c.key: c for c in cols}
        sort = params.get("sort", "rank")
        if sort not in by_key:
            sort = "rank"
        direction = params.get("dir")
        if direction not in ("asc", "desc"):  # default: best first, names A-Z, newest first
            best_high = by_key[sort].higher_is_better
            direction = "desc" if best_high or sort == "date" else "asc"
        return cls(
            q=params.get("q", "").strip()[:200],
            baselines=params.get("baselines", "1") != "0",
            all_submissions=params.get("all") == "1",
            sort=sort,
            descending=direction == "desc",
        )


def select(rows: list[BoardRow], query: BoardQuery) -> list[BoardRow]:
    """Filter and sort ranked rows; ranks stay those of the full board. Missing values sort last."""
    needle = query.q.casefold()
    kept = [
        r for r in rows
        if (query.baselines or not r.submission.is_baseline)
        and (not needle or needle in r.model.name.casefold() or needle in r.model.organisation.casefold())
    ]
    present = [r for r in kept if _sort_value(r, query.sort) is not None]
    missing = [r for r in kept if _sort_value(r, query.sort) is None]
    # Rows arrive in rank order and the sort is stable (also reversed), so ties stay in rank order.
    present.sort(key=lambda r: _sort_value(r, query.sort), reverse=query.descending)
    return present + missing


def scenario_cells(benchmark: Benchmark, submission_ids: list[int], metric: str) -> dict[int, dict[str, ScoreValue]]:
    """One metric on every scenario tab, for a few submissions (the per-scenario chart)."""
    out: dict[int, dict[str, ScoreValue]] = {sid: {} for sid in submission_ids}
    scores = Score.objects.filter(submission_id__in=submission_ids, metric=metric).order_by()
    for sid, scenario, value, low, high, n in scores.values_list("submission_id", "scenario", "value", "ci_low", "ci_high", "n"):
        out[sid][scenario] = ScoreValue(scenario, metric, value, low, high, n)
    return out


# --- one submission ---------------------------------------------------------------------------------


def submission_scores(submission: Submission) -> dict[str, dict[str, ScoreValue]]:
    """scenario -> metric -> cell, in one query."""
    out: dict[str, dict[str, ScoreValue]] = {}
    for scenario, metric, value, low, high, n in submission.scores.values_list("scenario", "metric", "value", "ci_low", "ci_high", "n"):
        out.setdefault(scenario, {})[metric] = ScoreValue(scenario, metric, value, low, high, n)
    return out


def scored_scenarios(submission: Submission, scores: dict[str, dict[str, ScoreValue]]) -> list[str]:
    return [s for s in submission.scenarios if s in scores] + ([OVERALL] if OVERALL in scores else [])


@dataclass(frozen=True)
class ErrorGroup:
    code: str
    count: int
    example: str


def error_groups(submission: Submission) -> list[ErrorGroup]:
    """Per-instance errors grouped by their classified code, most frequent first, with one message each."""
    groups = (
        submission.results.exclude(error_code="").values("error_code")
        .annotate(count=Count("id"), example=Min("error_message")).order_by("-count", "error_code")
    )
    return [ErrorGroup(g["error_code"], g["count"], g["example"]) for g in groups]


@dataclass(frozen=True)
class ResultFilter:
    scenario: str = ""
    failures: bool = False
    error: str = ""

    @classmethod
    def from_params(cls, params, scenarios: list[str]) -> "ResultFilter":
        scenario = params.get("scenario", "")
        return cls(
            scenario=scenario if scenario in scenarios else "",
            failures=params.get("failures") == "1",
            error=params.get("error", "")[:40],
        )

    def apply(self, qs: QuerySet[InstanceResult]) -> QuerySet[InstanceResult]:
        if self.scenario:
            qs = qs.filter(scenario=self.scenario)
        if self.failures:
            qs = qs.filter(correct=False)
        if self.error:
            qs = qs.filter(error_code=self.error)
        return qs


def results(submission: Submission, flt: ResultFilter) -> QuerySet[InstanceResult]:
    qs = submission.results.select_related("instance").order_by("scenario", "instance_id", "trial")
    return flt.apply(qs)


def _is_prompt(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("role") == PROMPT_ROLE


def rebuild_prompts(submission: Submission, results: list[InstanceResult]) -> None:
    """Replace the prompt references in the results' transcripts by the messages they stand for, rebuilt
    from the instances (one query for their inputs). The objects are changed in memory only."""
    stored = [r for r in results if any(map(_is_prompt, r.transcript))]
    if not stored:
        return
    family = get_evaluator_class(submission.benchmark.kind)
    inputs = dict(TaskInstance.objects.filter(id__in={r.instance_id for r in stored}).values_list("id", "input"))
    for result in stored:
        result.transcript = [message for entry in result.transcript for message in (
            family.rebuild_prompt(inputs[result.instance_id], entry) if _is_prompt(entry) else [entry])]


# --- comparing submissions --------------------------------------------------------------------------


@dataclass
class PairRecord:
    """Per-instance head-to-head of two submissions on the (instance, scenario, trial) keys both have."""

    a: Submission
    b: Submission
    by_scenario: dict[str, tuple[int, int, int]]  # scenario -> (a wins, b wins, ties)

    @property
    def total(self) -> tuple[int, int, int]:
        wins, losses, ties = zip(*self.by_scenario.values()) if self.by_scenario else ((), (), ())
        return sum(wins), sum(losses), sum(ties)


def head_to_head(a: Submission, b: Submission) -> PairRecord:
    """One aggregate query over the unique (submission, instance, scenario, trial) index."""
    other = InstanceResult.objects.filter(
        submission=b, instance_id=OuterRef("instance_id"), scenario=OuterRef("scenario"), trial=OuterRef("trial")
    ).values("correct")[:1]
    counts = (
        InstanceResult.objects.filter(submission=a)
        .annotate(other=Subquery(other))
        .filter(other__isnull=False)
        .values("scenario")
        .annotate(
            wins=Count("id", filter=Q(correct=True, other=False)),
            losses=Count("id", filter=Q(correct=False, other=True)),
            ties=Count("id", filter=Q(correct=F("other"))),
        )
        .order_by("scenario")
    )
    return PairRecord(a, b, {c["scenario"]: (c["wins"], c["losses"], c["ties"]) for c in counts})


def head_to_heads(submissions: list[Submission]) -> list[PairRecord]:
    return [head_to_head(a, b) for a, b in combinations(submissions, 2)]


def compare_scores(submissions: list[Submission]) -> dict[int, dict[str, dict[str, ScoreValue]]]:
    """submission id -> scenario -> metric -> cell, for all of them in one query."""
    out: dict[int, dict[str, dict[str, ScoreValue]]] = {s.id: {} for s in submissions}
    rows = Score.objects.filter(submission__in=submissions).values_list("submission_id", "scenario", "metric", "value", "ci_low", "ci_high", "n")
    for sid, scenario, metric, value, low, high, n in rows:
        out[sid].setdefault(scenario, {})[metric] = ScoreValue(scenario, metric, value, low, high, n)
    return out


@dataclass(frozen=True)
class CompareRow:
    scenario: str
    metric: MetricSpec
    cells: list[ScoreValue | None]
    best: int | None  # index of the best cell, None on a tie or when fewer than two have a value


def compare_rows(submissions: list[Submission], scores: dict[int, dict[str, dict[str, ScoreValue]]], metrics: Iterable[MetricSpec]) -> list[CompareRow]:
    """Scenario x metric rows with one cell per submission, scenarios in benchmark order, overall last."""
    seen = {sc for per in scores.values() for sc in per}
    order = [sc for s in submissions for sc in s.scenarios]
    scenarios = list(dict.fromkeys(sc for sc in order if sc in seen)) + ([OVERALL] if OVERALL in seen else [])
    out = []
    for scenario in scenarios:
        for metric in metrics:
            cells = [scores[s.id].get(scenario, {}).get(metric.name) for s in submissions]
            values = [c.value for c in cells if c]
            best = None
            if len(values) >= 2 and len(set(values)) > 1:
                target = max(values) if metric.higher_is_better else min(values)
                best = next(i for i, c in enumerate(cells) if c and c.value == target)
            out.append(CompareRow(scenario, metric, cells, best))
    return out

