"""The benchmarks bundled with the service, so that it works offline on a fresh machine."""

from __future__ import annotations

from datasets.base import BenchmarkData
from evaluation.registry import load_object

BUNDLED_BENCHMARKS: dict[str, str] = {
    "opera": "datasets.opera.bundle:load_bundled",
    "trajectory2task": "datasets.tool_use.bundle:load_bundled",
    "tau2-retail": "datasets.tau2.bundle:load_retail",
    "tau2-airline": "datasets.tau2.bundle:load_airline",
}


def load_bundled(slug: str) -> BenchmarkData:
    try:
        path = BUNDLED_BENCHMARKS[slug]
    except KeyError:
        raise ValueError(f"no bundled benchmark '{slug}' (bundled: {', '.join(sorted(BUNDLED_BENCHMARKS))})") from None
    return load_object(path)()  # type: ignore[operator]
