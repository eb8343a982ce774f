"""Time scoring 1,000,000 next-action predictions against the 2 s bar (DESIGN §3).

Usage: python bench/bench_scoring.py [--n 1000000] [--sessions 90000] [--bootstrap 1000] [--repeat 3]
Predictions are built like the evaluator's (parser output dicts); only ``next_action_scores`` is timed.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.metrics.next_action import CLICK_TYPES, next_action_scores  # noqa: E402

LIMIT_SECONDS = 2.0


def synthetic(n: int, sessions: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    session_ids = [f"{rng.getrandbits(64):016x}_2025-04-03T01:06:11.330000Z_2025-04-03T01:08:28.535000Z" for _ in range(sessions)]
    names = [f"search_results.product_{i}.product_detail" for i in range(200)] + ["nav_bar.search_input", "buybox.purchase_form.add_to_cart"]
    references, predictions = [], []
    for i in range(n):
        kind = rng.choices(("click", "input", "terminate"), (0.85, 0.11, 0.04))[0]
        references.append({"session_id": session_ids[i * sessions // n], "type": kind,
                           "name": rng.choice(names) if kind != "terminate" else "", "text": "bike light" if kind == "input" else "",
                           "click_type": rng.choice(CLICK_TYPES) if kind == "click" else ""})
        guess = rng.choices(("click", "input", "terminate", "invalid"), (0.8, 0.1, 0.05, 0.05))[0]
        predictions.append({"type": guess, "name": rng.choice(names), "text": "Bike light", "rationale": "",
                            "click_type": rng.choice(CLICK_TYPES) if guess == "click" else "",
                            "parse_error": "no JSON object in the reply" if guess == "invalid" else ""})
    return predictions, references


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=90_000, help="about 11 steps a session, as in OPeRA")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    predictions, references = synthetic(args.n, args.sessions)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        scores = next_action_scores(predictions, references, bootstrap=args.bootstrap)
        times.append(time.perf_counter() - started)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()  # a separate, slower run: tracing costs time, so it is not part of the timing
    next_action_scores(predictions, references, bootstrap=args.bootstrap)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    best = min(times)
    print(f"scored {args.n:,} predictions ({args.sessions:,} sessions, bootstrap={args.bootstrap}) "
          f"in {best:.3f} s best of {args.repeat}, median {statistics.median(times):.3f} s "
          f"(runs: {', '.join(f'{t:.3f}' for t in times)})")
    print(f"ratio to the {LIMIT_SECONDS:g} s limit: {best / LIMIT_SECONDS:.2f} -> {'PASS' if best <= LIMIT_SECONDS else 'FAIL'}")
    print(f"peak memory: scoring allocates {traced_peak / 2**20:.0f} MiB at most; process peak RSS {rss_after:.0f} MiB "
          f"({rss_after - rss_before:+.0f} MiB over the inputs)")
    print(f"exact_match={scores['exact_match']['value']:.4f} CI [{scores['exact_match']['ci_low']:.4f}, {scores['exact_match']['ci_high']:.4f}]")


if __name__ == "__main__":
    main()
