"""A benchmark's splits as ``datasets.splits`` exports, read from the database.

The one rule that matters here: for a split with hidden labels the ``reference`` column is never selected,
so no code path below can put a test reference into a download, a manifest or a published folder.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.core.cache import cache
from django.db.models import Count

from datasets.base import BenchmarkData, ScenarioInfo
from datasets.splits import Row, SplitExport, jsonl_sha256
from leaderboard.models import Benchmark, Split, TaskInstance

CHUNK = 500


def benchmark_meta(benchmark: Benchmark) -> BenchmarkData:
    return BenchmarkData(
        slug=benchmark.slug, name=benchmark.name, kind=benchmark.kind, version=benchmark.version, license=benchmark.license,
        description=benchmark.description, citation=benchmark.citation, homepage=benchmark.homepage,
        scenarios=[ScenarioInfo(s.slug, s.name, s.description) for s in benchmark.scenarios.all()],
    )


def split_rows(split: Split) -> Iterator[Row]:
    """Instances in import order (the order the split's sha256 was computed in), read in chunks."""
    qs = TaskInstance.objects.filter(split_id=split.id).order_by("id")
    if split.labels_hidden:
        for key, scenario, input in qs.values_list("key", "scenario", "input").iterator(chunk_size=CHUNK):
            yield key, scenario, input, None
    else:
        yield from qs.values_list("key", "scenario", "input", "reference").iterator(chunk_size=CHUNK)


def scenario_counts(split: Split, scenarios: list[str]) -> dict[str, int]:
    """Instances evaluated under each scenario: those of that scenario plus those of every scenario."""
    by = dict(TaskInstance.objects.filter(split_id=split.id).values_list("scenario").annotate(n=Count("id")).values_list("scenario", "n"))
    return {slug: by.get("", 0) + by.get(slug, 0) for slug in scenarios}


def split_export(split: Split, scenarios: list[str]) -> SplitExport:
    return SplitExport(
        name=split.name, version=split.version, sha256=split.sha256, labels_hidden=split.labels_hidden,
        instances=split.instance_count, counts=scenario_counts(split, scenarios), rows=lambda: split_rows(split),
    )


def exports(benchmark: Benchmark) -> list[SplitExport]:
    scenarios = list(benchmark.scenarios.values_list("slug", flat=True))
    return [split_export(split, scenarios) for split in benchmark.splits.order_by("name")]


def jsonl_file_sha256(split: Split) -> str:
    """Hash of the downloadable JSONL. With references it is the split's own hash; without, it is computed
    once per split version and cached."""
    if not split.labels_hidden:
        return split.sha256
    key = f"actboard:inputs-sha256:{split.id}:{split.sha256}"
    value = cache.get(key)
    if value is None:
        value = jsonl_sha256(split_rows(split), hidden=True)
        cache.set(key, value, timeout=None)
    return value
