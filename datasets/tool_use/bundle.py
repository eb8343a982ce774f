"""The bundled Trajectory2Task splits (``data/<domain>/``), validated and shaped as ``BenchmarkData``.

Regenerate with ``manage.py generate_tool_tasks --domain <name> --n 200 --seed 7 --out datasets/tool_use/data``.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from datasets.base import BenchmarkData, DatasetError, Instance, ScenarioInfo, SplitData, read_jsonl
from datasets.tool_use.domains import all_domains
from datasets.tool_use.pipeline import GENERATOR_VERSION, SCENARIOS, SPLIT_FRACTIONS

DATA_DIR = Path(__file__).parent / "data"
SPLITS = tuple(name for name, _ in SPLIT_FRACTIONS)
SCENARIO_INFO = {
    "standard": ("Standard", "The user states everything needed."),
    "ambiguous": ("Ambiguous", "A deciding fact is withheld until the agent asks for it."),
    "changing": ("Changing", "The user switches to a new goal at the first confirmation; only the final goal may persist."),
    "infeasible": ("Infeasible", "The request breaks a policy rule; the agent must refuse and say why."),
}
# pass^1 on the bundled test split, one trial per task, scripted user (tests/tool_use/test_adversarial.py
# asserts the ordering; rerun it after regenerating the data and update these figures).
ROBUSTNESS = {
    "reference agent": (1.00, 1.00, 1.00, 1.00),
    "naive agent": (1.00, 0.45, 0.00, 0.00),
    "scenario prober": (0.00, 0.00, 0.00, 0.00),  # hedge + confirmation request; refuses if the user insists
    "policy paster": (0.00, 0.00, 0.00, 0.00),  # refuses, pasting the policy
    "shotgun asker": (1.00, 0.45, 0.00, 0.00),  # asks for every fact at once, then acts
    "stall-then-act": (1.00, 0.45, 0.00, 0.00),  # a non-committal line, then acts unconfirmed
    "refuse-everything": (0.00, 0.00, 0.00, 0.00),  # refuses without a reason
}


def robustness_note() -> str:
    figures = "; ".join(f"{agent} {'/'.join(f'{v:.2f}' for v in row)}" for agent, row in ROBUSTNESS.items())
    return ("Robustness check: the scripted user answers a refusal or a confirmation request alike in every scenario, "
            "and agents that game the benchmark score at most the naive agent's pass^1 in every scenario "
            f"(pass^1 on the test split, {'/'.join(SCENARIOS)}: {figures}).")


INPUT_FIELDS = ("domain", "db_seed", "initial_db_hash", "user", "instruction", "script")
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _check_action(path: str, row: int, name: str, value: Any, tools: set[str]) -> None:
    if not isinstance(value, list):
        raise DatasetError(path, "must be a list of {name, arguments}", row=row, field_name=name)
    for i, action in enumerate(value):
        if not isinstance(action, dict) or not isinstance(action.get("name"), str) or not isinstance(action.get("arguments"), dict):
            raise DatasetError(path, f"item {i} must be an object with 'name' and 'arguments'", row=row, field_name=name)
        if action["name"] not in tools:
            raise DatasetError(path, f"item {i} names unknown tool '{action['name']}'", row=row, field_name=name)


def validate_row(path: str, row: int, data: Any) -> dict[str, Any]:
    """Check one task row; raise ``DatasetError`` naming the file, row (1-based) and field."""
    if not isinstance(data, dict):
        raise DatasetError(path, "a task row must be a JSON object", row=row)
    expected: dict[str, type | tuple[type, ...]] = {
        "id": str, "domain": str, "scenario": str, "db_seed": int, "initial_db_hash": str, "user": dict,
        "instruction": str, "script": dict, "gold_actions": list, "expected_outputs": list, "expected_db_hash": str,
    }
    for name, kind in expected.items():
        if name not in data:
            raise DatasetError(path, "missing", row=row, field_name=name)
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise DatasetError(path, f"must be of type {getattr(kind, '__name__', kind)}", row=row, field_name=name)
    domains = all_domains()
    if data["domain"] not in domains:
        raise DatasetError(path, f"unknown domain '{data['domain']}' (known: {', '.join(domains)})", row=row, field_name="domain")
    if data["scenario"] not in SCENARIOS:
        raise DatasetError(path, f"unknown scenario '{data['scenario']}'", row=row, field_name="scenario")
    for name in ("initial_db_hash", "expected_db_hash"):
        if not _SHA.match(data[name]):
            raise DatasetError(path, "must be a sha256 hex digest", row=row, field_name=name)
    tools = {t.name for t in domains[data["domain"]].tools}
    _check_action(path, row, "gold_actions", data["gold_actions"], tools)
    _check_action(path, row, "forbidden_actions", data.get("forbidden_actions", []), tools)
    if not all(isinstance(o, str) and o for o in data["expected_outputs"]):
        raise DatasetError(path, "must be a list of non-empty strings", row=row, field_name="expected_outputs")
    if not isinstance(data["script"].get("opening"), str) or not data["script"]["opening"]:
        raise DatasetError(path, "must have a non-empty 'opening'", row=row, field_name="script")
    if not isinstance(data["user"].get("id"), str):
        raise DatasetError(path, "must have a string 'id'", row=row, field_name="user")
    if data["scenario"] == "infeasible" and not data.get("forbidden_actions"):
        raise DatasetError(path, "an infeasible task needs the action the policy forbids", row=row, field_name="forbidden_actions")
    if data["scenario"] != "infeasible" and not data["gold_actions"]:
        raise DatasetError(path, "must not be empty outside the infeasible scenario", row=row, field_name="gold_actions")
    return data


def read_tasks(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a JSONL file of tasks."""
    rows = []
    seen: set[str] = set()
    for number, data in read_jsonl(path):
        validate_row(str(path), number, data)
        if data["id"] in seen:
            raise DatasetError(str(path), f"duplicate task id '{data['id']}'", row=number, field_name="id")
        seen.add(data["id"])
        rows.append(data)
    return rows


