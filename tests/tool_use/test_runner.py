import json
from collections import defaultdict

import pytest

from datasets.tool_use.bundle import load_bundled
from datasets.tool_use.env import ToolEnv
from evaluation.base import Instance, ResultRow
from evaluation.baselines.server import PolicyServer, tool_call
from evaluation.baselines.tool_use import NaiveAgentPolicy, ReferenceAgentPolicy
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.registry import get_evaluator_class
from evaluation.tool_use.evaluator import ToolUseEvaluator
from evaluation.tool_use.runner import run_episode
from evaluation.tool_use.simulator import ScriptedUserSimulator

PER_SCENARIO = 3  # per domain, from the bundled test split


@pytest.fixture(scope="module")
def sample():
    test = next(s for s in load_bundled().splits if s.name == "test")
    picked, count = [], defaultdict(int)
    for r in test.instances:
        if count[(r.input["domain"], r.scenario)] < PER_SCENARIO:
            count[(r.input["domain"], r.scenario)] += 1
            picked.append(Instance(r.key, r.input, r.reference, r.scenario, id=r.key))
    return picked


def _serve(policy):
    server = PolicyServer(policy).start_background()
    return server, EndpointClient(EndpointConfig(server.base_url, policy.model_id, max_retries=0))


@pytest.fixture(scope="module")
def outcomes(sample):
    evaluator = ToolUseEvaluator()
    results = {}
    for policy in (ReferenceAgentPolicy(), NaiveAgentPolicy()):
        server, client = _serve(policy)
        try:
            results[policy.model_id] = [(i, evaluator.run(client, i, i.scenario, 0)) for i in sample]
        finally:
            client.close()
            server.stop()
    return results


def _rate(results, scenario):
    hits = [o.prediction["success"] for i, o in results if i.scenario == scenario]
    return sum(hits) / len(hits)


def test_reference_agent_solves_every_scenario(outcomes):
    for scenario in ToolUseEvaluator.scenarios:
        assert _rate(outcomes["t2t-reference-agent"], scenario) == 1.0, [
            o.prediction["failure_reason"] for i, o in outcomes["t2t-reference-agent"] if not o.prediction["success"]]


def test_naive_agent_fails_where_it_should_ask_or_refuse(outcomes):
    naive, reference = outcomes["t2t-naive-agent"], outcomes["t2t-reference-agent"]
    assert _rate(naive, "standard") == 1.0
    assert _rate(naive, "ambiguous") < _rate(reference, "ambiguous")
    assert _rate(naive, "changing") == 0.0 and _rate(naive, "infeasible") == 0.0
    failed = next(o for i, o in naive if i.scenario == "infeasible")
    assert "policy forbids" in failed.prediction["failure_reason"]


def test_protocol_metrics_tell_the_careful_agent_from_the_hasty_one(outcomes):
    for model_id, confirmed in (("t2t-reference-agent", 1.0), ("t2t-naive-agent", 0.0)):
        rows = [o.metrics for i, o in outcomes[model_id] if o.metrics["writes"]]
        assert rows and all(m["confirmed_writes"] == confirmed * m["writes"] for m in rows), model_id
    asked = {model_id: [o.metrics["asked_first"] for i, o in outcomes[model_id] if i.scenario == "ambiguous" and o.metrics["acted"]]
             for model_id in outcomes}
    assert asked["t2t-reference-agent"] and all(asked["t2t-reference-agent"])
    assert asked["t2t-naive-agent"] and not any(asked["t2t-naive-agent"])
    rows = [ResultRow(i, 0, o.prediction, o.metrics) for i, o in outcomes["t2t-naive-agent"] if i.scenario == "ambiguous"]
    scores = {s.metric: s.value for s in ToolUseEvaluator().score("ambiguous", rows)}
    assert scores["confirmed_write_rate"] == 0.0 and scores["asked_before_acting"] == 0.0


