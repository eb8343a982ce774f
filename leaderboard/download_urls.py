from django.urls import path

from leaderboard import download_views

urlpatterns = [
    path("b/<slug:slug>/splits/", download_views.splits_page, name="splits"),
    path("b/<slug:slug>/splits/manifest.json", download_views.manifest, name="splits-manifest"),
    path("b/<slug:slug>/splits/<slug:split>.jsonl", download_views.split_jsonl, name="split-jsonl"),
    path("b/<slug:slug>/splits/<slug:split>.parquet", download_views.split_parquet, name="split-parquet"),
]
