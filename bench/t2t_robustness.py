"""pass^1 of the scripted reference and naive agents and of every adversary on the bundled Trajectory2Task
split, per scenario and per domain: the robustness figures the benchmark page states.

Usage: python bench/t2t_robustness.py [--split test] [--per-cell N] [--jobs 2] [--check]
One trial per task, each agent served over HTTP on loopback and run through ``ToolUseEvaluator`` with the
scripted user, exactly as a submission is. Agents run in parallel processes (``--jobs``). ``--check`` exits
with 1 when the figures differ from those ``datasets/tool_use/bundle.py`` publishes (``ROBUSTNESS``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets.tool_use.bundle import ROBUSTNESS, load_splits  # noqa: E402
from datasets.tool_use.generator import DOMAINS, SCENARIOS  # noqa: E402
from evaluation.baselines.server import ChatPolicy  # noqa: E402
from evaluation.baselines.tool_use import NaiveAgentPolicy, ReferenceAgentPolicy  # noqa: E402
from evaluation.tool_use.evaluator import ToolUseEvaluator  # noqa: E402
from tests.tool_use.adversaries import ADVERSARIES, sample, served_results  # noqa: E402

# The names the benchmark page uses (datasets/tool_use/bundle.py ROBUSTNESS), by model id.
LABELS = {"t2t-reference-agent": "reference agent", "t2t-naive-agent": "naive agent",
          "adversary-scenario-prober": "scenario prober", "adversary-policy-paster": "policy paster",
          "adversary-shotgun-asker": "shotgun asker", "adversary-stall-then-act": "stall-then-act",
          "adversary-refuse-everything": "refuse-everything", "adversary-rule-guesser": "rule guesser"}
AGENTS: tuple[ChatPolicy, ...] = (ReferenceAgentPolicy(), NaiveAgentPolicy(), *ADVERSARIES)
CHECK_TOLERANCE = 0.005


def _instances(split: str, per_cell: int | None):
    return sample(next(s for s in load_splits().splits if s.name == split).instances, per_cell)


def _run(job: tuple[int, str, int | None]) -> tuple[str, dict[str, bool], float]:
    """One agent on the split, in its own process (its own server, evaluator and gold replays)."""
    index, split, per_cell = job
    policy = AGENTS[index]
    start = time.perf_counter()
    results = served_results(policy, _instances(split, per_cell), ToolUseEvaluator())
    return policy.model_id, results, time.perf_counter() - start


def _rate(results: dict[str, bool], keys: list[str]) -> float:
    return sum(results[k] for k in keys) / len(keys) if keys else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=["train", "dev", "test"])
    parser.add_argument("--per-cell", type=int, default=None, help="tasks per (domain, scenario); default: all")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--check", action="store_true", help="compare with the figures the benchmark page publishes")
    args = parser.parse_args()

    instances = _instances(args.split, args.per_cell)
    cells = {(d, s): [i.key for i in instances if i.input["domain"] == d and i.scenario == s] for d in DOMAINS for s in SCENARIOS}
    print(f"{len(instances)} {args.split} tasks, one trial each, {len(AGENTS)} agents, {args.jobs} processes", flush=True)
    board: dict[str, dict[str, bool]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for model_id, results, seconds in pool.map(_run, [(i, args.split, args.per_cell) for i in range(len(AGENTS))]):
            board[model_id] = results
            print(f"  {LABELS[model_id]:<18} {seconds:6.1f} s", flush=True)

    overall = {model_id: [_rate(results, [k for d in DOMAINS for k in cells[d, s]]) for s in SCENARIOS]
               for model_id, results in board.items()}
    header = f"{'pass^1':<18}" + "".join(f"{s:>12}" for s in SCENARIOS)
    print(f"\nBoth domains ({', '.join(f'{s} n={sum(len(cells[d, s]) for d in DOMAINS)}' for s in SCENARIOS)})\n{header}")
    for model_id, row in overall.items():
        print(f"{LABELS[model_id]:<18}" + "".join(f"{v:>12.2f}" for v in row))
    for domain in DOMAINS:
        print(f"\n{domain}\n{header}")
        for model_id, results in board.items():
            print(f"{LABELS[model_id]:<18}" + "".join(f"{_rate(results, cells[domain, s]):>12.2f}" for s in SCENARIOS))
    failed = sorted(k for k, ok in board["t2t-reference-agent"].items() if not ok)
    print(f"\nreference agent failures: {len(failed)}" + (f" ({', '.join(failed[:20])})" if failed else ""))
    print("\nROBUSTNESS = {\n" + "".join(f'    "{LABELS[m]}": ({", ".join(f"{v:.2f}" for v in row)}),\n'
                                         for m, row in overall.items()) + "}")

    if args.check:
        differ = [label for model_id, row in overall.items() if (label := LABELS[model_id]) not in ROBUSTNESS
                  or any(abs(a - b) > CHECK_TOLERANCE for a, b in zip(ROBUSTNESS[label], row))]
        if differ:
            print(f"\nthe benchmark page's figures differ for: {', '.join(differ)}")
            return 1
        print("\nthe benchmark page states these figures")
    return 0


if __name__ == "__main__":
    sys.exit(main())
