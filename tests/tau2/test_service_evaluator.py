"""The tau2 family as the service runs it: the bundled task sets, one trial over real HTTP endpoints, the
stored verdict and what non-staff see of it, simulator faults and pass^k."""

from __future__ import annotations

import json

import pytest

from datasets.tau2 import domain_dir
from datasets.tau2.bundle import load_domain, task_json
from evaluation.base import Instance, ResultRow
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.runner import WorkItem, evaluate_one
from evaluation.tau2.environment import load_environment
from evaluation.tau2.tasks import read_tasks, task_to_json
from evaluation.tau2.evaluator import SIMULATOR_ERROR, Tau2Evaluator, public_verdict
from tests.user_endpoint import GoldAgentPolicy, IdleAgentPolicy, NumberJudgePolicy, ScenarioUserPolicy


@pytest.fixture(scope="module")
def bundles():
    return {domain: load_domain(domain) for domain in ("retail", "airline")}


@pytest.fixture(scope="module")
def users():
    server = PolicyServer(ScenarioUserPolicy(), NumberJudgePolicy()).start_background()
    yield server
    server.stop()


def instance_of(bundle, split: str, index: int = 0) -> Instance:
    record = next(s for s in bundle.splits if s.name == split).instances[index]
    return Instance(record.key, record.input, record.reference, record.scenario, id=index + 1)


def evaluator_for(users, *, judge: bool = True, **options) -> Tau2Evaluator:
    config = {"user": {"base_url": users.base_url, "model": "scenario-user", "api_key": "sk-user-secret"}, **options}
    if judge:
        config["judge"] = {"base_url": users.base_url, "model": "number-judge", "prompt_version": "tau2-nl-judge-1"}
    return Tau2Evaluator(config)


def test_bundled_task_sets_keep_tau2_splits_and_hide_test_references(bundles):
    counts = {slug: {s.name: len(s.instances) for s in data.splits} for slug, data in ((d.slug, d) for d in bundles.values())}
    assert counts == {"tau2-retail": {"train": 74, "test": 40}, "tau2-airline": {"train": 30, "test": 20}}
    for data in bundles.values():
        assert data.kind == "tau2" and [s.slug for s in data.scenarios] == ["standard"]
        assert {s.name: s.labels_hidden for s in data.splits} == {"train": False, "test": True}
        for split in data.splits:
            for record in split.instances:
                assert "evaluation_criteria" not in record.input["task"] and record.scenario == "standard"
    # Input and reference together are the task as tau2 ships it (null fields left out).
    shipped = {t.id: task_to_json(t) for t in read_tasks(domain_dir("airline") / "tasks.json")}
    record = bundles["airline"].splits[1].instances[0]
    assert task_json(record.input, record.reference) == shipped[record.key]


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_gold_agent_trial_succeeds_with_every_component(bundles, users, domain):
    instance = instance_of(bundles[domain], "test")
    evaluator = evaluator_for(users)
    agent = PolicyServer(GoldAgentPolicy(domain, evaluator.task(instance))).start_background()
    try:
        with EndpointClient(EndpointConfig(base_url=agent.base_url, model=f"gold-{domain}-{instance.key}")) as client:
            outcome = evaluator.run(client, instance, "standard", 0)
    finally:
        agent.stop()
    assert not outcome.error_code
    assert outcome.prediction["success"] is True and outcome.prediction["stop_reason"] == "user_stop"
    assert outcome.metrics["success"] == outcome.metrics["reward"] == outcome.metrics["reward_db"] == 1.0
    assert set(outcome.prediction["components"]) >= set(outcome.prediction["reward_basis"])
    assert outcome.metrics["tool_calls"] > 0 and any(m["role"] == "tool" for m in outcome.transcript)