def test_outcome_shape(outcomes):
    instance, outcome = outcomes["t2t-reference-agent"][0]
    assert set(outcome.prediction) >= {"success", "failure_reason", "final_db_hash"}
    assert outcome.prediction["final_db_hash"] == instance.reference["expected_db_hash"]
    assert set(outcome.metrics) >= {"success", "turns", "tool_errors", "tool_calls"}
    assert outcome.transcript[0]["role"] == "system" and outcome.transcript[-1]["role"] == "user"
    assert any(m["role"] == "tool" for m in outcome.transcript)
    assert outcome.prompt_tokens > 0 and outcome.completion_tokens > 0 and outcome.latency_ms > 0
    assert outcome.metrics["turns"] == sum(1 for m in outcome.transcript if m["role"] == "assistant" and not m.get("tool_calls"))


class _Clumsy:
    """Sends a malformed call, an unknown tool and a bad argument type, then talks."""

    model_id = "clumsy"

    def reply(self, messages, tools, params):
        if not any(m["role"] == "tool" for m in messages):
            broken = tool_call("get_user", {})
            broken["function"]["arguments"] = '{"user_id": '
            return {"content": None, "tool_calls": [broken, tool_call("teleport", {}), tool_call("get_user", {"user_id": 7})]}
        return {"content": "Could you repeat that?"}


def test_malformed_calls_are_counted_and_reported(sample):
    record = next(i for i in sample if i.input["domain"] == "retail")
    server, client = _serve(_Clumsy())
    try:
        env = ToolEnv.fresh("retail", record.input["db_seed"])
        episode = run_episode(client, env, ScriptedUserSimulator(record.input, record.reference, record.scenario, max_turns=3))
        assert (episode.tool_calls, episode.tool_errors, episode.invalid_tool_calls) == (3, 3, 3)
        errors = [m["content"] for m in episode.messages if m["role"] == "tool"]
        assert errors[0].startswith("Error: arguments of 'get_user' are not valid JSON")
        assert errors[1].startswith("Error: unknown tool 'teleport'")
        assert "must be of type string" in errors[2]
        assert episode.stop_reason == "max_turns" and episode.turns == 3
        stopped = run_episode(client, ToolEnv.fresh("retail", record.input["db_seed"]),
                              ScriptedUserSimulator(record.input, record.reference, record.scenario), max_errors=2)
        assert stopped.stop_reason == "max_errors"
    finally:
        client.close()
        server.stop()


def _row(key, trial, success, error_code=""):
    instance = Instance(key, {}, {}, "standard", id=key)
    metrics = {"success": float(success), "turns": 4.0, "tool_errors": 1.0, "tool_calls": 4.0}
    return ResultRow(instance, trial, {}, {} if error_code else metrics, error_code)


def test_score_pass_k_and_errored_rows():
    rows = [_row("a", t, True) for t in range(4)] + [_row("b", t, t < 2) for t in range(3)] + [_row("b", 3, False, "timeout")]
    scores = {s.metric: s for s in ToolUseEvaluator().score("standard", rows)}
    assert scores["pass_1"].value == pytest.approx((1 + 0.5) / 2) and scores["pass_1"].n == 2
    assert scores["pass_2"].value == pytest.approx((1 + 1 / 6) / 2)
    assert scores["pass_4"].value == pytest.approx(0.5)
    assert scores["pass_1"].ci_low <= scores["pass_1"].value <= scores["pass_1"].ci_high
    assert scores["avg_turns"].value == 4.0 and scores["tool_error_rate"].value == 0.25
    two_trials = {s.metric for s in ToolUseEvaluator().score("standard", [_row("a", t, True) for t in range(2)])}
    assert "pass_2" in two_trials and "pass_3" not in two_trials


def test_family_contract():
    cls = get_evaluator_class("tool_use")
    assert cls is ToolUseEvaluator and cls.default_trials == 4
    assert cls.headline_metric().name == "pass_1"
    assert [m.name for m in cls.metrics] == ["pass_1", "pass_2", "pass_3", "pass_4", "avg_turns", "tool_error_rate",
                                            "confirmed_write_rate", "asked_before_acting"]
    assert not next(m for m in cls.metrics if m.name == "avg_turns").higher_is_better
    snap = ToolUseEvaluator({"simulator": "llm", "user_endpoint": {"base_url": "http://x/v1", "model": "m", "api_key": "sk-secret"}}).snapshot()
    assert snap["simulator"] == "llm" and snap["max_turns"] == 10 and snap["kind"] == "tool_use"
    assert "sk-secret" not in json.dumps(snap)
    with pytest.raises(ValueError):
        ToolUseEvaluator({"simulator": "oracle"})
