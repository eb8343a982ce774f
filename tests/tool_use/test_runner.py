"""The tool-use family end to end: generated tasks run by ToolUseEvaluator over real HTTP endpoints."""

import json

import pytest

from datasets.tool_use.generator import SCENARIOS, SCRIPT_KEY
from evaluation.base import Instance, ResultRow
from evaluation.baselines.server import tool_call
from evaluation.registry import get_evaluator_class
from evaluation.tau2.environment import load_environment
from evaluation.tau2.evaluator import public_verdict
from evaluation.tool_use.evaluator import ToolUseEvaluator
from evaluation.tool_use.runner import run_episode
from evaluation.tool_use.simulator import ACCEPT, INSIST
from tests.tool_use.generated import GoldToolUseAgent, Served, instance, pick, simulator, writes
from tests.user_endpoint import IdleAgentPolicy

CASES = [("retail", "standard", lambda t: writes(t) >= 2), ("airline", "standard", lambda t: True),
         ("retail", "ambiguous", lambda t: True), ("airline", "ambiguous", lambda t: True),
         ("retail", "changing", lambda t: True), ("airline", "changing", lambda t: True),
         ("retail", "infeasible", lambda t: writes(t) == 0),
         ("retail", "infeasible", lambda t: writes(t) == 1),
         ("airline", "infeasible", lambda t: True)]


@pytest.fixture(scope="module")
def gold_runs():
    evaluator = ToolUseEvaluator()
    runs = []
    for domain, scenario, want in CASES:
        task = pick(domain, scenario, want)
        with Served(GoldToolUseAgent(task)) as client:
            runs.append((task, evaluator.run(client, instance(task), scenario, 0)))
    return runs


def test_a_gold_agent_passes_every_scenario(gold_runs):
    assert {task["type"] for task, _ in gold_runs} == set(SCENARIOS)
    for task, outcome in gold_runs:
        prediction = outcome.prediction
        assert prediction["success"] is True and prediction["stop_reason"] == "user_stop", (task["id"], prediction["failures"])
        assert outcome.metrics["success"] == outcome.metrics["reward"] == 1.0
        assert set(prediction["components"]) >= set(prediction["reward_basis"])
        if task["type"] == "infeasible":
            assert prediction["reward_basis"][-1] == "REFUSAL" and outcome.metrics["reward_refusal"] == 1.0
            if not writes(task):  # nothing to do: the user insists once, then accepts
                assert [m["content"] for m in outcome.transcript if m["role"] == "user"][1:] == [INSIST, ACCEPT]


def test_outcome_shape_and_protocol_counts(gold_runs):
    task, outcome = gold_runs[0]
    assert outcome.transcript[0]["role"] == "system" and outcome.transcript[1]["content"] == task[SCRIPT_KEY]["opening"]
    assert outcome.transcript[-1]["role"] == "user" and any(m["role"] == "tool" for m in outcome.transcript)
    assert outcome.prompt_tokens > 0 and outcome.latency_ms > 0
    assert outcome.metrics["turns"] == sum(1 for m in outcome.transcript if m["role"] == "assistant" and not m.get("tool_calls"))
    # The gold agent writes without asking: every write is unconfirmed, and it asked nothing first.
    assert outcome.metrics["writes"] == writes(task) and outcome.metrics["confirmed_writes"] == 0.0
    assert outcome.metrics["acted"] == 1.0 and outcome.metrics["asked_first"] == 0.0
    public = public_verdict(outcome.prediction)
    assert public["components"]["DB"] == {"value": 1.0, "hidden_details": 0}


def test_an_idle_agent_fails_and_runs_out_of_turns():
    task = pick("retail", "ambiguous")
    with Served(IdleAgentPolicy()) as client:
        outcome = ToolUseEvaluator({"max_turns": 4}).run(client, instance(task), "ambiguous", 0)
    assert outcome.prediction["success"] is False and outcome.prediction["stop_reason"] == "max_turns"
    assert outcome.prediction["note"] and outcome.metrics["turns"] == 4
    # "Could you tell me more?" asks for no fact: the user restates its request each time.
    said = [m["content"] for m in outcome.transcript if m["role"] == "user"]
    assert said[1:4] == [task[SCRIPT_KEY]["restatement"]] * 3


class _Clumsy:
    """Sends a malformed call, an unknown tool and a bad argument type, then talks."""

    model_id = "clumsy"

    def reply(self, messages, tools, params):
        if not any(m["role"] == "tool" for m in messages):
            broken = tool_call("get_user_details", {})
            broken["function"]["arguments"] = '{"user_id": '
            return {"content": None, "tool_calls": [broken, tool_call("teleport", {}), tool_call("get_user_details", {"user_id": 7})]}
        return {"content": "Could you repeat that?"}


def test_malformed_calls_are_counted_and_reported():
    task = pick("retail", "standard")
    with Served(_Clumsy()) as client:
        episode = run_episode(client, load_environment("retail"), simulator(task, max_turns=3))
        assert (episode.tool_calls, episode.tool_errors, episode.invalid_tool_calls) == (3, 3, 3)
        errors = [m["content"] for m in episode.messages if m["role"] == "tool"]
        assert errors[0].startswith("Error: arguments of 'get_user_details' are not valid JSON")
        assert errors[1].startswith("Error: Tool 'teleport' not found")
        assert episode.stop_reason == "max_turns" and episode.turns == 3
        stopped = run_episode(client, load_environment("retail"), simulator(task), max_errors=2)
        assert stopped.stop_reason == "max_errors"


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
    assert cls is ToolUseEvaluator and cls.default_trials == 4 and not cls.needs_simulator
    assert cls.headline_metric().name == "pass_1"
    assert [m.name for m in cls.metrics] == ["pass_1", "pass_2", "pass_3", "pass_4", "avg_turns", "tool_error_rate",
                                            "confirmed_write_rate", "asked_before_acting"]
    snap = ToolUseEvaluator({"max_steps": 30}).snapshot()
    assert snap == {"kind": "tool_use", "prompt_version": "t2t-2", "max_turns": 16, "max_steps": 30, "max_errors": 5}
    assert json.loads(json.dumps(snap)) == snap