def test_idle_agent_fails_and_the_public_verdict_keeps_only_values_and_counts(bundles, users):
    evaluator = evaluator_for(users)
    env = load_environment("airline")
    instance = next(i for i in (instance_of(bundles["airline"], "test", n) for n in range(20))
                    if any(env.is_write(a.name) for a in evaluator.task(i).gold_actions))
    agent = PolicyServer(IdleAgentPolicy()).start_background()
    try:
        with EndpointClient(EndpointConfig(base_url=agent.base_url, model="idle-agent")) as client:
            outcome = evaluator.run(client, instance, "standard", 0)
    finally:
        agent.stop()
    prediction = outcome.prediction
    assert prediction["success"] is False and outcome.metrics["success"] == 0.0
    assert prediction["failures"]  # the reasons, for staff: which records differ, what was not said
    public = public_verdict(prediction)
    assert public["success"] is False and public["reward"] == 0.0
    for name, component in prediction["components"].items():
        assert public["components"][name] == {"value": component["value"], "hidden_details": len(component["details"])}
    shown = json.dumps(public)
    assert '"details"' not in shown and "failures" not in public
    reasons = [d for c in prediction["components"].values() for d in c["details"]]
    assert reasons and all(reason not in shown for reason in reasons)
    assert any("gold call" in reason for reason in reasons) and any("/" in reason for reason in prediction["components"]["DB"]["details"])


def test_simulator_failure_is_an_evaluation_error_and_the_agents_fault_stays_the_agents(bundles, users, fault_server):
    instance = instance_of(bundles["airline"], "test")
    dead_user = fault_server(lambda n, request: (500, {}, b"{}"))
    evaluator = Tau2Evaluator({"user": {"base_url": dead_user.base_url, "model": "scenario-user"}})
    agent = PolicyServer(IdleAgentPolicy()).start_background()
    try:
        with EndpointClient(EndpointConfig(base_url=agent.base_url, model="idle-agent", max_retries=0)) as client:
            outcome = evaluate_one(evaluator, client, WorkItem(instance, "standard", 0))
        assert outcome.error_code == SIMULATOR_ERROR and "user simulator endpoint" in outcome.error
        with EndpointClient(EndpointConfig(base_url=dead_user.base_url, model="idle-agent", max_retries=0)) as client:
            outcome = evaluate_one(evaluator_for(users), client, WorkItem(instance, "standard", 0))
        assert outcome.error_code not in ("", SIMULATOR_ERROR, "internal")
    finally:
        agent.stop()


def test_nl_graded_task_without_a_judge_is_an_evaluation_error(bundles, users):
    evaluator = evaluator_for(users, judge=False)
    instance = next(i for i in (instance_of(bundles["retail"], "test", n) for n in range(40))
                    if evaluator.task(i).evaluation_criteria.nl_assertions)
    with EndpointClient(EndpointConfig(base_url=users.base_url, model="scenario-user")) as client:
        outcome = evaluator.run(client, instance, "standard", 0)
    assert outcome.error_code == SIMULATOR_ERROR and "no judge" in outcome.error


def test_pass_k_leaves_out_trials_lost_to_the_simulator(users):
    evaluator = evaluator_for(users)
    task = Instance("t1", {}, {}, id=1)
    other = Instance("t2", {}, {}, id=2)
    rows = [ResultRow(task, 0, {}, {"success": 1.0, "turns": 2, "tool_calls": 2, "tool_errors": 0}),
            ResultRow(task, 1, {}, {}, error_code=SIMULATOR_ERROR),
            ResultRow(other, 0, {}, {"success": 0.0, "turns": 3, "tool_calls": 1, "tool_errors": 1}),
            ResultRow(other, 1, {}, {}, error_code="timeout")]
    scores = {s.metric: s for s in evaluator.score("standard", rows)}
    assert scores["pass_1"].value == pytest.approx(0.5) and scores["pass_1"].n == 2
    assert "pass_2" not in scores  # t1 has one counted trial
    assert scores["tool_error_rate"].value == pytest.approx(1 / 3)


def test_calls_per_item_and_snapshot_without_secrets(users):
    evaluator = evaluator_for(users, max_steps=12, max_turns=5)
    assert evaluator.calls_per_item() == 17
    snapshot = evaluator.snapshot()
    assert snapshot["user"]["model"] == "scenario-user" and "sk-user-secret" not in json.dumps(snapshot)
    with pytest.raises(ValueError, match="needs a user simulator"):
        Tau2Evaluator({})
