"""The Trajectory2Task generator on tau2's environments: deterministic, verified, split by customer."""

import io
import json
import random
from collections import Counter

import pytest

from datasets.tool_use.generator import (SCENARIOS, SCRIPT_KEY, Call, Explorer, draft_for, generate_tasks, get_domain, load_db,
                                         paraphrase_opening, replay, split_customers, write_folder)
from datasets.tool_use.policy import refusal_problem
from datasets.tool_use.text import normalise
from evaluation.baselines.server import PolicyServer
from evaluation.canonical import canonical_hash
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tau2.environment import load_environment
from evaluation.tau2.replay import read_domain_tasks, verify_tasks


@pytest.fixture(scope="module", params=["retail", "airline"])
def small(request):
    return generate_tasks(request.param, 3, seed=3)


def _tasks(generation):
    return [t for by_scenario in generation.tasks.values() for rows in by_scenario.values() for t in rows]


def test_counts_add_up(small):
    for split, by_scenario in small.tasks.items():
        expected = {"train": 9, "dev": 3, "test": 3}[split]
        assert {s: len(rows) for s, rows in by_scenario.items()} == {s: expected for s in SCENARIOS}
    for report in small.report.values():
        assert report.generated == report.verified + report.dropped == report.verified + sum(report.drop_reasons.values())
        assert report.verified == 15
    ids = [t["id"] for t in _tasks(small)]
    assert len(set(ids)) == len(ids)


def test_generation_is_deterministic(small):
    assert _tasks(generate_tasks(small.domain, 3, seed=3)) == _tasks(small)
    assert _tasks(generate_tasks(small.domain, 3, seed=4)) != _tasks(small)


def test_no_customer_and_no_goal_crosses_splits(small):
    customers = {split: {t[SCRIPT_KEY]["customer"] for rows in by.values() for t in rows} for split, by in small.tasks.items()}
    assert not customers["train"] & customers["test"] and not customers["dev"] & customers["test"] and not customers["train"] & customers["dev"]
    assigned = split_customers(get_domain(small.domain).customers(load_db(get_domain(small.domain))), 3)
    assert all(customers[split] <= set(assigned[split]) for split in customers)
    goals = [json.dumps([t["evaluation_criteria"]["actions"], t["user_scenario"]["instructions"].get("actions_should_not_taken")],
                        sort_keys=True) for t in _tasks(small)]
    assert len(set(goals)) == len(goals)


def test_tasks_are_tau2_tasks_whose_gold_replays_clean(small):
    tasks = read_domain_tasks(small.domain, io.StringIO(json.dumps(_tasks(small))))
    report = verify_tasks(small.domain, tasks)
    assert all(not r["errors"] for r in report.values())
    for task in tasks:
        changed = report[task.id]["changed"]
        assert bool(changed) == bool(task.gold_actions), task.id  # every goal writes; a bare refusal writes nothing


def test_each_scenario_has_its_event(small):
    domain = get_domain(small.domain)
    for task in _tasks(small):
        script, instructions = task[SCRIPT_KEY], task["user_scenario"]["instructions"]
        gold = [Call(a["name"], a["arguments"]) for a in task["evaluation_criteria"]["actions"]]
        if task["type"] == "ambiguous":
            assert script["reveal"] and all(fact["reply"] not in script["opening"] for fact in script["reveal"])
        if task["type"] == "changing":
            first = [Call(a["name"], a["arguments"]) for a in script["first_goal"]]
            assert replay(domain, first).ok and first != gold and script["switch"]
        if task["type"] == "infeasible":
            forbidden = instructions["actions_should_not_taken"][0]
            broken = domain.policy.violations(load_db(domain), forbidden["tool_name"], forbidden["arguments"])
            assert [r.id for r in broken] == [script["refusal_rule"]]
            assert instructions.get("actions_should_be_taken", []) == [{"tool_name": c.name, "arguments": c.arguments} for c in gold]
            assert task["evaluation_criteria"]["reward_basis"][:2] == ["DB", "PROHIBITED_ACTION"]
        else:
            assert gold and task["evaluation_criteria"]["reward_basis"] == ["DB", "COMMUNICATE"]
            assert replay(domain, gold).ok


def test_write_folder_counts_tools_and_writes(small, tmp_path):
    manifest = write_folder(small, tmp_path)
    folder = tmp_path / small.domain
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "split_tasks.json",
                                                         *sorted(f"tasks_{s}.json" for s in SCENARIOS)]
    splits = json.loads((folder / "split_tasks.json").read_text())
    assert {k: len(v) for k, v in splits.items()} == {"train": 36, "dev": 12, "test": 12}
    for split, ids in splits.items():
        tasks = [t for rows in small.tasks[split].values() for t in rows]
        writes = Counter(len(t["evaluation_criteria"]["actions"]) for t in tasks)
        assert manifest["writes_per_task"][split] == dict(sorted(writes.items()))
        assert sum(manifest["tools"][split].values()) >= sum(k * v for k, v in writes.items())
    assert json.loads((folder / "manifest.json").read_text())["counts"] == manifest["counts"]


