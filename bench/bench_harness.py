"""Harness overhead (DESIGN §3): N instances against a local endpoint with a fixed latency L at
concurrency C must finish within 1.1 × N·L/C at C = 16 and within 1.3 × at C = 64 (N ≥ 2,000).

The whole worker path is measured — ``worker.lifecycle.run_batch``: loading the instances, shrinking
pages, prompt building, the endpoint client, reply parsing, storing one InstanceResult per item with the
progress counts — on the bundled OPeRA test split, against a real HTTP endpoint (its own process) that
sleeps L seconds and answers a fixed action. Uses ``DATABASE_URL`` if set, else a scratch SQLite file.

By default the N items run as one batch in one process. The service cuts a submission into batches of
``ACTBOARD_BATCH_SIZE`` that Celery worker processes run side by side; ``--processes P`` runs the N
items as P batches in P processes, each at C/P in flight (so that at most C are in flight, as the bar
assumes; the service itself runs every batch at the submission's concurrency). Besides the wall-clock
ratio it prints the harness's CPU time per item, user and system, summed over its processes (robust to
a busy machine); ``--profile`` prints the top entries of a profile of every thread of one run at the
last concurrency level, timed in CPU time per thread (the endpoint's sleep does not show).

    python bench/bench_harness.py [--n 2000] [--latency 0.2] [--concurrency 16,64] [--processes 1] [--profile]
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


def run_share(submission_id: int, keys: list) -> None:
    """One worker process's batch (the parent's database connections are closed before the fork)."""
    from worker import lifecycle

    lifecycle.run_batch(submission_id, keys)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the endpoint sleeps per request")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated concurrency levels")
    parser.add_argument("--processes", type=int, default=1, help="worker processes sharing the items, each at C/P in flight")
    parser.add_argument("--profile", action="store_true", help="profile every thread of one more run (one process) and print the top entries")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    bars = {16: 1.1, 64: 1.3}

    scratch = tempfile.mkdtemp(prefix="actboard-bench-")
    os.environ.setdefault("ACTBOARD_VAR_DIR", scratch)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["ACTBOARD_ALLOW_PRIVATE_ENDPOINTS"] = "1"
    import django

    django.setup()
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
        return submission, submission.pending_work()[: args.n]

    def run(submission, keys, processes: int) -> None:
        if processes == 1:
            lifecycle.run_batch(submission.id, keys)
            return
        django.db.connections.close_all()  # each process opens its own
        share = -(-len(keys) // processes)
        workers = [multiprocessing.get_context("fork").Process(target=run_share, args=(submission.id, keys[i : i + share]))
                   for i in range(0, len(keys), share)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    print(f"database: {django.db.connection.vendor}; N={args.n} L={args.latency:g}s; "
          f"{'one batch in one process' if args.processes == 1 else f'{args.processes} batches in {args.processes} processes'}")
    for concurrency in levels:
        submission, keys = fresh_run(max(1, concurrency // args.processes))
        n = len(keys)
        (user, system), started = cpu_seconds(), time.perf_counter()
        run(submission, keys, args.processes)
        wall = time.perf_counter() - started
        user, system = (now - before for now, before in zip(cpu_seconds(), (user, system)))
        stored = InstanceResult.objects.filter(submission=submission).count()
        errors = InstanceResult.objects.filter(submission=submission).exclude(error_code="").count()
        limit = n * args.latency / concurrency
        bar = bars.get(concurrency, 1.1)
        print(f"C={concurrency}: stored {stored} results ({errors} errors); wall {wall:.2f} s; limit N·L/C {limit:.2f} s; "
              f"ratio {wall / limit:.3f} ({'PASS' if wall <= bar * limit else 'FAIL'}: bar {bar:.1f}); "
              f"{n / wall:.0f} items/s; harness CPU {1000 * (user + system) / n:.2f} ms per item "
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
    endpoint.terminate()


if __name__ == "__main__":
    main()
