"""Plotly charts of a leaderboard, built on the server as figure dicts and embedded as HTML fragments.

Figures are plain dicts, never validated: plotly's ``graph_objects`` validation costs ~10 ms per figure,
a fifth of the page's time budget. plotly.js itself is served locally (``plotly-js``). Each fragment
holds its figure as a JSON data block that ``static/js/charts.js`` draws: no inline script, so the pages
run under a Content-Security-Policy that allows scripts from the site's own files only.

Model names are user text. The figure JSON is safe inside ``<script>`` (plotly's encoder escapes ``<``,
``>`` and ``/``), but plotly.js interprets a few HTML tags in labels, so names are HTML-escaped before
they go into a figure.
"""

from __future__ import annotations

import html
from typing import Any

from plotly.io.json import to_json_plotly

from evaluation.base import MetricSpec, ScoreValue
from leaderboard import boards
from leaderboard.boards import BoardRow
from leaderboard.models import Benchmark

PALETTE = ("#2f6fdb", "#d9822b", "#1f8a4c", "#c2352b", "#7d4cdb", "#0f8b8d", "#a66f00", "#5b6473")
MAX_SERIES = 8
MAX_POINTS = 200  # the scatter shows the best-ranked rows; more is unreadable and costs page time
CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


def _colour(i: int) -> str:
    # Every series gets its own colour (a board may hold only baselines); baselines are told apart by
    # hatching, dashes and open markers instead.
    return PALETTE[i % len(PALETTE)]


def _scale(metric: MetricSpec) -> float:
    return 100.0 if metric.unit == "ratio" else 1.0


def axis_title(metric: MetricSpec) -> str:
    return f"{metric.label} (%)" if metric.unit == "ratio" else metric.label


def label(row: BoardRow) -> str:
    return f"{html.escape(row.model.name)} #{row.submission.id}"


def _error_bars(cells: list[ScoreValue | None], scale: float) -> dict[str, Any]:
    plus = [(c.ci_high - c.value) * scale if c and c.ci_high is not None else 0 for c in cells]
    minus = [(c.value - c.ci_low) * scale if c and c.ci_low is not None else 0 for c in cells]
    return {"type": "data", "array": plus, "arrayminus": minus, "visible": any(plus) or any(minus), "thickness": 1.2}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout = {
        "title": {"text": title, "font": {"size": 15}, "x": 0, "xanchor": "left"},
        "height": 380,
        "margin": {"l": 56, "r": 16, "t": 44, "b": 40},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12, "color": "#1d2330"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0},
        "hoverlabel": {"namelength": -1},
    }
    layout.update(extra)
    return layout


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "gridcolor": "#e6e9ef", "zerolinecolor": "#c7cdd6", "automargin": True, **extra}


def render(figure: dict[str, Any]) -> str:
    return f'<div class="plotly-chart"><script type="application/json">{to_json_plotly({**figure, "config": CONFIG})}</script></div>'


def scenario_bars(rows: list[BoardRow], cells: dict[int, dict[str, ScoreValue]], scenarios: list[tuple[str, str]], metric: MetricSpec) -> str:
    """Grouped bars: the headline metric of the top models on each scenario, with 95% CI error bars."""
    scale = _scale(metric)
    names = [name for _, name in scenarios]
    traces = []
    for i, row in enumerate(rows[:MAX_SERIES]):
        per = [cells.get(row.submission.id, {}).get(slug) for slug, _ in scenarios]
        traces.append({
            "type": "bar", "name": label(row), "x": names, "y": [c.value * scale if c else None for c in per],
            "error_y": _error_bars(per, scale),
            "marker": {"color": _colour(i), "pattern": {"shape": "/" if row.submission.is_baseline else ""}},
            "hovertemplate": "%{x}: %{y:.2f}<extra>%{fullData.name}</extra>",
        })
    layout = _layout(f"{metric.label} by scenario (top {len(traces)}, 95% CI)", barmode="group",
                     xaxis=_axis(""), yaxis=_axis(axis_title(metric), rangemode="tozero"))
    return render({"data": traces, "layout": layout})


