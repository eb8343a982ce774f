"""Browse pages. Views parse the request and pick a template; tables live in ``boards``, charts in
``charts`` and downloads in ``exports``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST
from plotly.offline import get_plotlyjs

from evaluation.base import OVERALL
from leaderboard import boards, charts, exports
from leaderboard.access import can_manage, can_see_references, shown_results, visible_submissions
from leaderboard.forms import SubmissionForm, submissions_left_today
from leaderboard.models import Benchmark, Submission
from leaderboard.submissions import rerun

BOARD_PAGE_SIZE = 100
RESULTS_PAGE_SIZE = 20
MAX_COMPARE = 6


def home(request):
    entries = Count("submissions__model", distinct=True, filter=Q(
        submissions__status=Submission.Status.FINISHED, submissions__is_public=True, submissions__is_hidden=False))
    benchmarks = Benchmark.objects.prefetch_related("scenarios", "splits").annotate(models_ranked=entries)
    return render(request, "leaderboard/home.html", {"benchmarks": benchmarks})


def leaderboard(request, slug: str):
    benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
    tabs = boards.tabs(benchmark)
    scenario = request.GET.get("scenario", OVERALL)
    if scenario not in dict(tabs):
        scenario = OVERALL
    metrics = boards.metric_specs(benchmark)
    headline = boards.headline_spec(benchmark)
    columns = boards.columns(metrics)
    query = boards.BoardQuery.from_params(request.GET, columns)
    secondary_sort = query.sort if query.sort in {m.name for m in metrics} - {headline.name} else None
    ranked = boards.ranked(benchmark, scenario, all_submissions=query.all_submissions, with_metric=secondary_sort)
    fmt = exports.requested_format(request.GET)
    if fmt:
        boards.fill_scores(ranked, scenario)
    rows = boards.select(ranked, query)
    if fmt:
        return exports.response(exports.leaderboard_table(benchmark.slug, scenario, rows, metrics), fmt)

    page = Paginator(rows, BOARD_PAGE_SIZE).get_page(request.GET.get("page"))
    top = sorted(rows, key=lambda r: r.rank)[: charts.MAX_SERIES]
    boards.fill_scores([*page.object_list, *top], scenario)  # only rows on screen and in the charts show them all
    return render(request, "leaderboard/leaderboard.html", {
        "benchmark": benchmark, "tabs": tabs, "scenario": scenario, "metrics": metrics, "headline": headline,
        "columns": columns, "query": query, "page": page, "pass_k": boards.pass_k_metrics(metrics),
        "total": len(ranked), "charts": charts.board_charts(benchmark, tabs[1:], metrics, rows, top),
    })


def _submission_or_404(request, pk: int) -> Submission | None:
    qs = Submission.objects.select_related("model", "benchmark", "split", "owner")
    return visible_submissions(request.user, qs).filter(pk=pk).first()


def submission_detail(request, pk: int):
    submission = _submission_or_404(request, pk)
    if submission is None:
        return render(request, "leaderboard/private.html", status=404)
    scores = boards.submission_scores(submission)
    flt = boards.ResultFilter.from_params(request.GET, submission.scenarios)
    # Hidden test references never leave the server, neither on the page nor in an export: not the
    # reference itself, nor the expected values a verifier wrote into a prediction.
    show_references = can_see_references(request.user, submission)
    results = boards.results(submission, flt)
    if fmt := exports.requested_format(request.GET):
        if request.GET.get("table") == "scores":
            table = exports.scores_table(f"submission-{submission.id}-scores", [submission], {submission.id: scores})
        else:
            shown = shown_results(request.user, submission, results.iterator(chunk_size=2000))
            table = exports.results_table(submission, shown, show_references)
        return exports.response(table, fmt)
    page = Paginator(results.defer("instance__input"), RESULTS_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(shown_results(request.user, submission, page.object_list))
    boards.rebuild_prompts(submission, page.object_list)
    return render(request, "leaderboard/submission.html", {
        "submission": submission, "metrics": boards.metric_specs(submission.benchmark), "scores": scores,
        "scenario_order": boards.scored_scenarios(submission, scores), "errors": boards.error_groups(submission),
        "filter": flt, "page": page, "show_references": show_references,
        "can_manage": can_manage(request.user, submission),
    })


def submission_status(request, pk: int):
    """Polled by the submission page for its live progress bar."""
    s = _submission_or_404(request, pk)
    if s is None:
        return JsonResponse({"detail": "not found"}, status=404)
    return JsonResponse({
        "id": s.id, "status": s.status, "progress_done": s.progress_done, "progress_total": s.progress_total,
        "progress_percent": s.progress_percent, "error_count": s.error_count, "error_code": s.error_code,
        "error_message": s.error_message, "heartbeat_at": s.heartbeat_at.isoformat() if s.heartbeat_at else None,
        "finished_at": s.finished_at.isoformat() if s.finished_at else None,
    })


def _compare_ids(params) -> list[int]:
    raw = ",".join(params.getlist("ids"))
    ids = [int(part) for part in raw.replace(" ", ",").split(",") if part.strip().isdigit()]
    return list(dict.fromkeys(ids))[:MAX_COMPARE]


def compare(request):
    ids = _compare_ids(request.GET)
    visible = visible_submissions(request.user, Submission.objects.select_related("model", "benchmark"))
    found = {s.id: s for s in visible.filter(id__in=ids)}
    submissions = [found[i] for i in ids if i in found]
    context = {"ids": ",".join(map(str, ids)), "submissions": submissions, "max_compare": MAX_COMPARE}
    benchmarks = {s.benchmark_id for s in submissions}
    if len(submissions) < 2 or len(benchmarks) > 1:
        context["problem"] = (
            "Submissions of different benchmarks measure different things; compare within one benchmark."
            if len(benchmarks) > 1 else "Give the ids of two or more submissions you can see, e.g. ?ids=12,15."
        )
        return render(request, "leaderboard/compare.html", context, status=400 if ids else 200)
    scores = boards.compare_scores(submissions)
    pairs = boards.head_to_heads(submissions)
    if fmt := exports.requested_format(request.GET):
        name = "compare-" + "-".join(map(str, ids))
        if request.GET.get("table") == "instances":
            return exports.response(exports.head_to_head_table(name + "-instances", pairs), fmt)
        return exports.response(exports.scores_table(name + "-scores", submissions, scores), fmt)
    context.update({
        "benchmark": submissions[0].benchmark, "pairs": pairs,
        "rows": boards.compare_rows(submissions, scores, boards.metric_specs(submissions[0].benchmark)),
    })
    return render(request, "leaderboard/compare.html", context)


@login_required
def submit(request):
    form = SubmissionForm(request.POST or None, user=request.user, initial={"benchmark": request.GET.get("benchmark")})
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            submission = form.save()
        return redirect("submission", pk=submission.pk)
    return render(request, "leaderboard/submit.html", {"form": form, "left": submissions_left_today(request.user)})


SUBMISSION_ACTIONS = ("cancel", "rerun")


@require_POST
@login_required
def submission_action(request, pk: int, action: str):
    # A submission the user cannot see answers as a missing one (as in the API): a 403 would confirm
    # that a private submission exists.
    submission = _submission_or_404(request, pk)
    if submission is None or action not in SUBMISSION_ACTIONS:
        return render(request, "leaderboard/private.html", status=404)
    if not can_manage(request.user, submission):
        return HttpResponse("Only the owner or staff can do that.", status=403)
    if action == "cancel":
        if not submission.cancel():
            messages.error(request, f"Submission #{pk} is {submission.status}; only queued or running submissions can be cancelled.")
    elif action == "rerun":
        if rerun(submission):
            messages.success(request, f"Submission #{pk} is queued again; finished results are kept.")
        else:
            messages.error(request, f"Submission #{pk} is {submission.status}; cancel it before running it again.")
    return redirect("submission", pk=pk)


@cache_control(max_age=86400, public=True)
def plotly_js(request):
    return HttpResponse(get_plotlyjs(), content_type="application/javascript")
