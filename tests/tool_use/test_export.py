"""Fine-tuning export of generated-task rollouts: the same lines as tau2's, with tau2's tools."""

import json

import pytest

from evaluation.tau2.sft import Rollout, export_rollouts, finetune_example, tau2_tools, validate_line
from evaluation.tau2.user import AGENT_GREETING
from evaluation.tool_use.evaluator import ToolUseEvaluator
from tests.tool_use.generated import GoldToolUseAgent, Served, instance, pick, writes
from tests.user_endpoint import IdleAgentPolicy


@pytest.fixture(scope="module")
def rollouts():
    picked = [pick("retail", "standard"), pick("airline", "ambiguous"), pick("retail", "infeasible", lambda t: writes(t) == 0)]
    out = []
    for policy_of in (GoldToolUseAgent, lambda task: IdleAgentPolicy()):
        for task in picked:
            with Served(policy_of(task)) as client:
                outcome = ToolUseEvaluator({"max_turns": 3}).run(client, instance(task), task["type"], 0)
            domain = task["user_scenario"]["instructions"]["domain"]
            out.append(Rollout(domain, task["type"], outcome.prediction["success"], outcome.transcript))
    return out


def test_successful_rollouts_export_as_valid_lines(rollouts):
    lines = list(export_rollouts(rollouts))
    assert len(lines) == sum(r.success for r in rollouts) == 3
    for line, rollout in zip(lines, [r for r in rollouts if r.success]):
        data = validate_line(line)
        roles = [m["role"] for m in data["messages"]]
        assert roles[:3] == ["system", "assistant", "user"] and roles[-1] == "assistant"
        assert data["messages"][1] == {"role": "assistant", "content": AGENT_GREETING}
        assert "###STOP###" not in line and data["tools"] == tau2_tools(rollout.domain)


def test_scenario_filter(rollouts):
    only = list(export_rollouts(rollouts, scenarios=["infeasible"]))
    assert len(only) == 1 and "cannot" in json.loads(only[0])["messages"][-1]["content"]


def _valid():
    transcript = [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_user_details", "arguments": "{\"user_id\": \"u\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "thanks ###STOP###"},
    ]
    return finetune_example(transcript, [{"type": "function", "function": {"name": "get_user_details", "parameters": {}}}])


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["messages"].append({"role": "user", "content": "more"}), "last message"),
    (lambda d: d["messages"][3].update(tool_call_id="c9"), "unknown tool_call_id"),
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(arguments="{bad"), "not a JSON object"),
    (lambda d: d["messages"][2]["tool_calls"][0]["function"].update(name="rm_rf"), "not in 'tools'"),
    (lambda d: d["messages"][1].update(role="narrator"), "needs a role"),
    (lambda d: d.update(messages=[]), "non-empty"),
])
def test_validator_rejects_bad_lines(breakage, message):
    data = _valid()
    assert validate_line(json.dumps(data))["messages"][-1] == {"role": "assistant", "content": "Done."}
    breakage(data)
    with pytest.raises(ValueError, match=message):
        validate_line(json.dumps(data))
    with pytest.raises(ValueError, match="not JSON"):
        validate_line("{")
