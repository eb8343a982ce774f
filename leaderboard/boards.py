"""The tables behind the browse pages: leaderboards, a submission's scores and errors, comparisons.

Every function here runs a fixed number of queries whatever the number of models, submissions or
results: the leaderboard picks the best submission per model in SQL (a window function over the headline
score of one tab) and reads the scores of that tab only, as plain tuples rather than model instances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from django.db.models import Count, F, FilteredRelation, Min, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber

from evaluation.base import MetricSpec
from evaluation.registry import get_evaluator_class
from leaderboard.jobs import OVERALL
from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Score, Submission

PASS_K = re.compile(r"^pass_(\d+)$")
# The Submission and ModelEntry columns a leaderboard row shows; everything else stays in the database.
ROW_FIELDS = (
    "id", "model_id", "benchmark_id", "finished_at", "max_instances", "prompt_tokens", "completion_tokens",
    "latency_mean_ms", "latency_p95_ms", "is_baseline", "is_verified", "is_flagged",
    "model__id", "model__name", "model__organisation", "model__price_prompt_per_mtok", "model__price_completion_per_mtok",
)


@dataclass(frozen=True)
class Cell:
    """One score as the leaderboard shows it (the fields of ``Score`` that matter, without the ORM cost)."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0

    def overlaps(self, other: "Cell") -> bool | None:
        """Whether the two 95% intervals overlap; None when either has no interval."""
        if None in (self.ci_low, self.ci_high, other.ci_low, other.ci_high):
            return None
        return self.ci_low <= other.ci_high and other.ci_low <= self.ci_high  # type: ignore[operator]


@dataclass
class BoardRow:
    rank: int
    submission: Submission
    scores: dict[str, Cell] = field(default_factory=dict)
    # The headline interval overlaps the leader's: this row is not distinguishable from rank 1.
    near_leader: bool = False

    @property
    def model(self) -> ModelEntry:
        return self.submission.model

    @property
    def cost_usd(self) -> float | None:
        return self.submission.estimated_cost_usd

    @property
    def tokens(self) -> int:
        return self.submission.prompt_tokens + self.submission.completion_tokens

    def headline(self, metric: str) -> Cell | None:
        return self.scores.get(metric)


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


def visible_submissions(benchmark: Benchmark) -> QuerySet[Submission]:
    return Submission.objects.filter(benchmark=benchmark, status=Submission.Status.FINISHED, is_public=True, is_hidden=False)


# --- leaderboard ------------------------------------------------------------------------------------


def board(benchmark: Benchmark, scenario: str, *, all_submissions: bool = False) -> list[BoardRow]:
    """The ranked rows of one tab: by default the best finished public submission of each model.

    Two queries: the ranked headline scores (best per model chosen in SQL), then the other scores of the
    same tab for those submissions.
    """
    headline = headline_spec(benchmark)
    rows = _ranked(benchmark, scenario, headline, all_submissions=all_submissions)
    by_id = {row.submission.id: row for row in rows}
    if by_id:
        scores = Score.objects.filter(submission_id__in=list(by_id), scenario=scenario).exclude(metric=headline.name)
        for sid, metric, value, low, high, n in scores.values_list("submission_id", "metric", "value", "ci_low", "ci_high", "n"):
            by_id[sid].scores[metric] = Cell(value, low, high, n)
    return rows


def _ranked(benchmark: Benchmark, scenario: str, headline: MetricSpec, *, all_submissions: bool) -> list[BoardRow]:
    value = F("h__value").desc() if headline.higher_is_better else F("h__value").asc()
    order = [value, F("finished_at").asc(), F("id").asc()]  # ties: the earlier result ranks first
    qs = (
        visible_submissions(benchmark)
        .annotate(h=FilteredRelation("scores", condition=Q(scores__scenario=scenario, scores__metric=headline.name)))
        .filter(h__value__isnull=False)
        .annotate(h_value=F("h__value"), h_low=F("h__ci_low"), h_high=F("h__ci_high"), h_n=F("h__n"))
        .select_related("model")
        .only(*ROW_FIELDS)
    )
    if not all_submissions:
        qs = qs.annotate(best=Window(RowNumber(), partition_by=[F("model_id")], order_by=order)).filter(best=1)
    rows = [
        BoardRow(rank=i, submission=s, scores={headline.name: Cell(s.h_value, s.h_low, s.h_high, s.h_n)})
        for i, s in enumerate(qs.order_by(*order), start=1)
    ]
    if rows:
        leader = rows[0].scores[headline.name]
        for row in rows[1:]:
            row.near_leader = bool(row.scores[headline.name].overlaps(leader))
    return rows


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


def scenario_cells(benchmark: Benchmark, submission_ids: list[int], metric: str) -> dict[int, dict[str, Cell]]:
    """One metric on every scenario tab, for a few submissions (the per-scenario chart)."""
    out: dict[int, dict[str, Cell]] = {sid: {} for sid in submission_ids}
    scores = Score.objects.filter(submission_id__in=submission_ids, metric=metric)
    for sid, scenario, value, low, high, n in scores.values_list("submission_id", "scenario", "value", "ci_low", "ci_high", "n"):
        out[sid][scenario] = Cell(value, low, high, n)
    return out


# --- one submission ---------------------------------------------------------------------------------


def submission_scores(submission: Submission) -> dict[str, dict[str, Cell]]:
    """scenario -> metric -> cell, in one query."""
    out: dict[str, dict[str, Cell]] = {}
    for scenario, metric, value, low, high, n in submission.scores.values_list("scenario", "metric", "value", "ci_low", "ci_high", "n"):
        out.setdefault(scenario, {})[metric] = Cell(value, low, high, n)
    return out


def scored_scenarios(submission: Submission, scores: dict[str, dict[str, Cell]]) -> list[str]:
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


def compare_scores(submissions: list[Submission]) -> dict[int, dict[str, dict[str, Cell]]]:
    """submission id -> scenario -> metric -> cell, for all of them in one query."""
    out: dict[int, dict[str, dict[str, Cell]]] = {s.id: {} for s in submissions}
    rows = Score.objects.filter(submission__in=submissions).values_list("submission_id", "scenario", "metric", "value", "ci_low", "ci_high", "n")
    for sid, scenario, metric, value, low, high, n in rows:
        out[sid].setdefault(scenario, {})[metric] = Cell(value, low, high, n)
    return out


@dataclass(frozen=True)
class CompareRow:
    scenario: str
    metric: MetricSpec
    cells: list[Cell | None]
    best: int | None  # index of the best cell, None on a tie or when fewer than two have a value


def compare_rows(submissions: list[Submission], scores: dict[int, dict[str, dict[str, Cell]]], metrics: Iterable[MetricSpec]) -> list[CompareRow]:
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


def visible_to(user) -> Q:
    """Submissions a user may open: public ones, their own, or all for staff."""
    if user.is_staff:
        return Q()
    if user.is_authenticated:
        return Q(is_public=True) | Q(owner=user)
    return Q(is_public=True)
