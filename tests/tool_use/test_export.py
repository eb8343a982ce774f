import json

import pytest

from datasets.tool_use.bundle import load_bundled
from evaluation.base import Instance
from evaluation.baselines.server import PolicyServer
from evaluation.baselines.tool_use import NaiveAgentPolicy, ReferenceAgentPolicy
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tool_use.evaluator import ToolUseEvaluator
from evaluation.tool_use.export import Rollout, export_rollouts, finetune_example, validate_line


@pytest.fixture(scope="module")
def rollouts():
    records = [r for r in load_bundled().splits[1].instances if r.input["domain"] == "retail"]
    picked = [next(r for r in records if r.scenario == s) for s in ("standard", "ambiguous", "infeasible")]
    out = []
    for policy in (ReferenceAgentPolicy(), NaiveAgentPolicy()):
        server = PolicyServer(policy).start_background()
        try:
            with EndpointClient(EndpointConfig(server.base_url, policy.model_id)) as client:
                for r in picked:
                    outcome = ToolUseEvaluator().run(client, Instance(r.key, r.input, r.reference, r.scenario, id=r.key), r.scenario, 0)
                    out.append(Rollout("retail", r.scenario, outcome.prediction["success"], outcome.transcript))
        finally:
            server.stop()
    return out


def test_successful_rollouts_export_as_valid_lines(rollouts):
    lines = list(export_rollouts(rollouts))
    assert len(lines) == sum(r.success for r in rollouts) >= 3
    for line in lines:
        data = validate_line(line)
        assert data["messages"][0]["role"] == "system" and data["messages"][-1]["role"] == "assistant"
        assert any(m.get("tool_calls") for m in data["messages"]) and any(m["role"] == "tool" for m in data["messages"])
        assert "###STOP###" not in line
        assert {t["function"]["name"] for t in data["tools"]} >= {"get_order", "cancel_order"}


def test_scenario_filter(rollouts):
    only = list(export_rollouts(rollouts, scenarios=["infeasible"]))
    assert len(only) == sum(r.success and r.scenario == "infeasible" for r in rollouts) == 1


def _valid():
    transcript = [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_user", "arguments": "{\"user_id\": \"u\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "thanks ###STOP###"},
    ]
    return finetune_example(transcript, [{"type": "function", "function": {"name": "get_user", "parameters": {}}}])


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
