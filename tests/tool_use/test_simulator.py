import pytest

from datasets.tool_use.bundle import load_bundled
from datasets.tool_use.env import ToolEnv
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tool_use.simulator import STOP, LLMUserSimulator, ScriptedUserSimulator


@pytest.fixture(scope="module")
def records():
    found = {}
    for record in load_bundled().splits[0].instances:
        found.setdefault((record.input["domain"], record.scenario), record)
    return found


def _sim(record, max_turns=10):
    return ScriptedUserSimulator(record.input, record.reference, record.scenario, max_turns=max_turns)


def _talk(sim, *agent_lines):
    transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": sim.opening()}]
    for line in agent_lines:
        transcript.append({"role": "assistant", "content": line})
        transcript.append({"role": "user", "content": sim.reply(transcript, sim.initial_hash)})
    return [m["content"] for m in transcript if m["role"] == "user"]


@pytest.mark.parametrize("domain", ["retail", "bank"])
def test_ambiguous_reveals_only_when_asked(records, domain):
    record = records[(domain, "ambiguous")]
    sim = _sim(record)
    (fact,) = record.input["script"]["reveal"]
    assert fact["reply"] not in sim.opening()
    said = _talk(sim, "What is the weather like?", f"I picked the first {fact['keywords'][0]}.", f"Sure. Could you tell me {fact['keywords'][0]}?")
    assert said[1] == said[2] == record.input["script"]["restatement"]  # naming the slot without asking reveals nothing
    assert said[3] == fact["reply"]


def test_confirmation_gets_yes_and_goal_state_ends(records):
    record = records[("retail", "standard")]
    sim = _sim(record)
    assert _talk(sim, "Shall I proceed? Please confirm.")[1] == "Yes, please go ahead."
    env = ToolEnv.fresh(record.input["domain"], record.input["db_seed"])
    for action in record.reference["gold_actions"]:
        env.call(action["name"], action["arguments"])
    transcript = [{"role": "user", "content": sim.opening()}, {"role": "assistant", "content": "Done."}]
    assert STOP in sim.reply(transcript, env.hash())


def test_changing_switches_at_first_confirmation_only(records):
    record = records[("bank", "changing")]
    sim = _sim(record)
    said = _talk(sim, "Shall I proceed? Please confirm.", "Shall I proceed with that? Please confirm.")
    assert said[1] == record.input["script"]["switch"] and said[1].startswith("Actually, instead I'd like")
    assert said[2] == "Yes, please go ahead."
    # An agent that acts without asking meets the switch on its first statement.
    assert _talk(_sim(record), "Done, your request is complete.")[1] == record.input["script"]["switch"]


def test_infeasible_insists_once_then_accepts(records):
    record = records[("retail", "infeasible")]
    said = _talk(_sim(record), "Sorry, I cannot do that.", "I'm afraid that is not allowed.")
    assert said[1] == record.input["script"]["insist"]
    assert said[2] == record.input["script"]["accept"] and STOP in said[2]
    # The goal state of an infeasible task is the untouched database: that alone does not end it.
    assert STOP not in _talk(_sim(record), "Let me look into it.")[1]


def test_changed_database_and_a_statement_end_the_dialogue(records):
    record = records[("retail", "standard")]
    sim = _sim(record)
    transcript = [{"role": "user", "content": sim.opening()}, {"role": "assistant", "content": "I did something."}]
    assert STOP in sim.reply(transcript, "0" * 64)
    transcript[-1]["content"] = "Did that help?"
    assert sim.reply(transcript, "0" * 64) == record.input["script"]["restatement"]


def test_max_turns_and_reproducibility(records):
    record = records[("bank", "standard")]
    said = _talk(_sim(record, max_turns=3), "Hm?", "Hm?", "Hm?")
    assert said[:3] == [said[0], said[1], said[1]] and said[3] == STOP
    assert _talk(_sim(record), "What?", "Shall I proceed? Please confirm.") == _talk(_sim(record), "What?", "Shall I proceed? Please confirm.")


class _Customer:
    model_id = "customer"

    def reply(self, messages, tools, params):
        # The simulator shows the agent's lines as "user" messages and its own as "assistant" ones.
        roles = [m["role"] for m in messages]
        return {"content": f"{len(messages)} messages, roles {','.join(roles)} {STOP}"}


def test_llm_simulator_swaps_roles(records):
    record = records[("retail", "standard")]
    server = PolicyServer(_Customer()).start_background()
    try:
        with EndpointClient(EndpointConfig(server.base_url, "customer")) as client:
            sim = LLMUserSimulator(client, record.input, max_turns=2)
            transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": sim.opening()},
                          {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}, {"role": "tool", "content": "{}"},
                          {"role": "assistant", "content": "Which order?"}]
            reply = sim.reply(transcript, "")
            assert reply == f"3 messages, roles system,assistant,user {STOP}"
            assert record.input["instruction"] in sim.system_prompt() and sim.prompt_tokens > 0
            transcript += [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
            assert sim.reply(transcript, "") == STOP
    finally:
        server.stop()
