"""Leaderboard tables: the rows of one benchmark tab, built with a constant number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluation.base import MetricSpec
from evaluation.registry import get_evaluator_class
from leaderboard.jobs import OVERALL
from leaderboard.models import Benchmark, Score, Submission


@dataclass
class BoardRow:
    rank: int
    submission: Submission
    scores: dict[str, Score] = field(default_factory=dict)

    @property
    def model(self):
        return self.submission.model

    def headline(self, metric: str) -> Score | None:
        return self.scores.get(metric)


def metric_specs(benchmark: Benchmark) -> tuple[MetricSpec, ...]:
    return get_evaluator_class(benchmark.kind).metrics


def tabs(benchmark: Benchmark) -> list[tuple[str, str]]:
    return [(OVERALL, "Overall")] + [(s.slug, s.name) for s in benchmark.scenarios.all()]


def visible_submissions(benchmark: Benchmark):
    return Submission.objects.filter(benchmark=benchmark, status=Submission.Status.FINISHED, is_public=True, is_hidden=False)


def board(benchmark: Benchmark, scenario: str) -> list[BoardRow]:
    """Finished public submissions ranked by the headline metric on one tab (two queries)."""
    headline = get_evaluator_class(benchmark.kind).headline_metric()
    submissions = {s.id: s for s in visible_submissions(benchmark).select_related("model")}
    rows: dict[int, BoardRow] = {}
    for score in Score.objects.filter(submission_id__in=list(submissions), scenario=scenario):
        row = rows.setdefault(score.submission_id, BoardRow(rank=0, submission=submissions[score.submission_id]))
        row.scores[score.metric] = score

    def sort_key(row: BoardRow) -> Any:
        score = row.scores.get(headline.name)
        value = score.value if score else float("-inf") if headline.higher_is_better else float("inf")
        return -value if headline.higher_is_better else value

    ranked = sorted(rows.values(), key=sort_key)
    for i, row in enumerate(ranked, start=1):
        row.rank = i
    return ranked
