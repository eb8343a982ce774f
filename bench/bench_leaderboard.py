"""Leaderboard server time (DESIGN §3): the page and its JSON API must answer in at most 50 ms, with a
constant number of queries, at 1,000 models, 10,000 submissions and 1,000,000 instance results.

Builds that volume in a scratch database (a fresh ``<name>_bench`` database next to ``DATABASE_URL`` if
set, else a temporary SQLite file; dropped afterwards), then times each URL through Django's full request
path (middleware, view, template or serializer) and prints median and p95 against the 50 ms budget.

    python bench/bench_leaderboard.py [--models 1000] [--submissions 10000] [--results 1000000] [--runs 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUDGET_MS = 50.0
SLUG = "bench-tools"


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence], chunk: int = 50_000) -> None:
    """Bulk insert below the ORM: COPY on PostgreSQL, executemany on SQLite (a million rows in seconds)."""
    from django.db import connection, transaction

    with transaction.atomic():  # one commit, not one per row
        raw = connection.connection
        if connection.vendor == "postgresql":
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch = []
        for row in rows:
            batch.append(row)
            if len(batch) >= chunk:
                raw.executemany(sql, batch)
                batch.clear()
        if batch:
            raw.executemany(sql, batch)


def build(models: int, submissions: int, results: int, seed: int = 0) -> None:
    from django.db import connection
    from django.utils import timezone

    from evaluation.registry import get_evaluator_class
    from evaluation.base import OVERALL
    from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Scenario, Score, Split, Submission, TaskInstance

    rng = random.Random(seed)
    family = get_evaluator_class("tool_use")
    benchmark = Benchmark.objects.create(slug=SLUG, name="Bench tool use", kind="tool_use", version="1", license="CC-BY-4.0",
                                         main_metric=family.headline_metric().name)
    scenarios = list(family.scenarios)
    for i, slug in enumerate(scenarios):
        Scenario.objects.create(benchmark=benchmark, slug=slug, name=slug.title(), position=i)
    split = Split.objects.create(benchmark=benchmark, name="test", version="1", sha256="0" * 64, labels_hidden=True)
    per_submission = max(1, results // submissions)
    per_scenario = -(-per_submission // len(scenarios))
    TaskInstance.objects.bulk_create(
        TaskInstance(split=split, key=f"{s}-{i}", scenario=s, input={"i": i}, reference={"ok": True})
        for s in scenarios for i in range(per_scenario)
    )
    instances = list(TaskInstance.objects.filter(split=split).values_list("id", "scenario"))[:per_submission]

    ModelEntry.objects.bulk_create(
        ModelEntry(name=f"model-{i:04d}", organisation=f"org-{i % 97}", base_url="https://api.example.com/v1", model_id=f"m{i}",
                   price_prompt_per_mtok=rng.choice([None, 0.15, 1.0, 3.0]), price_completion_per_mtok=rng.choice([None, 0.6, 4.0, 15.0]),
                   is_baseline=i < 3)
        for i in range(models)
    )
    model_ids = list(ModelEntry.objects.values_list("id", flat=True))
    now = timezone.now()
    Submission.objects.bulk_create(
        (Submission(model_id=model_ids[i % len(model_ids)], benchmark=benchmark, split=split, scenarios=scenarios, trials=1,
                    status=Submission.Status.FINISHED, progress_done=per_submission, progress_total=per_submission,
                    created_at=now - timedelta(minutes=i), finished_at=now - timedelta(minutes=i), prompt_tokens=rng.randint(10**5, 10**7),
                    completion_tokens=rng.randint(10**4, 10**6), latency_mean_ms=rng.uniform(200, 4000), latency_p95_ms=rng.uniform(4000, 9000),
                    is_baseline=(i % len(model_ids)) < 3, is_verified=i % 7 == 0, is_flagged=i % 101 == 0)
         for i in range(submissions)),
        batch_size=2000,
    )
    submission_ids = list(Submission.objects.values_list("id", flat=True))

    def scores():
        for sid in submission_ids:
            skill = rng.random()
            for tab in [*scenarios, OVERALL]:
                for k, metric in enumerate(family.metrics):
                    value = 3.0 + rng.random() * 5 if metric.unit == "number" else max(0.0, skill - 0.08 * k + rng.uniform(-0.05, 0.05))
                    yield (sid, tab, metric.name, value, value - 0.04, value + 0.04, per_submission)

    insert_rows(Score._meta.db_table, ("submission_id", "scenario", "metric", "value", "ci_low", "ci_high", "n"), scores())

    transcript = json.dumps([{"role": "user", "content": "Cancel order #W1."}, {"role": "assistant", "content": "Done."}])
    created = now.isoformat() if connection.vendor == "sqlite" else now

    def result_rows():
        for sid in submission_ids:
            for instance_id, scenario in instances:
                ok = rng.random() < 0.5
                yield (sid, instance_id, scenario, 0, json.dumps({"success": ok}), transcript, json.dumps({"success": float(ok)}),
                       ok, 900, 60, 800.0, "", "", created)

    insert_rows(InstanceResult._meta.db_table,
                ("submission_id", "instance_id", "scenario", "trial", "prediction", "transcript", "metrics", "correct",
                 "prompt_tokens", "completion_tokens", "latency_ms", "error_code", "error_message", "created_at"),
                result_rows())
    with connection.cursor() as cursor:  # what autovacuum does in production; index-only scans need the visibility map
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def measure(client, url: str, runs: int) -> tuple[float, float, float, int, int]:
    """Median and p95 wall time, median CPU time of this (the web) process, query count, response size.

    The CPU time leaves out the database and time spent waiting for a core, which tells a slow request
    apart from a busy machine."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):  # warm caches (templates, plotly, query plans)
        assert client.get(url).status_code == 200, url
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    return statistics.median(times), p95, statistics.median(cpu), len(ctx.captured_queries), len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="actboard-bench-")
    os.environ.setdefault("ACTBOARD_VAR_DIR", scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connections
    from django.test import Client
    from django.test.utils import setup_databases, teardown_databases

    db = connections["default"].settings_dict
    db["TEST"]["NAME"] = str(Path(scratch) / "bench.sqlite3") if db["ENGINE"].endswith("sqlite3") else f"{db['NAME']}_bench"
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        start = time.perf_counter()
        build(args.models, args.submissions, args.results)
        from leaderboard.models import InstanceResult, Score, Submission

        print(f"{connections['default'].vendor}: built {Submission.objects.count():,} submissions of {args.models:,} models, "
              f"{Score.objects.count():,} scores, {InstanceResult.objects.count():,} instance results "
              f"in {time.perf_counter() - start:.0f} s")
        client = Client()
        urls = [
            ("page, overall tab", f"/b/{SLUG}/"),
            ("page, scenario tab", f"/b/{SLUG}/?scenario=ambiguous"),
            ("page, sorted by pass^3", f"/b/{SLUG}/?sort=pass_3"),
            ("page, search", f"/b/{SLUG}/?q=org-1&baselines=0"),
            ("API leaderboard", f"/api/benchmarks/{SLUG}/leaderboard/"),
            ("API leaderboard, scenario", f"/api/benchmarks/{SLUG}/leaderboard/?scenario=changing"),
            ("page, every submission (not in the bar)", f"/b/{SLUG}/?all=1"),
        ]
        print(f"{'':42} {'median ms':>10} {'p95 ms':>8} {'web CPU ms':>11} {'queries':>8} {'KB':>6} {'median/50ms':>12}")
        for name, url in urls:
            median, p95, cpu, queries, size = measure(client, url, args.runs)
            print(f"{name:42} {median:10.1f} {p95:8.1f} {cpu:11.1f} {queries:8d} {size / 1024:6.0f} {median / BUDGET_MS:12.2f}")
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()
