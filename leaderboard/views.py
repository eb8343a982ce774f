from __future__ import annotations

import plotly.graph_objects as go
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST
from plotly.offline import get_plotlyjs

from leaderboard import boards, jobs
from leaderboard.forms import SubmissionForm, submissions_left_today
from leaderboard.models import Benchmark, Submission


def home(request):
    benchmarks = Benchmark.objects.prefetch_related("scenarios", "splits")
    return render(request, "leaderboard/home.html", {"benchmarks": benchmarks})


def headline_chart(benchmark: Benchmark, rows: list[boards.BoardRow], metric) -> str:
    """Horizontal bars of the headline metric with 95% CI error bars, best at the top."""
    shown = [r for r in rows if metric.name in r.scores][:25][::-1]
    scale = 100 if metric.unit == "ratio" else 1
    values = [r.scores[metric.name].value * scale for r in shown]
    highs = [((r.scores[metric.name].ci_high or r.scores[metric.name].value) * scale) - v for r, v in zip(shown, values)]
    lows = [v - ((r.scores[metric.name].ci_low or r.scores[metric.name].value) * scale) for r, v in zip(shown, values)]
    fig = go.Figure(
        go.Bar(
            x=values, y=[f"{r.model.name} (#{r.submission.id})" for r in shown], orientation="h",
            error_x={"type": "data", "array": highs, "arrayminus": lows, "visible": True},
            marker_color=["#8a8f98" if r.submission.is_baseline else "#2f6fdb" for r in shown],
        )
    )
    fig.update_layout(
        height=120 + 28 * len(shown), margin={"l": 10, "r": 10, "t": 30, "b": 40},
        title=f"{metric.label}{' (%)' if metric.unit == 'ratio' else ''} with 95% CI",
        xaxis={"title": metric.label}, yaxis={"automargin": True},
    )
    return fig.to_html(include_plotlyjs=False, full_html=False, config={"displaylogo": False, "responsive": True})


def leaderboard(request, slug: str):
    benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
    tabs = boards.tabs(benchmark)
    scenario = request.GET.get("scenario") or tabs[0][0]
    if scenario not in dict(tabs):
        scenario = tabs[0][0]
    metrics = boards.metric_specs(benchmark)
    headline = next(m for m in metrics if m.headline)
    rows = boards.board(benchmark, scenario)
    chart = headline_chart(benchmark, rows, headline) if rows else ""
    return render(request, "leaderboard/leaderboard.html", {
        "benchmark": benchmark, "tabs": tabs, "scenario": scenario, "metrics": metrics, "headline": headline,
        "rows": rows, "chart": chart,
    })


def submission_detail(request, pk: int):
    submission = get_object_or_404(Submission.objects.select_related("model", "benchmark", "split", "owner"), pk=pk)
    if not submission.is_public and submission.owner != request.user and not request.user.is_staff:
        return render(request, "leaderboard/private.html", status=404)
    metrics = boards.metric_specs(submission.benchmark)
    scores = {}
    for score in submission.scores.all():
        scores.setdefault(score.scenario, {})[score.metric] = score
    scenario_order = list(submission.scenarios) + ([jobs.OVERALL] if scores else [])
    results = submission.results.select_related("instance").order_by("scenario", "instance_id", "trial")
    only_failures = request.GET.get("failures") == "1"
    if only_failures:
        results = results.filter(correct=False)
    if request.GET.get("scenario"):
        results = results.filter(scenario=request.GET["scenario"])
    page = Paginator(results, 25).get_page(request.GET.get("page"))
    return render(request, "leaderboard/submission.html", {
        "submission": submission, "metrics": metrics, "scores": scores, "scenario_order": scenario_order,
        "page": page, "only_failures": only_failures, "can_manage": request.user.is_staff or submission.owner_id == request.user.id,
    })


def submission_status(request, pk: int):
    """Polled by the submission page for its live progress bar."""
    s = get_object_or_404(Submission, pk=pk)
    if not s.is_public and s.owner != request.user and not request.user.is_staff:
        return JsonResponse({"detail": "not found"}, status=404)
    return JsonResponse({
        "id": s.id, "status": s.status, "progress_done": s.progress_done, "progress_total": s.progress_total,
        "progress_percent": s.progress_percent, "error_count": s.error_count, "error_code": s.error_code,
        "error_message": s.error_message, "heartbeat_at": s.heartbeat_at.isoformat() if s.heartbeat_at else None,
        "finished_at": s.finished_at.isoformat() if s.finished_at else None,
    })


@login_required
def submit(request):
    form = SubmissionForm(request.POST or None, user=request.user, initial={"benchmark": request.GET.get("benchmark")})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            submission = form.save()
        return redirect("submission", pk=submission.pk)
    return render(request, "leaderboard/submit.html", {"form": form, "left": submissions_left_today(request.user)})


@require_POST
@login_required
def submission_action(request, pk: int, action: str):
    submission = get_object_or_404(Submission, pk=pk)
    if not (request.user.is_staff or submission.owner_id == request.user.id):
        return HttpResponse("Only the owner or staff can do that.", status=403)
    if action == "cancel":
        jobs.cancel(submission)
    elif action == "rerun":
        with transaction.atomic():
            jobs.requeue(submission)
    return redirect("submission", pk=pk)


@cache_control(max_age=86400, public=True)
def plotly_js(request):
    return HttpResponse(get_plotlyjs(), content_type="application/javascript")