def test_goals_have_one_to_three_writes():
    sizes = Counter(len(t["evaluation_criteria"]["actions"]) for t in _tasks(generate_tasks("retail", 6, seed=5))
                    if t["type"] == "standard")
    assert set(sizes) == {1, 2, 3}


@pytest.mark.parametrize("domain_name", ["retail", "airline"])
def test_every_rule_is_stated_in_the_policy_and_recognised(domain_name):
    """Each rule's own message states its reason; pasting the policy or naming several rules does not count."""
    policy = get_domain(domain_name).policy
    for rule in policy.rules:
        assert rule.reason_pattern().search(normalise(rule.message)), rule.id
        assert refusal_problem(policy, rule, [f"I'm sorry, I can't do that. {rule.message}"]) == ""
        assert refusal_problem(policy, rule, ["I'm sorry, I can't do that."]) != ""
        assert refusal_problem(policy, rule, [f"I can't: {policy.text}"]) != ""
        everything = " ".join(r.message for r in policy.rules)
        assert refusal_problem(policy, rule, [f"I can't. {everything}"]) == "a message names several policy rules"


def test_rules_as_code_match_the_tools_that_enforce_them():
    """Where a tau2 retail tool itself refuses, the coded rule says so too (and the other way round)."""
    domain = get_domain("retail")
    db = load_db(domain)
    delivered = next(o for o in db["orders"].values() if o["status"] == "delivered")
    pending = next(o for o in db["orders"].values() if o["status"] == "pending")
    for order, reason in ((delivered, "no longer needed"), (pending, "found a better price"), (pending, "ordered by mistake")):
        call = Call("cancel_pending_order", {"order_id": order["order_id"], "reason": reason})
        broken = domain.policy.violations(db, call.name, call.arguments)
        tool_accepts = load_environment("retail").call(call.name, call.arguments).ok
        assert tool_accepts == (not broken), (order["status"], reason)


class _Rewriter:
    model_id = "rewriter"

    def __init__(self, keep_facts: bool):
        self.keep_facts = keep_facts

    def reply(self, messages, tools, params):
        text = messages[-1]["content"]
        return {"content": ("Hello there! " + text) if self.keep_facts else "Hello, please help me with my order."}


@pytest.mark.parametrize("keep_facts", [True, False])
def test_paraphrase_keeps_facts_or_is_refused(keep_facts):
    domain = get_domain("retail")
    explorer = Explorer(domain, 1)
    rng = random.Random(1)
    draft = next(d for d in (draft_for(domain, explorer, load_db(domain), "standard", u, "cancel_pending_order", rng)
                             for u in sorted(load_db(domain)["users"])[:40]) if d is not None)
    original = draft.opening
    server = PolicyServer(_Rewriter(keep_facts)).start_background()
    try:
        with EndpointClient(EndpointConfig(server.base_url, "rewriter")) as client:
            kept = paraphrase_opening(client, draft)
    finally:
        server.stop()
    assert kept is keep_facts
    assert draft.opening == (f"Hello there! {original}" if keep_facts else original)


def test_generation_leaves_the_initial_database_alone(small):
    """Replays copy only the records they change; the shared initial database must come out untouched."""
    assert canonical_hash(load_db(get_domain(small.domain))) == load_environment(small.domain).db_hash()


def test_a_refusal_must_name_the_facts_behind_its_reason(small):
    """Giving the requested tool's rule without reading a record does not count: the refusal names the
    request's own facts (the order's status, the booking date, the flight already flown)."""
    domain = get_domain(small.domain)
    infeasible = [t for t in _tasks(small) if t["type"] == "infeasible"]
    for task in infeasible:
        script = task[SCRIPT_KEY]
        rule = domain.policy.rule(script["refusal_rule"])
        evidence = script.get("refusal_evidence", [])
        assert bool(evidence) == (rule.evidence is not None), task["id"]
        if not evidence:
            continue
        forbidden = task["user_scenario"]["instructions"]["actions_should_not_taken"][0]
        explained = rule.explain(load_db(domain), forbidden["arguments"])
        assert refusal_problem(domain.policy, rule, [explained], evidence) == ""
        assert refusal_problem(domain.policy, rule, [rule.message], evidence).startswith("no message names the facts")