def pass_k_curves(rows: list[BoardRow], pass_k: list[tuple[int, MetricSpec]]) -> str:
    """pass^k against k for the top models: how reliability decays when every one of k trials must succeed."""
    ks = [k for k, _ in pass_k]
    traces = []
    for i, row in enumerate(rows[:MAX_SERIES]):
        cells = [row.scores.get(spec.name) for _, spec in pass_k]
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": label(row), "x": ks,
            "y": [c.value * _scale(spec) if c else None for c, (_, spec) in zip(cells, pass_k)],
            "error_y": _error_bars(cells, _scale(pass_k[0][1])),
            "line": {"color": _colour(i), "width": 2, "dash": "dash" if row.submission.is_baseline else "solid"},
            "hovertemplate": "pass^%{x}: %{y:.2f}<extra>%{fullData.name}</extra>",
        })
    # The k axis is labelled by its ticks ("pass^1" ...), so no title collides with the legend below it.
    layout = _layout("pass^k: all k trials succeed", xaxis=_axis("", tickmode="array", tickvals=ks, ticktext=[f"pass^{k}" for k in ks]),
                     yaxis=_axis(axis_title(pass_k[0][1]), rangemode="tozero"))
    return render({"data": traces, "layout": layout})


def score_versus(rows: list[BoardRow], metric: MetricSpec) -> str:
    """Headline score against estimated cost (or mean latency when no model has prices): the efficient frontier.

    Plots the ``MAX_POINTS`` best-ranked rows.
    """
    scale = _scale(metric)
    rows = sorted(rows, key=lambda r: r.rank)[:MAX_POINTS]
    with_cost = [r for r in rows if r.cost_usd is not None]
    if with_cost:
        points, xs, x_title = with_cost, [r.cost_usd for r in with_cost], "Estimated cost (USD)"
    else:
        points = [r for r in rows if r.submission.latency_mean_ms is not None]
        xs, x_title = [r.submission.latency_mean_ms for r in points], "Mean latency (ms)"
    log_x = bool(xs) and min(xs) > 0 and max(xs) / min(xs) > 50
    trace = {
        "type": "scatter", "mode": "markers", "x": xs,
        "y": [r.scores[metric.name].value * scale for r in points],
        "text": [label(r) for r in points],
        "marker": {"size": 9, "opacity": 0.85, "color": PALETTE[0],
                   "symbol": ["circle-open" if r.submission.is_baseline else "circle" for r in points], "line": {"width": 2, "color": PALETTE[0]}},
        "hovertemplate": "%{text}<br>" + x_title + ": %{x:.4g}<br>" + metric.label + ": %{y:.2f}<extra></extra>",
    }
    layout = _layout(f"{metric.label} versus {x_title.split(' (')[0].lower()}", showlegend=False,
                     xaxis=_axis(x_title, type="log" if log_x else "linear", **({} if log_x else {"rangemode": "tozero"})),
                     yaxis=_axis(axis_title(metric)))
    return render({"data": [trace], "layout": layout})


def board_charts(benchmark: Benchmark, scenarios: list[tuple[str, str]], metrics: tuple[MetricSpec, ...],
                 rows: list[BoardRow], top: list[BoardRow]) -> list[str]:
    """The leaderboard's charts: per-scenario bars, pass^k curves (tool use), score versus cost or latency."""
    if not top:
        return []
    headline = next(m for m in metrics if m.headline)
    out = []
    if scenarios:
        cells = boards.scenario_cells(benchmark, [r.submission.id for r in top], headline.name)
        out.append(scenario_bars(top, cells, scenarios, headline))
    if pass_k := boards.pass_k_metrics(metrics):
        out.append(pass_k_curves(top, pass_k))
    out.append(score_versus(rows, headline))
    return out
