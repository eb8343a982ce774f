"""Formatting for the browse pages: metric values, query strings, transcripts as a chat."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None


@register.filter
def metric_value(cell, metric) -> str:
    """A score as the metric's schema says to read it: ratios as percentages."""
    if cell is None:
        return "–"
    return f"{100 * cell.value:.2f}" if metric.unit == "ratio" else f"{cell.value:.2f}"


@register.filter
def metric_ci(cell, metric) -> str:
    if cell is None or cell.ci_low is None or cell.ci_high is None:
        return ""
    scale = 100 if metric.unit == "ratio" else 1
    return f"[{scale * cell.ci_low:.1f}, {scale * cell.ci_high:.1f}]"


@register.filter
def usd(value) -> str:
    if value is None:
        return "–"
    return f"${value:,.2f}" if value >= 1 else f"${value:.4f}"


@register.filter
def ms(value) -> str:
    return "–" if value is None else f"{value:,.0f}"


@register.filter
def next_dir(query, column) -> str:
    """Direction a column header link sorts by: toggles the current column, else best (or A-Z) first."""
    if query.sort == column.key:
        return "asc" if query.descending else "desc"
    return "desc" if column.higher_is_better or column.key == "date" else "asc"


@register.simple_tag
def query(params, **changes) -> str:
    """The current query string with some parameters replaced (None removes one)."""
    q = params.copy()
    for key, value in changes.items():
        q.pop(key, None)
        if value not in (None, ""):
            q[key] = value
    return "?" + q.urlencode() if q else "?"


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _maybe_json(text: str) -> tuple[str, bool]:
    """Pretty-print text that is a JSON object or array (tool arguments and results); else leave it."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(stripped), indent=2, ensure_ascii=False), True
        except ValueError:
            pass
    return text, False


@register.filter
def chat(transcript) -> list[dict[str, Any]]:
    """Messages of a transcript (OpenAI chat format) normalised for the chat view of a drill-down."""
    out = []
    for message in transcript or []:
        if not isinstance(message, dict):
            out.append({"role": "note", "content": str(message), "is_json": False, "tool_calls": []})
            continue
        content, is_json = _maybe_json(_text(message.get("content")))
        calls = []
        for call in message.get("tool_calls") or []:
            fn = call.get("function", call) if isinstance(call, dict) else {}
            args = fn.get("arguments", "")
            arguments, _ = _maybe_json(args if isinstance(args, str) else json.dumps(args))
            calls.append({"name": fn.get("name", "?"), "arguments": arguments, "id": call.get("id", "") if isinstance(call, dict) else ""})
        out.append({
            "role": str(message.get("role", "unknown")), "content": content, "is_json": is_json, "tool_calls": calls,
            "name": message.get("name") or "", "tool_call_id": message.get("tool_call_id") or "",
        })
    return out


def _action(value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and isinstance(value.get("action"), dict):
        return value["action"]
    return value if isinstance(value, dict) else {"value": value}


@register.filter
def action_fields(prediction, reference=None) -> list[dict[str, Any]]:
    """Field-by-field predicted versus reference (a next action's type, target, text); reference may be None."""
    pred, ref = _action(prediction), _action(reference) if reference is not None else {}
    keys = [k for k in dict.fromkeys([*pred, *ref]) if k != "rationale"]  # shown as prose, not a field
    rows = []
    for key in keys:
        p, r = pred.get(key), ref.get(key)
        rows.append({
            "field": key,
            "predicted": "" if p is None else (p if isinstance(p, str) else json.dumps(p, ensure_ascii=False)),
            "reference": "" if r is None else (r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)),
            "differs": reference is not None and p != r,
        })
    return rows


@register.filter
def rationale(prediction) -> str:
    return str(prediction.get("rationale") or "") if isinstance(prediction, dict) else ""


@register.filter
def thousands(value) -> str:
    return "–" if value is None else f"{value:,}"


def _badges(s) -> str:
    out = []
    if s.is_baseline:
        out.append('<span class="badge baseline">baseline</span>')
    if s.is_verified:
        out.append('<span class="badge verified">verified</span>')
    if s.is_flagged:
        out.append('<span class="badge flagged">flagged</span>')
    if s.max_instances:
        out.append(f'<span class="badge partial" title="Evaluated on the first {int(s.max_instances)} instances per scenario">partial</span>')
    if s.structured_output:
        out.append('<span class="badge schema" title="The endpoint was asked for the reply\'s JSON schema (structured outputs)">schema</span>')
    return "".join(out)


@register.simple_tag
def board_rows(rows, columns) -> SafeString:
    """The leaderboard's table body, one ``<tr>`` per row, every value escaped.

    Rendered in Python, not with template tags: at 100 rows the template engine alone took ~30 ms of
    the page's 50 ms budget (DESIGN §3); this takes about 2 ms.
    """
    metric_columns = [c for c in columns if c.metric]
    html = []
    for row in rows:
        s, model = row.submission, row.model
        name = escape(model.name)
        cls = "leader" if row.rank == 1 else "near" if row.near_leader else ""
        near = ' <span class="near-mark" title="95% CI overlaps the leader\'s: not distinguishable from #1">≈</span>' if row.near_leader else ""
        cells = "".join(
            f'<td class="num{" headline" if c.metric.headline else ""}">{metric_value(cell, c.metric)}<span class="ci">{metric_ci(cell, c.metric)}</span></td>'
            for c in metric_columns
            for cell in (row.scores.get(c.key),)
        )
        date = timezone.localtime(s.finished_at).date().isoformat() if s.finished_at else ""
        html.append(
            f'<tr class="{cls}"><td class="pick"><input type="checkbox" name="ids" value="{s.id}" id="pick-{s.id}" aria-label="Compare {name} (#{s.id})"></td>'
            f'<td class="num">{row.rank}{near}</td>'
            f'<td class="model sticky"><a href="{reverse("submission", args=[s.id])}">{name}</a>{_badges(s)}<span class="org">{escape(model.organisation)}</span></td>'
            f'{cells}<td class="num">{thousands(row.tokens)}</td><td class="num">{ms(s.latency_mean_ms)}</td>'
            f'<td class="num">{ms(s.latency_p95_ms)}</td><td class="num">{usd(row.cost_usd)}</td><td class="num small">{date}</td></tr>'
        )
    return mark_safe("\n".join(html))  # noqa: S308 - built from escaped values and constant markup
