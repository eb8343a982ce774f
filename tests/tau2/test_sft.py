"""Fine-tuning lines from tau2 rollouts, in the shape of Trajectory2Task's 5_sft.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient
from evaluation.tau2.episode import run_tau2_episode
from evaluation.tau2.replay import read_domain_tasks
from evaluation.tau2.sft import Rollout, export_rollouts, tau2_tools, validate_line
from evaluation.tau2.user import AGENT_GREETING, LLMConfig, LLMUserSimulator
from tests.user_endpoint import GoldAgentPolicy, ScenarioUserPolicy

RELEASE = Path("/work/shared/external/t2t/examples")


@pytest.fixture(scope="module")
def rollout():
    task = read_domain_tasks("retail", "datasets/tau2/data/retail/tasks.json")[0]
    agent, user = PolicyServer(GoldAgentPolicy("retail", task)).start_background(), PolicyServer(ScenarioUserPolicy()).start_background()
    config = LLMConfig(base_url=user.base_url, model="scenario-user")
    try:
        with EndpointClient(LLMConfig(agent.base_url, f"gold-retail-{task.id}").endpoint()) as agent_client, \
                EndpointClient(config.endpoint()) as user_client:
            episode = run_tau2_episode(agent_client, "retail", task, LLMUserSimulator(user_client, task, config))
    finally:
        agent.stop()
        user.stop()
    return Rollout(domain="retail", scenario="standard", success=True, transcript=episode.messages)


def test_successful_rollout_becomes_one_valid_line(rollout):
    failed = Rollout(domain="retail", scenario="standard", success=False, transcript=rollout.transcript)
    [line] = list(export_rollouts([rollout, failed]))
    data = validate_line(line)
    assert set(data) == {"messages", "tools"}
    roles = [m["role"] for m in data["messages"]]
    assert roles[:3] == ["system", "assistant", "user"] and roles[-1] == "assistant"
    assert data["messages"][1] == {"role": "assistant", "content": AGENT_GREETING}
    assert {"assistant", "tool"} <= set(roles) and "###STOP###" not in line
    calls = [c["function"]["name"] for m in data["messages"] for c in m.get("tool_calls") or []]
    assert calls[-1] == "exchange_delivered_order_items"
    assert data["tools"] == tau2_tools("retail")
    assert list(export_rollouts([rollout], scenarios=["infeasible"])) == []


@pytest.mark.skipif(not RELEASE.exists(), reason="the Trajectory2Task release records are not on this machine")
@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_tools_match_the_release(domain):
    release = [json.loads(line) for line in (RELEASE / domain / "5_sft.jsonl").read_text().splitlines() if line.strip()]
    ours = {t["function"]["name"]: t["function"]["parameters"].get("required", []) for t in tau2_tools(domain)}
    for example in release:
        assert set(example) == {"messages", "tools"}
        theirs = {t["function"]["name"]: t["function"]["parameters"].get("required", []) for t in example["tools"]}
        # The release's tau2 fork predates a few tools of today's tau2 (retail's get_item_details); every tool
        # it has, ours has, with the same required parameters.
        assert {name: ours.get(name) for name in theirs} == theirs
