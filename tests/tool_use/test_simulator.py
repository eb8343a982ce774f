import pytest

from datasets.tool_use.bundle import load_bundled
from datasets.tool_use.env import ToolEnv
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig
from datasets.tool_use.domain import render_value
from evaluation.tool_use.simulator import ACCEPT, CONFIRM, INSIST, STOP, LLMUserSimulator, ScriptedUserSimulator, asks_for


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
    assert _talk(sim, "Shall I proceed? Please confirm.")[1] == CONFIRM
    env = ToolEnv.fresh(record.input["domain"], record.input["db_seed"])
    for action in record.reference["gold_actions"]:
        env.call(action["name"], action["arguments"])
    transcript = [{"role": "user", "content": sim.opening()}, {"role": "assistant", "content": "Done."}]
    assert STOP in sim.reply(transcript, env.hash())


def _proposal(action):
    return "Shall I go ahead with " + ", ".join(f"{k}={render_value(v)}" for k, v in action["arguments"].items()) + "?"


def test_changing_switches_only_after_a_concrete_proposal(records):
    record = records[("bank", "changing")]
    first = record.input["script"]["first_goal"]
    switch = record.input["script"]["switch"]
    said = _talk(_sim(record), "Shall I proceed? Please confirm.", "Done, your request is complete.", _proposal(first),
                 "Shall I proceed with that? Please confirm.")
    # Neither a vague confirmation request nor a statement proposes the first goal: no switch yet.
    assert said[1] == CONFIRM and said[2] == record.input["script"]["restatement"]
    assert said[3] == switch and said[3].startswith("Actually, instead I'd like")
    assert said[4] == CONFIRM
    # An agent that acts on the first goal without asking meets the switch as well.
    sim = _sim(record)
    transcript = [{"role": "user", "content": sim.opening()}, {"role": "assistant", "content": "Done."}]
    assert sim.reply(transcript, "1" * 64) == switch


def test_refusal_meets_the_same_insistence_in_every_scenario(records):
    for (domain, scenario), record in records.items():
        said = _talk(_sim(record), "Sorry, I cannot do that.", "I'm afraid that is not allowed.")
        assert said[1] == INSIST and said[2] == ACCEPT and STOP in said[2], (domain, scenario)
    # The goal state of an infeasible task is the untouched database: that alone does not end it.
    assert STOP not in _talk(_sim(records[("retail", "infeasible")]), "Let me look into it.")[1]


@pytest.mark.parametrize("line", ["Would you like me to go ahead?", "Shall I do that?", "Is that right?",
                                  "Can you confirm the change?", "Please confirm (yes/no)."])
def test_common_confirmation_requests_get_yes_in_every_scenario(records, line):
    for (domain, scenario), record in records.items():
        assert _talk(_sim(record), line)[1] == CONFIRM, (domain, scenario)


_NATURAL_QUESTIONS = {"Which of your orders would you like to cancel?": "order_id", "Where should the refund go?": "refund_method_id",
                      "Which account is it?": "account_id", "Which card do you mean?": "card_id",
                      "Which transaction would you like to dispute?": "transaction_id", "Which items would you like to return?": "item_ids"}


@pytest.mark.parametrize("question,slot", _NATURAL_QUESTIONS.items())
def test_natural_questions_ask_for_their_fact(question, slot):
    assert asks_for(question, slot, [])
    assert not asks_for(question.rstrip("?") + ".", slot, [])  # a statement asks for nothing


def test_natural_question_reveals_the_withheld_fact(records):
    for domain in ("retail", "bank"):
        record = records[(domain, "ambiguous")]
        (fact,) = record.input["script"]["reveal"]
        question = next(q for q, slot in _NATURAL_QUESTIONS.items() if slot == fact["slot"] or
                        (slot == "account_id" and fact["slot"].endswith("account_id")) or (slot == "item_ids" and fact["slot"] == "item_id"))
        assert _talk(_sim(record), question)[1] == fact["reply"]


def test_a_question_asking_for_everything_reveals_nothing(records):
    shotgun = "Which order, which item, which card, which account, which transaction do you mean?"
    for (domain, scenario), record in records.items():
        if scenario == "ambiguous":
            (fact,) = record.input["script"]["reveal"]
            assert _talk(_sim(record), shotgun)[1] == record.input["script"]["restatement"], domain
            assert not asks_for(shotgun, fact["slot"], fact["keywords"])


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
