import copy
import hashlib
import json

import pytest

from datasets.tool_use.domains import get_domain
from datasets.tool_use.env import initial_db
from datasets.tool_use.pipeline import SCENARIOS, generate_tasks, paraphrase_opening, verify_task, write_splits
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig


@pytest.fixture(scope="module")
def small():
    return generate_tasks("retail", 24, seed=3, walks=300)


def _rows(generation):
    return [t.to_row() for tasks in generation.splits.values() for t in tasks]


def test_counts_add_up(small):
    tasks = [t for tasks in small.splits.values() for t in tasks]
    for scenario in SCENARIOS:
        report = small.report[scenario]
        assert report.verified == 6 == sum(t.scenario == scenario for t in tasks)
        assert report.generated == report.verified + report.dropped
        assert report.dropped == sum(report.drop_reasons.values())
    assert small.exploration["walks"] == 300
    assert small.exploration["feasible"] + small.exploration["refused_by_policy"] + small.exploration["dead_ends"] == 300
    assert all(small.splits[s] for s in ("dev", "test")) and len(small.splits["train"]) > len(small.splits["test"])
    assert len({t.id for t in tasks}) == len(tasks)


def test_generation_is_deterministic(small):
    assert _rows(generate_tasks("retail", 24, seed=3, walks=300)) == _rows(small)
    assert _rows(generate_tasks("retail", 24, seed=4, walks=300)) != _rows(small)


def test_tasks_verify_and_match_their_scenario(small):
    domain = get_domain("retail")
    db = initial_db("retail", 3)
    for task in (t for tasks in small.splits.values() for t in tasks):
        expected = task.expected_db_hash
        assert verify_task(domain, db, task) == [] and task.expected_db_hash == expected
        if task.scenario == "infeasible":
            assert task.gold_actions == [] and task.expected_db_hash == task.initial_db_hash
            rules = domain.policy.violations(db, task.forbidden_actions[0]["name"], task.forbidden_actions[0]["arguments"])
            assert [r.keyword for r in rules] == task.expected_outputs
            assert task.script["insist"] and "###STOP###" in task.script["accept"]
        else:
            assert task.expected_db_hash != task.initial_db_hash
        if task.scenario == "ambiguous":
            (reveal,) = task.script["reveal"]
            assert reveal["reply"] not in task.script["opening"]
            assert reveal["reply"] in task.instruction
        if task.scenario == "changing":
            assert task.script["switch"].startswith("Actually, instead I'd like")
            assert task.script["first_goal"] != task.gold_actions[0]


def test_verification_catches_broken_tasks(small):
    domain = get_domain("retail")
    db = initial_db("retail", 3)
    standard = copy.deepcopy(next(t for t in small.splits["train"] if t.scenario == "standard" and t.expected_outputs))
    standard.expected_outputs = ["999999.99"]
    assert verify_task(domain, db, standard) == ["expected outputs do not come from the replayed result"]
    infeasible = copy.deepcopy(next(t for t in small.splits["train"] if t.scenario == "infeasible"))
    infeasible.expected_outputs = ["a rule that is not broken"]
    assert "the policy refuses it" in verify_task(domain, db, infeasible)[0]
    standard.gold_actions = [{"name": "cancel_order", "arguments": {"order_id": "#W0", "reason": "no longer needed"}}]
    assert verify_task(domain, db, standard)[0].startswith("gold action cancel_order is not feasible")


def test_write_splits_and_manifest(small, tmp_path):
    manifest = write_splits(small, tmp_path)
    folder = tmp_path / "retail"
    assert manifest.seed == 3 and manifest.requested == 24
    for split, info in manifest.files.items():
        data = (folder / info["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["sha256"]
        assert len(data.splitlines()) == info["rows"] == sum(manifest.counts[split].values())
    stored = json.loads((folder / "manifest.json").read_text())
    assert stored["report"]["standard"]["verified"] == 6
    assert "generated" in manifest.table() and "infeasible" in manifest.table()


class _Rewriter:
    def __init__(self, keep_facts: bool):
        self.model_id = "rewriter"
        self.keep_facts = keep_facts

    def reply(self, messages, tools, params):
        text = messages[-1]["content"]
        return {"content": ("Hello there! " + text) if self.keep_facts else "Hello, please help me with my order."}


@pytest.mark.parametrize("keep_facts", [True, False])
def test_paraphrase_keeps_facts_or_is_refused(small, keep_facts):
    task = copy.deepcopy(next(t for t in small.splits["train"] if t.scenario == "standard"))
    original = task.script["opening"]
    server = PolicyServer(_Rewriter(keep_facts)).start_background()
    try:
        with EndpointClient(EndpointConfig(server.base_url, "rewriter")) as client:
            kept = paraphrase_opening(client, task)
    finally:
        server.stop()
    assert kept is keep_facts
    assert task.script["opening"] == (f"Hello there! {original}" if keep_facts else original)
