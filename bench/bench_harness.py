"""Harness overhead (DESIGN §3): N instances against a local endpoint with a fixed latency L at
concurrency C must finish within 1.1 × N·L/C at C = 16 and within 1.3 × at C = 64 (N ≥ 2,000).

The whole worker path is measured — ``worker.lifecycle.run_batch``: loading the instances, shrinking
pages, prompt building, the endpoint client, reply parsing, storing one InstanceResult per item with the
progress counts — on the bundled OPeRA test split, against a real HTTP endpoint (its own process) that
sleeps L seconds and answers a fixed action. Uses ``DATABASE_URL`` if set, else a scratch SQLite file.

The service's own path is measured: the N items are planned into lanes as the start task plans them
(``worker.lifecycle.plan_lanes``: lanes at shares of C that sum to C, batches of ``ACTBOARD_BATCH_SIZE``
rounded up to whole rounds at the lane's concurrency), each lane runs in its own process, as a Celery
worker process takes a lane's chain, and runs its batches one after another through the batch task's
body (``worker.tasks.run_batch``: the batch, then the check whether the submission is done and its
scoring) — only the broker's hand-over between batches is left out. ``--lanes 1,2`` measures each level
with at most one and at most two lanes (the service's default, ``ACTBOARD_WORKER_LANES``, is 2). Besides
the wall-clock ratio it prints the harness's CPU time per item, user and system, summed over its
processes (robust to a busy machine); ``--profile`` prints the top entries of a profile of every thread
of one more batch of all N items at the last level in this process, timed in CPU time per thread (the
endpoint's sleep does not show).

    python bench/bench_harness.py [--n 2000] [--latency 0.2] [--concurrency 16,64] [--lanes 1,2] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class FixedActionPolicy:
    model_id = "fixed-action"
    reply_text = json.dumps({"rationale": "", "action": {"type": "click", "name": "nav_bar.search_input", "click_type": "search"}})

    def reply(self, messages, tools, params):
        return {"content": self.reply_text}


def serve(latency: float, ready: "multiprocessing.Queue") -> None:
    """The endpoint runs in its own process, as a real one would: its CPU is not the harness's."""
    from evaluation.baselines.server import PolicyServer

    server = PolicyServer(FixedActionPolicy(), latency=latency)
    ready.put(server.base_url)
    server.serve_forever()


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds of this process and of its finished children."""
    times = os.times()
    return times.user + times.children_user, times.system + times.children_system


def run_lane(submission_id: int, lane) -> None:
    """One worker process's lane: its batches one after another, each through the batch task's body (the
    parent's database connections are closed before the fork)."""
    from worker import tasks

    for part in lane.batches:
        tasks.run_batch(submission_id, part, lane.concurrency)


def profiled(run) -> pstats.Stats:
    """Run ``run()`` with every thread it starts profiled in that thread's own CPU time."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_: object) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread

    main_profile = cProfile.Profile(time.thread_time)
    threading.setprofile(start_in_thread)
    main_profile.enable()
    try:
        run()
    finally:
        main_profile.disable()
        threading.setprofile(None)
    stats = pstats.Stats(main_profile)
    for profile in profiles:
        stats.add(profile)
    return stats


# Where a function's own time goes, by the file it is in (the first pattern found in its path wins); the
# built-ins that files call (socket I/O, regexes, JSON in C) are in "other".
PARTS = (
    ("endpoint client (HTTP)", ("/http/client.py", "httpx", "/evaluation/client.py", "/evaluation/netguard.py", "socket.py", "ssl.py", "selectors.py")),
    ("persistence (ORM, database)", ("/django/", "sqlite3", "psycopg", "/worker/lifecycle.py")),
    ("prompt building", ("/evaluation/next_action/prompt.py",)),
    ("reply parsing", ("/evaluation/next_action/parser.py",)),
    ("JSON", ("/json/",)),
    ("runner and threads", ("/evaluation/runner.py", "concurrent/futures", "threading.py", "queue.py")),
)


def by_part(stats: pstats.Stats) -> dict[str, float]:
    shares: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        part = next((name for name, patterns in PARTS if any(p in filename for p in patterns)), "other")
        shares[part] = shares.get(part, 0.0) + own
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the endpoint sleeps per request")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated concurrency levels")
    parser.add_argument("--lanes", default="1,2", help="comma-separated lane counts at most (ACTBOARD_WORKER_LANES)")
    parser.add_argument("--profile", action="store_true", help="profile every thread of one more run (one batch in this process) and print the top entries")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    lane_counts = [int(n) for n in args.lanes.split(",")]
    bars = {16: 1.1, 64: 1.3}

    scratch = tempfile.mkdtemp(prefix="actboard-bench-")
    os.environ.setdefault("ACTBOARD_VAR_DIR", scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["ACTBOARD_ALLOW_PRIVATE_ENDPOINTS"] = "1"
    os.environ["ACTBOARD_MAX_CONCURRENCY"] = str(max(levels))  # a submission's concurrency is capped by it
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from datasets.registry import load_bundled
    from leaderboard.submissions import create_submission
    from worker import lifecycle
    from leaderboard.importing import import_benchmark
    from leaderboard.models import InstanceResult, ModelEntry, Submission

    call_command("migrate", verbosity=0)
    benchmark = import_benchmark(load_bundled("opera"))
    ready: multiprocessing.Queue = multiprocessing.Queue()
    endpoint = multiprocessing.Process(target=serve, args=(args.latency, ready), daemon=True)
    endpoint.start()
    base_url = ready.get(timeout=30)
    test_size = benchmark.splits.get(name="test").instance_count
    per_scenario = -(-args.n // 3)
    if per_scenario > test_size:
        sys.exit(f"--n {args.n} needs {per_scenario} instances per scenario; the test split has {test_size}")

    def fresh_run(concurrency: int):
        model = ModelEntry.objects.create(name=f"bench {time.time()}", base_url=base_url, model_id=FixedActionPolicy.model_id)
        submission = create_submission(model=model, benchmark=benchmark, max_instances=per_scenario,
                                       concurrency=concurrency, enqueue=False)
        Submission.objects.claim(submission.id, "bench")
        return submission, submission.pending_work()  # all of it, so that the last batch scores the submission

    def run(submission, lanes: list) -> None:
        # A worker process that has run a batch before: the evaluator's and the client's imports are done.
        from worker import tasks  # noqa: F401 - imported before the fork, as a worker process has it
        from worker.scoring import evaluator_for

        evaluator_for(submission)
        lifecycle.client_for(submission.model).close()
        django.db.connections.close_all()  # each process opens its own
        workers = [multiprocessing.get_context("fork").Process(target=run_lane, args=(submission.id, lane)) for lane in lanes]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    print(f"database: {django.db.connection.vendor}; N={3 * per_scenario} L={args.latency:g}s; each lane of batches "
          f"(ACTBOARD_BATCH_SIZE={settings.ACTBOARD_BATCH_SIZE}, rounded up to whole rounds) in its own process, "
          "through the batch task's body; harness CPU summed over the lanes' processes")
    for concurrency in levels:
        for most in lane_counts:
            submission, keys = fresh_run(concurrency)
            lanes = lifecycle.plan_lanes(keys, concurrency, batch_size=settings.ACTBOARD_BATCH_SIZE, max_lanes=most)
            n = len(keys)
            (user, system), started = cpu_seconds(), time.perf_counter()
            run(submission, lanes)
            wall = time.perf_counter() - started
            user, system = (now - before for now, before in zip(cpu_seconds(), (user, system)))
            submission.refresh_from_db()
            stored = InstanceResult.objects.filter(submission=submission).count()
            errors = InstanceResult.objects.filter(submission=submission).exclude(error_code="").count()
            latencies = np.fromiter(InstanceResult.objects.filter(submission=submission).values_list("latency_ms", flat=True), float)
            limit = n * args.latency / concurrency
            bar = bars.get(concurrency, 1.1)
            scoring = (submission.finished_at - submission.scoring_started_at).total_seconds() if submission.finished_at else 0.0
            verdict = "PASS" if wall <= bar * limit else "FAIL"
            if stored != n or errors:
                verdict = "INCOMPLETE"  # a fast run that stored nothing is no figure
            plan = " + ".join(f"{len(lane.batches)} batches of ≤{len(lane.batches[0])} at {lane.concurrency}" for lane in lanes)
            print(f"C={concurrency}, {len(lanes)} lane{'s' if len(lanes) > 1 else ''} ({plan}): stored {stored} results "
                  f"({errors} errors), {submission.status}; wall {wall:.2f} s, of which scoring {scoring:.2f} s; "
                  f"limit N·L/C {limit:.2f} s; ratio {wall / limit:.3f} ({verdict}: "
                  f"bar {bar:.1f}; {(wall - scoring) / limit:.3f} without scoring); "
                  f"{n / wall:.0f} items/s; calls took {latencies.mean():.0f} ms (p95 {np.percentile(latencies, 95):.0f}) "
                  f"against the endpoint's {1000 * args.latency:.0f}; harness CPU {1000 * (user + system) / n:.2f} ms per item "
                  f"({1000 * user / n:.2f} user, {1000 * system / n:.2f} system)")

    if args.profile:
        submission, keys = fresh_run(levels[-1])
        stats = profiled(lambda: lifecycle.run_batch(submission.id, keys))
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "15")))
        print(f"profile of one more run at C={levels[-1]}, every thread in its own CPU time (profiling slows Python code "
              "several times more than C code):")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
        shares = by_part(stats)
        total = sum(shares.values())
        print("the same profile's own time by part of the path: " + "; ".join(
            f"{part} {100 * seconds / total:.0f}%" for part, seconds in sorted(shares.items(), key=lambda kv: -kv[1])))
    endpoint.terminate()


if __name__ == "__main__":
    main()
