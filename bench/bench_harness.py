"""Harness overhead (DESIGN §3): N instances against a local endpoint with a fixed latency L at
concurrency C must finish within 1.1 × N·L/C, the physical limit of that endpoint.

The whole worker path is measured — prompt building, the openai client, reply parsing and one
InstanceResult row per item — on the bundled OPeRA test split, against a real HTTP endpoint that
sleeps L seconds and answers a fixed action. Uses ``DATABASE_URL`` if set, else a scratch SQLite file.

    python bench/bench_harness.py [--n 2000] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

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
    model = ModelEntry.objects.create(name=f"bench {time.time()}", base_url=base_url, model_id=FixedActionPolicy.model_id)
    test_size = benchmark.splits.get(name="test").instance_count
    per_scenario = -(-args.n // 3)
    if per_scenario > test_size:
        sys.exit(f"--n {args.n} needs {per_scenario} instances per scenario; the test split has {test_size}")
    submission = create_submission(model=model, benchmark=benchmark, max_instances=per_scenario,
                                        concurrency=args.concurrency, enqueue=False)
    Submission.objects.claim(submission.id, "bench")
    keys = submission.pending_work()[: args.n]
    n = len(keys)

    started = time.perf_counter()
    lifecycle.run_batch(submission.id, keys)
    wall = time.perf_counter() - started
    endpoint.terminate()

    stored = InstanceResult.objects.filter(submission=submission).count()
    errors = InstanceResult.objects.filter(submission=submission).exclude(error_code="").count()
    limit = n * args.latency / args.concurrency
    print(f"database: {django.db.connection.vendor}; N={n} L={args.latency:g}s C={args.concurrency}")
    print(f"stored {stored} results ({errors} errors)")
    print(f"wall time {wall:.2f} s; physical limit N·L/C = {limit:.2f} s; bar 1.1 × limit = {1.1 * limit:.2f} s")
    print(f"ratio wall / limit = {wall / limit:.3f}  ({'PASS' if wall <= 1.1 * limit else 'FAIL'}: bar is 1.100)")
    print(f"throughput {n / wall:.1f} items/s; harness overhead per item {1000 * (wall - limit) * args.concurrency / n:.2f} ms")


if __name__ == "__main__":
    main()
