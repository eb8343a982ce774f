"""The one shape of each thing the service publishes: used by the API, the CSV/JSON exports and the
OpenAPI schema alike, so they cannot drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

from evaluation.base import MetricSpec


class Pagination(LimitOffsetPagination):
    """Every list of the API: ``?limit`` rows (default 100, never more than 1,000) from ``?offset``."""

    default_limit = 100
    max_limit = 1000


class MetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    higher_is_better = serializers.BooleanField()
    headline = serializers.BooleanField()
    unit = serializers.CharField()


class ScoreCellSerializer(serializers.Serializer):
    value = serializers.FloatField()
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class LeaderboardRowSerializer(serializers.Serializer):
    """One ranked row of a leaderboard tab (reads ``boards.BoardRow``)."""

    rank = serializers.IntegerField()
    submission = serializers.IntegerField(source="submission.id")
    model = serializers.CharField(source="model.name")
    organisation = serializers.CharField(source="model.organisation")
    baseline = serializers.BooleanField(source="submission.is_baseline")
    verified = serializers.BooleanField(source="submission.is_verified")
    flagged = serializers.BooleanField(source="submission.is_flagged")
    partial = serializers.SerializerMethodField(help_text="Evaluated on the first instances of each scenario only.")
    structured_output = serializers.BooleanField(source="submission.structured_output", allow_null=True,
                                                 help_text="The endpoint was asked for the reply's JSON schema.")
    near_leader = serializers.BooleanField(help_text="Its headline interval overlaps the leader's.")
    scores = serializers.DictField(child=ScoreCellSerializer(), help_text="By metric name.")
    prompt_tokens = serializers.IntegerField(source="submission.prompt_tokens")
    completion_tokens = serializers.IntegerField(source="submission.completion_tokens")
    latency_mean_ms = serializers.FloatField(source="submission.latency_mean_ms", allow_null=True)
    latency_p95_ms = serializers.FloatField(source="submission.latency_p95_ms", allow_null=True)
    estimated_cost_usd = serializers.FloatField(source="cost_usd", allow_null=True)
    finished_at = serializers.DateTimeField(source="submission.finished_at")

    def get_partial(self, row: Any) -> bool:
        return row.submission.max_instances is not None

    def to_representation(self, row: Any) -> dict[str, Any]:
        # The fields above, read directly: DRF's generic path costs ~0.25 ms a row, and a page of the API
        # (up to 1,000 rows) must answer within the 50 ms budget. ``tests/test_api.py`` checks both agree.
        s, m = row.submission, row.submission.model
        return {
            "rank": row.rank, "submission": s.id, "model": m.name, "organisation": m.organisation,
            "baseline": s.is_baseline, "verified": s.is_verified, "flagged": s.is_flagged,
            "partial": s.max_instances is not None, "structured_output": s.structured_output, "near_leader": row.near_leader,
            "scores": {name: {"value": c.value, "ci_low": c.ci_low, "ci_high": c.ci_high, "n": c.n} for name, c in row.scores.items()},
            "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
            "latency_mean_ms": s.latency_mean_ms, "latency_p95_ms": s.latency_p95_ms, "estimated_cost_usd": row.cost_usd,
            "finished_at": self.fields["finished_at"].to_representation(s.finished_at) if s.finished_at else None,
        }


def flatten_row(row: dict[str, Any], metrics: Sequence[MetricSpec]) -> dict[str, Any]:
    """A serialized row with its ``scores`` spread into columns (``<metric>``, ``_ci_low``, ``_ci_high``),
    for tables: every metric of the family gets its columns, in schema order, even when the row lacks it."""
    flat = {k: v for k, v in row.items() if k != "scores"}
    before_usage = list(flat).index("prompt_tokens")
    cells: dict[str, Any] = {}
    for m in metrics:
        cell = row["scores"].get(m.name) or {}
        cells.update({m.name: cell.get("value"), f"{m.name}_ci_low": cell.get("ci_low"), f"{m.name}_ci_high": cell.get("ci_high")})
    items = list(flat.items())
    return dict(items[:before_usage] + list(cells.items()) + items[before_usage:])


# Form field → serializer field, for deriving an API request schema from a form.
_FIELD_TYPES: dict[type[forms.Field], type[serializers.Field]] = {
    forms.URLField: serializers.URLField,
    forms.IntegerField: serializers.IntegerField,
    forms.FloatField: serializers.FloatField,
    forms.BooleanField: serializers.BooleanField,
    forms.ModelChoiceField: serializers.SlugField,
    forms.CharField: serializers.CharField,
}


def serializer_from_form(form_class: type[forms.Form], name: str, overrides: dict[str, serializers.Field]) -> type[serializers.Serializer]:
    """A serializer class describing ``form_class``'s fields, bounds and help texts (for the OpenAPI schema;
    the form itself validates). ``overrides`` replaces fields whose JSON shape differs from the form's."""
    fields: dict[str, serializers.Field] = {}
    for field_name, field in form_class.base_fields.items():
        if field_name in overrides:
            fields[field_name] = overrides[field_name]
            continue
        kind = next(t for f, t in _FIELD_TYPES.items() if isinstance(field, f))
        options: dict[str, Any] = {"required": field.required, "help_text": str(field.help_text or "") or None}
        bounds = ("min_value", "max_value") if kind in (serializers.IntegerField, serializers.FloatField) else \
            ("max_length",) if isinstance(field, forms.CharField) else ()
        options.update({bound: getattr(field, bound, None) for bound in bounds})
        if isinstance(field, forms.CharField) and not field.required:
            options["allow_blank"] = True
        if isinstance(field.widget, forms.PasswordInput):
            options["write_only"] = True
        fields[field_name] = kind(**{k: v for k, v in options.items() if v is not None})
    return type(name, (serializers.Serializer,), fields)
