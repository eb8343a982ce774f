"""The JSON API: benchmarks, leaderboards and submissions (documented at /api/schema/)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from leaderboard import boards
from leaderboard.forms import SubmissionForm
from leaderboard.models import Benchmark, Submission


class ScenarioSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()


class SplitSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField()
    instance_count = serializers.IntegerField()
    labels_hidden = serializers.BooleanField()


class BenchmarkSerializer(serializers.ModelSerializer):
    scenarios = ScenarioSerializer(many=True, read_only=True)
    splits = SplitSerializer(many=True, read_only=True)

    class Meta:
        model = Benchmark
        fields = ["slug", "name", "kind", "version", "license", "description", "citation", "main_metric", "scenarios", "splits"]


class SubmissionSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    organisation = serializers.CharField(source="model.organisation")
    benchmark = serializers.CharField(source="benchmark.slug")
    split = serializers.CharField(source="split.name")
    progress_percent = serializers.IntegerField()
    scores = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = ["id", "model", "organisation", "benchmark", "split", "scenarios", "trials", "concurrency", "max_instances",
                  "status", "progress_done", "progress_total", "progress_percent", "error_count", "error_code", "error_message",
                  "created_at", "started_at", "heartbeat_at", "finished_at", "config", "prompt_tokens", "completion_tokens",
                  "latency_mean_ms", "latency_p95_ms", "is_baseline", "is_verified", "is_flagged", "scores"]

    def get_scores(self, obj) -> list[dict]:
        return [
            {"scenario": s.scenario, "metric": s.metric, "value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n}
            for s in obj.scores.all()
        ]


class SubmissionCreateSerializer(serializers.Serializer):
    benchmark = serializers.SlugField()
    name = serializers.CharField(max_length=200)
    organisation = serializers.CharField(max_length=200, required=False, allow_blank=True)
    base_url = serializers.URLField(max_length=500)
    model_id = serializers.CharField(max_length=200)
    api_key = serializers.CharField(required=False, allow_blank=True, write_only=True)
    scenarios = serializers.ListField(child=serializers.SlugField(), required=False)
    trials = serializers.IntegerField(min_value=1, max_value=8, required=False)
    concurrency = serializers.IntegerField(min_value=1, max_value=32, required=False, default=4)
    max_instances = serializers.IntegerField(min_value=1, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    max_tokens = serializers.IntegerField(min_value=16, max_value=32768, required=False)
    is_public = serializers.BooleanField(required=False, default=True)


class BenchmarkList(generics.ListAPIView):
    queryset = Benchmark.objects.prefetch_related("scenarios", "splits")
    serializer_class = BenchmarkSerializer
    pagination_class = None


class BenchmarkDetail(generics.RetrieveAPIView):
    queryset = Benchmark.objects.prefetch_related("scenarios", "splits")
    serializer_class = BenchmarkSerializer
    lookup_field = "slug"


class LeaderboardView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(parameters=[OpenApiParameter("scenario", str, description="scenario slug or 'overall'")], responses=dict)
    def get(self, request, slug: str):
        benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
        tabs = dict(boards.tabs(benchmark))
        scenario = request.query_params.get("scenario", "overall")
        if scenario not in tabs:
            return Response({"detail": f"unknown scenario '{scenario}' (known: {', '.join(tabs)})"}, status=status.HTTP_400_BAD_REQUEST)
        metrics = boards.metric_specs(benchmark)
        rows = boards.board(benchmark, scenario)
        return Response({
            "benchmark": benchmark.slug, "scenario": scenario,
            "metrics": [{"name": m.name, "label": m.label, "higher_is_better": m.higher_is_better, "headline": m.headline, "unit": m.unit} for m in metrics],
            "rows": [
                {
                    "rank": r.rank, "submission": r.submission.id, "model": r.model.name, "organisation": r.model.organisation,
                    "baseline": r.submission.is_baseline, "verified": r.submission.is_verified, "flagged": r.submission.is_flagged,
                    "scores": {name: {"value": s.value, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n} for name, s in r.scores.items()},
                    "prompt_tokens": r.submission.prompt_tokens, "completion_tokens": r.submission.completion_tokens,
                    "latency_mean_ms": r.submission.latency_mean_ms, "latency_p95_ms": r.submission.latency_p95_ms,
                    "finished_at": r.submission.finished_at,
                }
                for r in rows
            ],
        })


class SubmissionListCreate(APIView):
    @extend_schema(responses=SubmissionSerializer(many=True))
    def get(self, request):
        qs = Submission.objects.select_related("model", "benchmark", "split").prefetch_related("scores").filter(is_public=True, is_hidden=False)
        if request.query_params.get("benchmark"):
            qs = qs.filter(benchmark__slug=request.query_params["benchmark"])
        return Response(SubmissionSerializer(qs[:100], many=True).data)

    @extend_schema(request=SubmissionCreateSerializer, responses={201: SubmissionSerializer})
    def post(self, request):
        payload = SubmissionCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        data["scenarios"] = ",".join(data.get("scenarios") or [])
        form = SubmissionForm(data, user=request.user)
        if not form.is_valid():
            errors = {("non_field_errors" if k == "__all__" else k): v for k, v in form.errors.items()}
            return Response(errors, status=status.HTTP_400_BAD_REQUEST)
        with transaction.atomic():
            submission = form.save()
        return Response(SubmissionSerializer(submission).data, status=status.HTTP_201_CREATED)


class SubmissionDetail(generics.RetrieveAPIView):
    serializer_class = SubmissionSerializer

    def get_queryset(self):
        qs = Submission.objects.select_related("model", "benchmark", "split").prefetch_related("scores")
        user = self.request.user
        if user.is_staff:
            return qs
        if user.is_authenticated:
            return qs.filter(Q(is_public=True) | Q(owner=user))
        return qs.filter(is_public=True)
