"""CSV and JSON downloads of the browse pages' tables (``?format=csv`` or ``?format=json``).

Tables are streamed row by row, so exporting a submission with a million results holds one chunk of
rows in memory. Values are raw (ratios stay in [0, 1]); the pages format them for reading.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse

from evaluation.base import MetricSpec, ScoreValue
from leaderboard.boards import BoardRow, PairRecord
from leaderboard.models import InstanceResult, Submission
from leaderboard.serializers import LeaderboardRowSerializer, flatten_row

FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}
# A spreadsheet runs a cell that starts with one of these as a formula; model names are user text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Table:
    name: str
    columns: Sequence[str]
    rows: Iterable[Sequence[Any]]


def requested_format(params) -> str | None:
    fmt = params.get("format")
    return fmt if fmt in FORMATS else None


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class _Line:
    """A file-like sink that hands back what csv.writer wrote, for streaming."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(table: Table) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(table.columns)
    for row in table.rows:
        yield writer.writerow([_csv_cell(v) for v in row])


def _json_chunks(table: Table) -> Iterator[str]:
    yield "["
    for i, row in enumerate(table.rows):
        yield ("," if i else "") + "\n" + json.dumps(dict(zip(table.columns, row)), cls=DjangoJSONEncoder, ensure_ascii=False)
    yield "\n]\n"


def response(table: Table, fmt: str) -> StreamingHttpResponse:
    chunks = _csv_lines(table) if fmt == "csv" else _json_chunks(table)
    resp = StreamingHttpResponse(chunks, content_type=FORMATS[fmt])
    resp["Content-Disposition"] = f'attachment; filename="{table.name}.{fmt}"'
    return resp


def leaderboard_table(slug: str, scenario: str, rows: list[BoardRow], metrics: Sequence[MetricSpec]) -> Table:
    """The rows as the API serves them, scores spread into a value and interval columns per metric."""
    flat = [flatten_row(row, metrics) for row in LeaderboardRowSerializer(rows, many=True).data]
    columns = list(flat[0]) if flat else list(flatten_row({**dict.fromkeys(LeaderboardRowSerializer().fields), "scores": {}}, metrics))
    return Table(f"{slug}-{scenario}-leaderboard", columns, ([r[c] for c in columns] for r in flat))


def scores_table(name: str, submissions: list[Submission], scores: dict[int, dict[str, dict[str, ScoreValue]]]) -> Table:
    """Long format, one row per (submission, scenario, metric): the same shape for one or many submissions."""
    columns = ["submission", "model", "scenario", "metric", "value", "ci_low", "ci_high", "n"]
    body = (
        [s.id, s.model.name, scenario, metric, c.value, c.ci_low, c.ci_high, c.n]
        for s in submissions
        for scenario, cells in scores.get(s.id, {}).items()
        for metric, c in cells.items()
    )
    return Table(name, columns, body)


def results_table(submission: Submission, results: Iterable[InstanceResult], with_references: bool) -> Table:
    """Per-instance results; references only for those allowed to see them (never a hidden test split's)."""
    columns = ["instance", "scenario", "trial", "correct", "error_code", "error_message", "prompt_tokens",
               "completion_tokens", "latency_ms", "prediction", "metrics"] + (["reference"] if with_references else [])
    body = (
        [r.instance.key, r.scenario, r.trial, r.correct, r.error_code, r.error_message, r.prompt_tokens,
         r.completion_tokens, r.latency_ms, r.prediction, r.metrics] + ([r.instance.reference] if with_references else [])
        for r in results
    )
    return Table(f"submission-{submission.id}-results", columns, body)


def head_to_head_table(name: str, pairs: list[PairRecord]) -> Table:
    columns = ["a", "b", "scenario", "a_wins", "b_wins", "ties"]
    body = ([p.a.id, p.b.id, scenario, *counts] for p in pairs for scenario, counts in p.by_scenario.items())
    return Table(name, columns, body)