def to_instance(task: dict[str, Any]) -> Instance:
    """Input: what the episode runner and the scripted user need. Reference: what verification needs."""
    return Instance(
        key=task["id"],
        input={"task_id": task["id"], **{k: task[k] for k in INPUT_FIELDS}},
        reference={
            "gold_actions": task["gold_actions"],
            "expected_outputs": task["expected_outputs"],
            "expected_db_hash": task["expected_db_hash"],
            "forbidden_actions": task.get("forbidden_actions", []),
        },
        scenario=task["scenario"],
    )


def load_splits(root: str | Path = DATA_DIR) -> BenchmarkData:
    """Every ``<root>/<domain>/`` folder with a manifest, checked against its sha256, as one benchmark."""
    root = Path(root)
    per_split: dict[str, list[Instance]] = {s: [] for s in SPLITS}
    manifests = {}
    for folder in sorted(p for p in root.iterdir() if (p / "manifest.json").is_file()):
        manifest_path = folder / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            files = manifest["files"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(str(manifest_path), f"unreadable manifest: {exc}") from None
        for split in SPLITS:
            path = folder / f"{split}.jsonl"
            if split not in files or not path.is_file():
                raise DatasetError(str(path), "split listed in the manifest is missing")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != files[split].get("sha256"):
                raise DatasetError(str(path), f"sha256 {digest[:12]}… does not match the manifest")
            per_split[split] += [to_instance(t) for t in read_tasks(path)]
        manifests[folder.name] = {k: manifest.get(k) for k in ("version", "seed", "counts", "report")}
    if not manifests:
        raise DatasetError(str(root), "no domain folder with a manifest.json")
    return BenchmarkData(
        slug="trajectory2task",
        name="Trajectory2Task tool use",
        kind="tool_use",
        version=GENERATOR_VERSION,
        license="CC-BY-4.0",
        description=(
            "Tool-calling agents in customer-service workflows (an online shop and a bank) under realistic "
            "intents: standard, ambiguous, changing and infeasible requests. Tasks are generated from explored "
            "tool trajectories and verified by replay; an episode succeeds when the final database hash equals "
            "the gold one and the agent told the user every expected output; an infeasible task also needs a refusal "
            "stating the specific reason. Metric: pass^k. " + robustness_note()
        ),
        scenarios=[ScenarioInfo(s, *SCENARIO_INFO[s]) for s in SCENARIOS],
        splits=[SplitData(s, per_split[s], labels_hidden=(s == "test")) for s in SPLITS],
        extra={"domains": manifests, "robustness": {"scenarios": list(SCENARIOS), "pass_1": {a: list(r) for a, r in ROBUSTNESS.items()}}},
    )


def load_bundled() -> BenchmarkData:
    return load_splits(DATA_DIR)
