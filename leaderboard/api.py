"""The JSON API: benchmarks, splits, leaderboards and submissions (documented at /api/schema/ and /api/docs/).

Views are thin: submissions are validated by ``forms.SubmissionForm`` (the same rules as the submit page),
visibility comes from ``access``; submissions are created and re-run through ``submissions`` and run by
the worker. Published shapes (leaderboard rows, pagination) come from ``serializers``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.base import OVERALL
from leaderboard import boards
from leaderboard.access import can_manage, visible_submissions
from leaderboard.forms import SubmissionForm, submissions_left_today
from leaderboard.models import Benchmark, Score, Split, Submission, TaskInstance
from leaderboard.serializers import LeaderboardRowSerializer, MetricSerializer, Pagination, serializer_from_form
from leaderboard.submissions import rerun

QUOTA_HEADER = "X-Quota-Remaining"
QUOTA_PARAMETER = OpenApiParameter(
    QUOTA_HEADER, OpenApiTypes.INT, OpenApiParameter.HEADER, response=True,
    description="Submissions the user may still create today (UTC).",
)


# --- serializers -----------------------------------------------------------------------------------


class ScenarioSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()


class SplitSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField(help_text="Hash of the split's canonical JSONL; submissions record it.")
    instance_count = serializers.IntegerField()
    labels_hidden = serializers.BooleanField(help_text="References are never served for this split.")


class BenchmarkSerializer(serializers.ModelSerializer):
    scenarios = ScenarioSerializer(many=True, read_only=True)
    splits = SplitSerializer(many=True, read_only=True)

    class Meta:
        model = Benchmark
        fields = ["slug", "name", "kind", "version", "license", "description", "citation", "main_metric", "scenarios", "splits"]


class TaskInstanceSerializer(serializers.Serializer):
    key = serializers.CharField()
    scenario = serializers.CharField(help_text="Empty: the instance is evaluated under every scenario.")
    input = serializers.JSONField()
    reference = serializers.JSONField(read_only=True, help_text="Absent on splits whose labels are hidden.")


class ScoreSerializer(serializers.ModelSerializer):
    class Meta:
        model = Score
        fields = ["scenario", "metric", "value", "ci_low", "ci_high", "n"]


class SubmissionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    organisation = serializers.CharField(source="model.organisation")
    benchmark = serializers.CharField(source="benchmark.slug")
    split = serializers.CharField(source="split.name")
    progress_percent = serializers.IntegerField()
    scores = ScoreSerializer(many=True, read_only=True)

    class Meta:
        model = Submission
        fields = ["id", "model", "organisation", "benchmark", "split", "scenarios", "trials", "concurrency", "max_instances",
                  "status", "progress_done", "progress_total", "progress_percent", "error_count", "error_code", "error_message",
                  "created_at", "started_at", "heartbeat_at", "finished_at", "config", "config_hash", "prompt_tokens",
                  "completion_tokens", "latency_mean_ms", "latency_p95_ms", "is_public", "is_baseline", "is_verified",
                  "is_flagged", "is_hidden", "scores"]


# The request schema of a new submission, derived from the form that validates it.
SubmissionCreateSerializer = serializer_from_form(SubmissionForm, "SubmissionCreateSerializer", {
    "scenarios": serializers.ListField(child=serializers.SlugField(), required=False, help_text="Empty or absent: all."),
    "is_public": serializers.BooleanField(required=False, default=True, help_text="Show on the public leaderboard (default true)."),
})


class SubmissionUpdateSerializer(serializers.Serializer):
    is_public = serializers.BooleanField(required=False, help_text="Owner or staff.")
    is_flagged = serializers.BooleanField(required=False, help_text="Staff only.")
    is_verified = serializers.BooleanField(required=False, help_text="Staff only.")
    is_hidden = serializers.BooleanField(required=False, help_text="Staff only.")


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="The first (or only) problem, readable as is.")
    code = serializers.CharField(required=False, help_text="Machine-readable: quota, duplicate, url_not_allowed, endpoint_unreachable, ...")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text="Every problem, by field; non_field_errors for the whole request.")


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
    submissions_per_day = serializers.IntegerField()
    quota_remaining = serializers.IntegerField()


class LeaderboardSerializer(serializers.Serializer):
    benchmark = serializers.CharField()
    scenario = serializers.CharField()
    count = serializers.IntegerField(help_text="Ranked rows on this tab in all.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    metrics = MetricSerializer(many=True)
    rows = LeaderboardRowSerializer(many=True)


# --- helpers ---------------------------------------------------------------------------------------


def error(code: str, detail: str, errors: dict[str, list[str]] | None = None, status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code)


def with_quota(response: Response, user) -> Response:
    response[QUOTA_HEADER] = str(submissions_left_today(user))
    return response


def submission_queryset():
    return Submission.objects.select_related("model", "benchmark", "split").prefetch_related("scores")


def get_visible_submission(request: Request, pk: int) -> Submission:
    submission = visible_submissions(request.user, submission_queryset()).filter(pk=pk).first()
    if submission is None:
        raise exceptions.NotFound(f"No submission #{pk}, or it is private.")
    return submission


def get_managed_submission(request: Request, pk: int, action: str) -> Submission:
    submission = get_visible_submission(request, pk)
    if not can_manage(request.user, submission):
        raise exceptions.PermissionDenied(f"Only the owner of submission #{pk} or staff can {action} it.")
    return submission


# Status codes of the submission rules whose failure is not a malformed request.
FORM_ERROR_STATUS = {"quota": status.HTTP_429_TOO_MANY_REQUESTS, "duplicate": status.HTTP_409_CONFLICT}


def form_error(form: SubmissionForm) -> Response:
    details = form.errors.as_data()
    # The whole-request problems (quota, duplicate) decide the status code and come first.
    fields = sorted(details, key=lambda name: name != "__all__")
    first = details[fields[0]][0]
    errors = {("non_field_errors" if k == "__all__" else k): [m for e in v for m in e.messages] for k, v in details.items()}
    message = first.messages[0]
    if fields[0] != "__all__":
        message = f"{fields[0]}: {message}"
    return error(first.code or "invalid", message, errors, FORM_ERROR_STATUS.get(first.code or "", status.HTTP_400_BAD_REQUEST))


# --- benchmarks ------------------------------------------------------------------------------------


class BenchmarkList(generics.ListAPIView):
    queryset = Benchmark.objects.prefetch_related("scenarios", "splits")
    serializer_class = BenchmarkSerializer
    pagination_class = None


class BenchmarkDetail(generics.RetrieveAPIView):
    queryset = Benchmark.objects.prefetch_related("scenarios", "splits")
    serializer_class = BenchmarkSerializer
    lookup_field = "slug"


class SplitInstances(generics.ListAPIView):
    """Task instances of one split, in order. References are left out (never read) when labels are hidden."""

    serializer_class = TaskInstanceSerializer
    permission_classes = [permissions.AllowAny]

    def get_queryset(self):
        split = get_object_or_404(Split, benchmark__slug=self.kwargs["slug"], name=self.kwargs["split"])
        columns = ["key", "scenario", "input"] + ([] if split.labels_hidden else ["reference"])
        return TaskInstance.objects.filter(split=split).order_by("id").values(*columns)


class LeaderboardView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter("scenario", str, description="A scenario slug or 'overall' (default)."),
            OpenApiParameter("limit", int, description=f"Rows per page (default {Pagination.default_limit}, at most {Pagination.max_limit})."),
            OpenApiParameter("offset", int, description="Rank to start after (default 0)."),
        ],
        responses={200: LeaderboardSerializer, 400: ErrorSerializer},
    )
    def get(self, request: Request, slug: str) -> Response:
        benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
        tabs = dict(boards.tabs(benchmark))
        scenario = request.query_params.get("scenario", OVERALL)
        if scenario not in tabs:
            return error("bad_scenario", f"unknown scenario '{scenario}' (known: {', '.join(tabs)})")
        for name in ("limit", "offset"):
            value = request.query_params.get(name)
            if value is not None and not (value.isdigit() and (name == "offset" or int(value) >= 1)):
                return error("bad_page", f"limit must be an integer from 1 to {Pagination.max_limit} and offset a non-negative integer")
        paginator = Pagination()
        ranked = boards.ranked(benchmark, scenario)
        rows = paginator.paginate_queryset(ranked, request, view=self) or []
        boards.fill_scores(rows, scenario)  # only the page's rows: the cost stays flat in the board's size
        return Response({
            "benchmark": benchmark.slug, "scenario": scenario, "count": len(ranked), "limit": paginator.limit,
            "offset": paginator.offset, "next": paginator.get_next_link(), "previous": paginator.get_previous_link(),
            "metrics": MetricSerializer(boards.metric_specs(benchmark), many=True).data,
            "rows": LeaderboardRowSerializer(rows, many=True).data,
        })


# --- submissions -----------------------------------------------------------------------------------


class SubmissionListCreate(generics.ListAPIView):
    serializer_class = SubmissionSerializer

    def get_queryset(self):
        qs = visible_submissions(self.request.user, submission_queryset())
        params = self.request.query_params
        if params.get("benchmark"):
            qs = qs.filter(benchmark__slug=params["benchmark"])
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        if params.get("mine") in ("1", "true") and self.request.user.is_authenticated:
            qs = qs.filter(owner=self.request.user)
        return qs

    @extend_schema(parameters=[
        OpenApiParameter("benchmark", str, description="Only this benchmark (slug)."),
        OpenApiParameter("status", str, enum=Submission.Status.values),
        OpenApiParameter("mine", bool, description="Only the caller's own submissions, private ones included."),
    ])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=SubmissionCreateSerializer,
        parameters=[QUOTA_PARAMETER],
        responses={
            201: SubmissionSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid request, URL not allowed, endpoint unreachable, model not listed."),
            409: OpenApiResponse(ErrorSerializer, description="Duplicate of a finished or active submission."),
            429: OpenApiResponse(ErrorSerializer, description="Daily quota reached."),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data.dict() if hasattr(request.data, "dict") else request.data  # a form-encoded body
        if not isinstance(data, dict):
            return with_quota(error("invalid", "the body must be a JSON object"), request.user)
        nested = sorted(k for k, v in data.items() if k != "scenarios" and isinstance(v, (dict, list)))
        if nested:
            return with_quota(error("invalid", f"{nested[0]}: must be a single value, not a list or object"), request.user)
        form = SubmissionForm({"is_public": True, **data}, user=request.user)
        if not form.is_valid():
            return with_quota(form_error(form), request.user)
        submission = form.save()
        return with_quota(Response(SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED), request.user)


class SubmissionDetail(APIView):
    @extend_schema(responses={200: SubmissionSerializer, 404: ErrorSerializer})
    def get(self, request: Request, pk: int) -> Response:
        return Response(SubmissionSerializer(get_visible_submission(request, pk)).data)

    @extend_schema(request=SubmissionUpdateSerializer, responses={200: SubmissionSerializer, 400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer})
    def patch(self, request: Request, pk: int) -> Response:
        """Moderation (staff: flag, verify, hide) and visibility (owner or staff: public or private)."""
        get_managed_submission(request, pk, "change")  # 404 or 403 unless the caller may change it
        payload = SubmissionUpdateSerializer(data=request.data)
        if not payload.is_valid():
            name, messages = next(iter(payload.errors.items()))
            return error("invalid", f"{name}: {messages[0]}", payload.errors)
        changes = payload.validated_data
        staff_only = sorted(set(changes) - {"is_public"})
        if staff_only and not request.user.is_staff:
            raise exceptions.PermissionDenied(f"Only staff can change {', '.join(staff_only)}.")
        if changes:
            Submission.objects.filter(pk=pk).moderate(**changes)
        return Response(SubmissionSerializer(get_visible_submission(request, pk)).data)


class SubmissionCancel(APIView):
    @extend_schema(request=None, responses={200: SubmissionSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request: Request, pk: int) -> Response:
        submission = get_managed_submission(request, pk, "cancel")
        if not submission.cancel():
            return error("not_active", f"Submission #{pk} is {submission.status}; only queued or running submissions can be cancelled.",
                         status_code=status.HTTP_409_CONFLICT)
        return Response(SubmissionSerializer(get_visible_submission(request, pk)).data)


class SubmissionRerun(APIView):
    @extend_schema(request=None, responses={200: SubmissionSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer})
    def post(self, request: Request, pk: int) -> Response:
        """Queue again: finished results are kept, endpoint errors and missing instances run again."""
        submission = get_managed_submission(request, pk, "re-run")
        if submission.is_active:
            return error("active", f"Submission #{pk} is {submission.status}; cancel it before re-running.",
                         status_code=status.HTTP_409_CONFLICT)
        rerun(submission)
        return Response(SubmissionSerializer(get_visible_submission(request, pk)).data)


class Me(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[QUOTA_PARAMETER], responses={200: MeSerializer, 401: ErrorSerializer})
    def get(self, request: Request) -> Response:
        left = submissions_left_today(request.user)
        body = {"username": request.user.get_username(), "is_staff": request.user.is_staff,
                "submissions_per_day": settings.ACTBOARD_SUBMISSIONS_PER_DAY, "quota_remaining": left}
        return with_quota(Response(body), request.user)

