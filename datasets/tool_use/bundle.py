"""The bundled Trajectory2Task benchmark: generated tau2-format tasks on tau2's retail and airline
environments (``data/<domain>/``), checked against their manifests and shaped as ``BenchmarkData``.

Regenerate with ``manage.py generate_tool_tasks --domain <retail|airline> --test-per-scenario 50 --seed 7
--out datasets/tool_use/data``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from datasets.base import BenchmarkData, DatasetError, Instance, ScenarioInfo, SplitData
from datasets.tau2.bundle import SCENARIO_INFO, SCENARIOS, read_task_folder, to_instance
from datasets.tool_use.generator import DOMAINS, GENERATOR_VERSION, SCRIPT_KEY, SPLIT_FRACTIONS

DATA_DIR = Path(__file__).parent / "data"
SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)
# Everything the scripted customer says or would reveal (the opening, the scenario), kept with the reference.
PRIVATE_FIELDS = ("user_scenario", "description", "type", "trajectory")
# pass^1 on the bundled test split, one trial per task, scripted user (bench/t2t_robustness.py measures it;
# tests/tool_use/test_adversarial.py asserts the ordering on a sample; rerun it after regenerating the data).
ROBUSTNESS: dict[str, tuple[float, ...]] = {
    "reference agent": (1.00, 1.00, 1.00, 1.00),
    "naive agent": (1.00, 0.33, 0.00, 0.00),
    "scenario prober": (0.00, 0.00, 0.00, 0.00),  # hedge + confirmation request; refuses if the user insists
    "policy paster": (0.00, 0.00, 0.00, 0.00),  # refuses, pasting the policy
    "shotgun asker": (1.00, 0.33, 0.00, 0.00),  # asks for every fact at once, then acts
    "stall-then-act": (1.00, 0.33, 0.00, 0.00),  # a non-committal line, then acts unconfirmed
    "refuse-everything": (0.00, 0.00, 0.00, 0.00),  # refuses without a reason
    "rule guesser": (0.40, 0.14, 0.00, 0.00),  # refuses with a single-rule tool's reason, reading nothing
}


def robustness_note() -> str:
    if not ROBUSTNESS:
        return ""
    figures = "; ".join(f"{agent} {'/'.join(f'{v:.2f}' for v in row)}" for agent, row in ROBUSTNESS.items())
    return ("Robustness check: the scripted user answers a refusal or a confirmation request alike in every scenario, "
            "and agents that game the benchmark score at most the naive agent's pass^1 in every scenario "
            f"(pass^1 on the test split, {'/'.join(SCENARIOS)}: {figures}).")


def read_manifest(folder: Path) -> dict[str, Any]:
    """A domain folder's manifest, with every task file checked against the sha256 it lists."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(str(path), f"unreadable manifest: {exc}") from None
    for name, digest in files.items():
        task_file = folder / name
        if not task_file.is_file():
            raise DatasetError(str(task_file), "listed in the manifest but missing")
        actual = hashlib.sha256(task_file.read_bytes()).hexdigest()
        if actual != digest:
            raise DatasetError(str(task_file), f"sha256 {actual[:12]}… does not match the manifest")
    return manifest


def load_splits(root: str | Path = DATA_DIR) -> BenchmarkData:
    """Every ``<root>/<domain>/`` folder of generated tasks as one benchmark with train / dev / test."""
    root = Path(root)
    per_split: dict[str, list[Instance]] = {s: [] for s in SPLITS}
    domains: dict[str, Any] = {}
    for domain in DOMAINS:
        folder = root / domain
        if not folder.is_dir():
            continue
        manifest = read_manifest(folder)
        task_set = read_task_folder(folder, domain)
        by_id = {task_id: (scenario, task) for scenario, tasks in task_set.tasks.items() for task_id, task in tasks}
        for split in SPLITS:
            for task_id in task_set.splits.get(split, []):
                scenario, task = by_id[task_id]
                if SCRIPT_KEY not in task:
                    raise DatasetError(f"{folder.name}/tasks_{scenario}.json", f"task '{task_id}': {SCRIPT_KEY}: is missing")
                per_split[split].append(to_instance(domain, scenario, task_id, task, task_set.db_hash, private=PRIVATE_FIELDS))
        domains[domain] = {"db_hash": task_set.db_hash,
                           **{k: manifest.get(k) for k in ("version", "seed", "counts", "writes_per_task", "tools", "report")}}
    if not domains:
        raise DatasetError(str(root), f"no domain folder ({', '.join(DOMAINS)}) with generated tasks")
    return BenchmarkData(
        slug="trajectory2task",
        name="Trajectory2Task tool use",
        kind="tool_use",
        version=GENERATOR_VERSION,
        license="MIT",
        description=(
            "Tool-calling agents in customer-service workflows on tau2-bench's retail and airline environments, under "
            "realistic intents: standard, ambiguous, changing and infeasible requests of one to three writes. Tasks are "
            "generated from explored tool trajectories, verified by replay and written in tau2's task format; a scripted "
            "customer plays the user. A trial succeeds when the final database equals the gold replay's and the agent "
            "told the customer the expected figures; an infeasible request must be refused with its specific reason and "
            "the facts of the request behind it, without the forbidden write, while any allowed part is still done. Metric: pass^k. " + robustness_note()
        ).strip(),
        scenarios=[ScenarioInfo(s, *SCENARIO_INFO[s]) for s in SCENARIOS],
        splits=[SplitData(s, per_split[s], labels_hidden=(s == "test")) for s in SPLITS],
        citation="Trajectory2Task: a verifiable data-generation pipeline for tool-calling agents (2026); tau2-bench (Barres et al., 2025).",
        extra={"domains": domains,
               "robustness": {"scenarios": list(SCENARIOS), "pass_1": {a: list(r) for a, r in ROBUSTNESS.items()}}},
    )


def load_bundled() -> BenchmarkData:
    return load_splits(DATA_DIR)
