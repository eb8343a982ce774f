"""Time the tau2 environments: a fresh environment (a copy of the database) per episode, and tool calls.

Usage: python bench/bench_tau2_env.py [--domain retail] [--loads 50] [--calls 2000]
The first load reads, validates and snapshots db.json; later loads only copy the snapshot. The call mix
is the shipped tasks' gold actions, replayed round-robin on one environment per task.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.tau2 import domain_dir  # noqa: E402
from evaluation.canonical import canonical_hash  # noqa: E402
from evaluation.tau2.environment import load_environment  # noqa: E402

COPY_LIMIT_SECONDS = 0.050


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", default="retail", choices=["retail", "airline"])
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    start = time.perf_counter()
    load_environment(args.domain)
    first = time.perf_counter() - start
    size_mb = (domain_dir(args.domain) / "db.json").stat().st_size / 1e6

    # Wall time includes waiting for a CPU on a shared machine; process CPU time is the copy's own cost.
    load_times, load_cpu = [], []
    for _ in range(args.loads):
        start, cpu = time.perf_counter(), time.process_time()
        load_environment(args.domain)
        load_cpu.append(time.process_time() - cpu)
        load_times.append(time.perf_counter() - start)
    median_load, median_cpu = statistics.median(load_times), statistics.median(load_cpu)

    tasks = json.loads((domain_dir(args.domain) / "tasks.json").read_text(encoding="utf-8"))
    actions = [(task["id"], action["name"], action["arguments"]) for task in tasks
               for action in task["evaluation_criteria"]["actions"] if action.get("requestor", "assistant") == "assistant"]
    envs = {task["id"]: load_environment(args.domain) for task in tasks}
    hash_env = next(iter(envs.values()))
    start = time.perf_counter()
    for i in range(args.calls):
        task_id, name, arguments = actions[i % len(actions)]
        envs[task_id].call(name, json.dumps(arguments))
    per_call = (time.perf_counter() - start) / args.calls
    start = time.perf_counter()
    hashes = 20
    for _ in range(hashes):  # the full cost; an environment keeps its hash between writes
        canonical_hash(hash_env.db)
    per_hash = (time.perf_counter() - start) / hashes

    print(f"{args.domain}: db.json {size_mb:.1f} MB")
    print(f"first load (read, validate, snapshot): {first * 1000:.0f} ms")
    print(f"fresh environment: wall median {median_load * 1000:.1f} ms (min {min(load_times) * 1000:.1f}), "
          f"CPU median {median_cpu * 1000:.1f} ms -> {1 / median_load:.0f} loads/s wall, {1 / median_cpu:.0f} loads/s "
          f"per core (bar {COPY_LIMIT_SECONDS * 1000:.0f} ms)")
    print(f"tool call (gold action mix, JSON arguments): {per_call * 1e6:.0f} us/call")
    print(f"database hash (uncached): {per_hash * 1000:.1f} ms")
    return 0 if median_cpu < COPY_LIMIT_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
