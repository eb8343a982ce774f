"""The tau2 LLM user simulator, against real HTTP endpoints (the scenario-playing stand-in and a faulty one)."""

from __future__ import annotations

import json

import pytest

from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient
from evaluation.tau2.tasks import Description, StructuredInstructions, Task, UserScenario
from evaluation.tau2.user import (AGENT_GREETING, OUT_OF_SCOPE, STOP, TRANSFER, LLMConfig, LLMUserSimulator, SimulatorError,
                                  flipped_conversation, is_stop, system_prompt)
from tests.fault_server import completion
from tests.user_endpoint import ScenarioUserPolicy, scenario_sections

TASK = Task(
    id="5",
    description=Description(purpose="hidden from the user"),
    user_scenario=UserScenario(
        persona="You are polite\nbut in a hurry.",
        instructions=StructuredInstructions(
            domain="retail", reason_for_call="You want to cancel order #W2378156.", task_instructions="Insist once.",
            known_info="You are Yusuf Rossi in zip code 19122.", unknown_info="You do not remember your email address."),
    ),
)


def test_system_prompt_is_guidelines_then_the_scenario():
    prompt = system_prompt(TASK)
    for marker in (STOP, TRANSFER, OUT_OF_SCOPE):
        assert marker in prompt
    guidelines, scenario = prompt.split("<scenario>\n")
    assert "Never invent facts" in guidelines and "wait until the agent confirms" in guidelines
    assert scenario.startswith("Persona:\n\tYou are polite\n\tbut in a hurry.\nInstructions:\n\tDomain: retail\n")
    assert "\tReason for call:\n\t\tYou want to cancel order #W2378156.\n" in scenario
    assert "\tUnknown info:\n\t\tYou do not remember your email address.\n" in scenario
    assert scenario.endswith("\t\tInsist once.\n</scenario>")
    assert "hidden from the user" not in prompt
    assert scenario_sections(prompt)["Known info"] == "You are Yusuf Rossi in zip code 19122."


def test_roles_are_flipped_and_tool_traffic_hidden():
    transcript = [
        {"role": "system", "content": "policy"},
        {"role": "user", "content": "I want to cancel."},
        {"role": "assistant", "content": "Looking.", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "x", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "{\"secret\": 1}"},
        {"role": "assistant", "content": "Which order?"},
        {"role": "user", "content": "#W1"},
    ]
    assert flipped_conversation(transcript) == [
        {"role": "user", "content": AGENT_GREETING},
        {"role": "assistant", "content": "I want to cancel."},
        {"role": "user", "content": "Which order?"},
        {"role": "assistant", "content": "#W1"},
    ]
    assert is_stop(f"bye {TRANSFER}") and is_stop(OUT_OF_SCOPE) and not is_stop("###STOP")


@pytest.fixture
def user_endpoint():
    server = PolicyServer(ScenarioUserPolicy(patience=3)).start_background()
    yield server
    server.stop()


def test_plays_the_scenario_over_http(user_endpoint):
    config = LLMConfig(base_url=user_endpoint.base_url, model="scenario-user", params={"temperature": 0.0})
    with EndpointClient(config.endpoint()) as client:
        user = LLMUserSimulator(client, TASK, config, max_turns=10)
        opening = user.opening()
        assert opening == "Hi. You want to cancel order #W2378156."
        transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": opening},
                      {"role": "assistant", "content": "Can you tell me your name and zip code?"}]
        assert user.reply(transcript, "h") == "Sure. You are Yusuf Rossi in zip code 19122."
        transcript += [{"role": "user", "content": "Sure."}, {"role": "assistant", "content": "The order is cancelled, all done."}]
        assert STOP in user.reply(transcript, "h")
        assert user.prompt_tokens > 0 and user.completion_tokens > 0


def test_says_stop_at_max_turns_without_asking_the_endpoint(fault_server):
    server = fault_server(lambda n, request: (500, {}, b"{}"))
    config = LLMConfig(base_url=server.base_url, model="fault-model")
    with EndpointClient(config.endpoint()) as client:
        user = LLMUserSimulator(client, TASK, config, max_turns=2)
        transcript = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
        assert user.reply(transcript, "h") == STOP
    assert server.calls == 0


def test_endpoint_that_starts_failing_mid_episode_raises_simulator_error(fault_server):
    # Two good turns, then a server that only fails: bounded retries, then SimulatorError.
    server = fault_server(lambda n, request: (200, {}, completion("fine")) if n < 2 else (503, {}, b'{"error": "down"}'))
    config = LLMConfig(base_url=server.base_url, model="fault-model")
    with EndpointClient(config.endpoint(max_retries=2, backoff_base=0.01)) as client:
        user = LLMUserSimulator(client, TASK, config)
        transcript = [{"role": "user", "content": user.opening()}, {"role": "assistant", "content": "How can I help?"}]
        assert user.reply(transcript, "h") == "fine"
        with pytest.raises(SimulatorError) as info:
            user.reply(transcript + [{"role": "user", "content": "fine"}, {"role": "assistant", "content": "?"}], "h")
    assert info.value.role == "user" and info.value.code == "server_error"
    assert "user simulator endpoint" in str(info.value) and "after 3 attempts" in str(info.value)
    assert server.calls == 2 + 3


def test_empty_reply_is_a_simulator_error(fault_server):
    server = fault_server(lambda n, request: (200, {}, completion("  ")))
    config = LLMConfig(base_url=server.base_url, model="fault-model")
    with EndpointClient(config.endpoint()) as client, pytest.raises(SimulatorError, match="empty message"):
        LLMUserSimulator(client, TASK, config).opening()


def test_config_snapshot_is_json_and_holds_no_key():
    config = LLMConfig(base_url="https://llm.example/v1", model="m", params={"temperature": 0.0, "seed": 3})
    snapshot = json.loads(json.dumps(config.snapshot()))
    assert snapshot == {"base_url": "https://llm.example/v1", "model": "m", "params": {"temperature": 0.0, "seed": 3},
                        "prompt_version": "tau2-user-1"}
    assert LLMConfig.from_snapshot(snapshot) == config
    endpoint = config.endpoint(api_key="sk-secret", max_retries=1)
    assert endpoint.api_key == "sk-secret" and endpoint.params == {"temperature": 0.0, "seed": 3} and endpoint.max_retries == 1


def test_transfer_marker_ends_the_episode(fault_server):
    from evaluation.tau2.episode import run_tau2_episode
    from tests.user_endpoint import IdleAgentPolicy

    user_server = fault_server(lambda n, request: (200, {}, completion("I want a refund." if n == 0 else f"Fine. {TRANSFER}")))
    agent_server = PolicyServer(IdleAgentPolicy()).start_background()
    config = LLMConfig(base_url=user_server.base_url, model="fault-model")
    try:
        with EndpointClient(config.endpoint()) as user_client, \
                EndpointClient(LLMConfig(agent_server.base_url, "idle-agent").endpoint()) as agent:
            episode = run_tau2_episode(agent, "retail", TASK, LLMUserSimulator(user_client, TASK, config))
    finally:
        agent_server.stop()
    assert episode.stop_reason == "user_stop" and episode.turns == 1
    assert episode.messages[-1] == {"role": "user", "content": f"Fine. {TRANSFER}"}
