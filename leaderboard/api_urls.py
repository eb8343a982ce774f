from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from leaderboard import api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("me/", api.Me.as_view(), name="api-me"),
    path("benchmarks/", api.BenchmarkList.as_view(), name="api-benchmarks"),
    path("benchmarks/<slug:slug>/", api.BenchmarkDetail.as_view(), name="api-benchmark"),
    path("benchmarks/<slug:slug>/leaderboard/", api.LeaderboardView.as_view(), name="api-leaderboard"),
    path("benchmarks/<slug:slug>/splits/<str:split>/instances/", api.SplitInstances.as_view(), name="api-split-instances"),
    path("submissions/", api.SubmissionListCreate.as_view(), name="api-submissions"),
    path("submissions/<int:pk>/", api.SubmissionDetail.as_view(), name="api-submission"),
    path("submissions/<int:pk>/cancel/", api.SubmissionCancel.as_view(), name="api-submission-cancel"),
    path("submissions/<int:pk>/rerun/", api.SubmissionRerun.as_view(), name="api-submission-rerun"),
]
