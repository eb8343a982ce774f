"""Harness overhead (DESIGN §3): N instances against a local endpoint with a fixed latency L at
concurrency C must finish within 1.1 × N·L/C at C = 16 and within 1.3 × at C = 64 (N ≥ 2,000).

The whole worker path is measured — prompt building, the openai client, reply parsing and one
InstanceResult row per item — on the bundled OPeRA test split, against a real HTTP endpoint that
sleeps L seconds and answers a fixed action. Uses ``DATABASE_URL`` if set, else a scratch SQLite file.
Besides the wall-clock ratio it prints the harness's CPU time per item (robust to a busy machine) and,
with ``--profile``, the top entries of a profile of the per-item path.

    python bench/bench_harness.py [--n 2000] [--latency 0.2] [--concurrency 16,64] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import multiprocessing
import os
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the endpoint sleeps per request")
    parser.add_argument("--concurrency", default="16,64", help="comma-separated concurrency levels")
    parser.add_argument("--profile", action="store_true", help="profile 200 items run one at a time and print the top entries")
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

    print(f"database: {django.db.connection.vendor}; N={args.n} L={args.latency:g}s")
    for concurrency in levels:
        submission, keys = fresh_run(concurrency)
        n = len(keys)
        cpu_started, started = time.process_time(), time.perf_counter()
        lifecycle.run_batch(submission.id, keys)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        stored = InstanceResult.objects.filter(submission=submission).count()
        errors = InstanceResult.objects.filter(submission=submission).exclude(error_code="").count()
        limit = n * args.latency / concurrency
        bar = bars.get(concurrency, 1.1)
        print(f"C={concurrency}: stored {stored} results ({errors} errors); wall {wall:.2f} s; limit N·L/C {limit:.2f} s; "
              f"ratio {wall / limit:.3f} ({'PASS' if wall <= bar * limit else 'FAIL'}: bar {bar:.1f}); "
              f"{n / wall:.0f} items/s; harness CPU {1000 * cpu / n:.2f} ms per item")

    if args.profile:
        submission, keys = fresh_run(1)
        profiler = cProfile.Profile()
        from evaluation.runner import WorkItem, evaluate_one
        from worker.lifecycle import _as_instance, client_for, persist
        from worker.scoring import evaluator_for
        from leaderboard.models import TaskInstance

        evaluator = evaluator_for(submission)
        rows = {r.id: _as_instance(r) for r in TaskInstance.objects.filter(id__in={k[0] for k in keys[:200]})}
        items = [WorkItem(rows[i], scenario, trial) for i, scenario, trial in keys[:200]]
        with client_for(submission.model, 1) as client:
            profiler.enable()
            for item in items:
                persist(submission.id, evaluator, [(item, evaluate_one(evaluator, client, item))])
            profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "15")))
        print("profile of 200 items, one at a time (the endpoint's sleep shows as waiting in the socket):")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])
    endpoint.terminate()


if __name__ == "__main__":
    main()
