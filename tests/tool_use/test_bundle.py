"""The bundled Trajectory2Task data: tau2-format generated tasks, checked against their manifests."""

import hashlib
import json
import shutil
from collections import Counter

import pytest

from datasets.base import DatasetError
from datasets.registry import load_bundled as load_registered
from datasets.tau2.bundle import task_json
from datasets.tool_use.bundle import DATA_DIR, load_bundled, load_splits, read_manifest
from datasets.tool_use.generator import SCENARIOS, SCRIPT_KEY, Call, get_domain, replay


@pytest.fixture(scope="module")
def bundle():
    return load_bundled()


def test_benchmark_shape(bundle):
    assert (bundle.slug, bundle.kind, bundle.name) == ("trajectory2task", "tool_use", "Trajectory2Task tool use")
    assert [s.slug for s in bundle.scenarios] == list(SCENARIOS)
    assert [(s.name, s.labels_hidden) for s in bundle.splits] == [("train", False), ("dev", False), ("test", True)]
    test = Counter(r.scenario for r in bundle.splits[2].instances)
    assert all(test[s] >= 100 for s in SCENARIOS), test  # a pass^1 of 0.5 then has a 95% interval of about ±0.1
    sizes = {s.name: len(s.instances) for s in bundle.splits}
    assert sizes["train"] == 3 * sizes["test"] == 3 * sizes["dev"]
    assert {r.input["domain"] for r in bundle.splits[2].instances} == {"retail", "airline"}
    assert load_registered("trajectory2task").splits[0].instances[0] == bundle.splits[0].instances[0]


def test_references_and_the_script_stay_out_of_the_input(bundle):
    record = next(r for r in bundle.splits[2].instances if r.scenario == "ambiguous")
    assert set(record.input) == {"domain", "db_hash", "task"}
    # The public side of a generated task is its id: its opening and scenario would let an agent recognise it.
    assert record.input["task"] == {"id": record.key}
    assert record.reference[SCRIPT_KEY]["reveal"] and record.reference["evaluation_criteria"]["actions"]
    whole = task_json(record.input, record.reference)
    assert whole[SCRIPT_KEY] == record.reference[SCRIPT_KEY] and whole["id"] == record.key


def test_no_customer_and_no_goal_crosses_splits(bundle):
    customers = {s.name: {r.reference[SCRIPT_KEY]["customer"] for r in s.instances} for s in bundle.splits}
    assert not customers["train"] & customers["dev"] and not customers["train"] & customers["test"]
    assert not customers["dev"] & customers["test"]
    def goal(record):
        return json.dumps([record.reference["evaluation_criteria"]["actions"], record.reference["instructions"]], sort_keys=True)

    goals = {s.name: {goal(r) for r in s.instances} for s in bundle.splits}
    assert not goals["train"] & goals["test"] and not goals["dev"] & goals["test"] and not goals["train"] & goals["dev"]
    # Within a split a final goal may recur in `changing` after a first goal, never twice in one scenario.
    per_scenario = Counter((r.scenario, goal(r)) for s in bundle.splits for r in s.instances)
    assert per_scenario.most_common(1)[0][1] == 1


def test_write_tools_are_balanced_and_goals_have_several_writes(bundle):
    for scenario in SCENARIOS:
        for domain in ("retail", "airline"):
            lead = Counter()
            for r in bundle.splits[0].instances:
                if r.scenario != scenario or r.input["domain"] != domain:
                    continue
                forbidden = r.reference["instructions"].get("actions_should_not_taken")
                first = (r.reference[SCRIPT_KEY].get("first_goal") or r.reference["evaluation_criteria"]["actions"])
                lead[(forbidden[0]["tool_name"] if forbidden else first[0]["name"])] += 1
            # Balanced as far as each tool allows: a write with no deciding fact (the profile address) cannot be
            # ambiguous, and one whose alternatives are rare (another card that would also pay) is rarer there.
            assert max(lead.values()) <= 3 * min(lead.values()), (scenario, domain, lead)
            if scenario == "standard":
                assert max(lead.values()) <= min(lead.values()) + 2, (domain, lead)
    writes = Counter(len(r.reference["evaluation_criteria"]["actions"]) for r in bundle.splits[2].instances if r.scenario == "standard")
    assert set(writes) == {1, 2, 3}


def test_every_bundled_task_still_replays_clean(bundle):
    """Guards the tau2 environments and the coded policy against drifting away from the shipped tasks."""
    for split in bundle.splits:
        for record in split.instances:
            domain = get_domain(record.input["domain"])
            gold = [Call(a["name"], a["arguments"]) for a in record.reference["evaluation_criteria"]["actions"]]
            outcome = replay(domain, gold)
            assert outcome.ok, (record.key, outcome.problem)
            for forbidden in record.reference["instructions"].get("actions_should_not_taken", []):
                broken = domain.policy.violations(outcome.env.db, forbidden["tool_name"], forbidden["arguments"])
                assert [r.id for r in broken] == [record.reference[SCRIPT_KEY]["refusal_rule"]], record.key


def _copy(tmp_path):
    shutil.copytree(DATA_DIR, tmp_path / "data")
    return tmp_path / "data"


def test_tampering_and_malformed_tasks_are_named(tmp_path):
    root = _copy(tmp_path)
    path = root / "airline" / "tasks_standard.json"
    tasks = json.loads(path.read_text())
    tasks[2]["evaluation_criteria"]["actions"][0]["name"] = "refund_everything"
    path.write_text(json.dumps(tasks))
    with pytest.raises(DatasetError, match="does not match the manifest"):
        load_splits(root)
    manifest = json.loads((root / "airline" / "manifest.json").read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "airline" / "manifest.json").write_text(json.dumps(manifest))
    assert read_manifest(root / "airline")["domain"] == "airline"
    with pytest.raises(DatasetError) as caught:
        load_splits(root)
    assert "tasks_standard.json" in str(caught.value) and f"task '{tasks[2]['id']}'" in str(caught.value)
    assert "unknown tool 'refund_everything'" in str(caught.value)
    shutil.rmtree(root / "airline")
    shutil.rmtree(root / "retail")
    with pytest.raises(DatasetError, match="no domain folder"):
        load_splits(root)


def test_a_task_without_its_script_is_refused(tmp_path):
    root = _copy(tmp_path)
    path = root / "retail" / "tasks_changing.json"
    tasks = json.loads(path.read_text())
    del tasks[0][SCRIPT_KEY]
    path.write_text(json.dumps(tasks, indent=4) + "\n")
    manifest = json.loads((root / "retail" / "manifest.json").read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "retail" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=f"task '{tasks[0]['id']}': {SCRIPT_KEY}: is missing"):
        load_splits(root)
