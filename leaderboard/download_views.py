"""Split downloads: the splits page, JSONL (streamed), parquet and the manifest. Hidden references never leave."""

from __future__ import annotations

import tempfile

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from datasets.splits import build_manifest, iter_jsonl, write_parquet
from leaderboard.downloads import benchmark_meta, exports, jsonl_file_sha256, split_rows
from leaderboard.models import Benchmark, Split


def _split(slug: str, name: str) -> Split:
    return get_object_or_404(Split.objects.select_related("benchmark"), benchmark__slug=slug, name=name)


def splits_page(request: HttpRequest, slug: str) -> HttpResponse:
    benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
    return render(request, "leaderboard/splits.html", {"benchmark": benchmark, "splits": exports(benchmark)})


def manifest(request: HttpRequest, slug: str) -> JsonResponse:
    benchmark = get_object_or_404(Benchmark.objects.prefetch_related("scenarios"), slug=slug)
    splits = exports(benchmark)
    by_name = {s.name: s for s in benchmark.splits.all()}
    files = {
        s.name: {
            "jsonl": {"path": request.build_absolute_uri(reverse("split-jsonl", args=[slug, s.name])), "sha256": jsonl_file_sha256(by_name[s.name])},
            "parquet": {"path": request.build_absolute_uri(reverse("split-parquet", args=[slug, s.name]))},
        }
        for s in splits
    }
    return JsonResponse(build_manifest(benchmark_meta(benchmark), splits, files), json_dumps_params={"indent": 2})


def split_jsonl(request: HttpRequest, slug: str, split: str) -> StreamingHttpResponse:
    # Streamed: a large split (OPeRA pages run to megabytes per row) is never held in memory.
    s = _split(slug, split)
    response = StreamingHttpResponse(iter_jsonl(split_rows(s), hidden=s.labels_hidden), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{slug}-{split}.jsonl"'
    return response


def split_parquet(request: HttpRequest, slug: str, split: str) -> FileResponse:
    # Parquet needs its footer last, so it is written to a temporary file (row group by row group) and streamed.
    s = _split(slug, split)
    target = tempfile.TemporaryFile()
    write_parquet(split_rows(s), s.labels_hidden, target)
    target.seek(0)
    return FileResponse(target, as_attachment=True, filename=f"{slug}-{split}.parquet", content_type="application/vnd.apache.parquet")
