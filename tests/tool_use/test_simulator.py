"""The scripted user on generated tau2 tasks: its rules, and that it is fair (DESIGN §1.2)."""

import json

import pytest

from datasets.tool_use.generator import SCRIPT_KEY
from evaluation.tau2.environment import load_environment
from evaluation.tool_use.simulator import (ACCEPT, ACCEPT_REST, CONFIRM, DONE, INSIST, LEAVE, STOP, ScriptedUserSimulator,
                                           asks_for, identifiers, proposes)
from tests.tool_use.generated import as_task, pick, simulator, writes

DOMAINS = ("retail", "airline")
SHOTGUN = "Which order, which item, which payment method, which reservation and which flight do you mean?"
# Messages whose reply must not depend on the scenario: refusals, confirmation requests, identity
# questions, small talk and stalling.
NEUTRAL = ("Sorry, I cannot do that.", "I'm afraid that is not allowed.", "Would you like me to go ahead?", "Shall I do that?",
           "Is that right?", "Can you confirm the change?", "Please confirm (yes/no).", "Could you tell me your email or user id?",
           "What a lovely day.", "Let me look into it.", SHOTGUN)


def _talk(sim, *agent_lines, db_hash=None):
    transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": sim.opening()}]
    for line in agent_lines:
        transcript.append({"role": "assistant", "content": line})
        transcript.append({"role": "user", "content": sim.reply(transcript, db_hash or sim.initial_hash)})
    return [m["content"] for m in transcript if m["role"] == "user"]


def _neutral(task, line):
    """A one-message dialogue's reply, with the task's own request replaced by a placeholder."""
    reply = _talk(simulator(task), line)[1]
    return "<request>" if reply == task[SCRIPT_KEY]["restatement"] else reply


def _natural_question(fact):
    return f"Sure, I can help with that. Which {fact['nouns'][0]} do you mean?"


def _gold_hash(task):
    env = load_environment(task["user_scenario"]["instructions"]["domain"])
    for action in task["evaluation_criteria"]["actions"]:
        assert env.call(action["name"], action["arguments"]).ok
    return env.db_hash()


@pytest.mark.parametrize("domain", DOMAINS)
def test_feasible_and_infeasible_tasks_get_the_same_replies(domain):
    feasible = pick(domain, "standard", lambda t: writes(t) == 1)
    infeasible = pick(domain, "infeasible", lambda t: writes(t) == 0)
    for line in NEUTRAL:
        assert _neutral(feasible, line) == _neutral(infeasible, line), line
    # Two refusals: insistence, then acceptance, whatever the task.
    for task in (feasible, infeasible):
        assert _talk(simulator(task), "Sorry, I cannot do that.", "I'm afraid that is still not possible.")[1:] == [INSIST, ACCEPT]


@pytest.mark.parametrize("domain", DOMAINS)
def test_ambiguous_differs_from_standard_only_by_the_reveal(domain):
    standard, ambiguous = pick(domain, "standard"), pick(domain, "ambiguous")
    (fact,) = ambiguous[SCRIPT_KEY]["reveal"]
    for line in NEUTRAL:
        assert _neutral(standard, line) == _neutral(ambiguous, line), line
    question = _natural_question(fact)
    assert _talk(simulator(ambiguous), question)[1] == fact["reply"]
    assert _neutral(standard, question) == "<request>"


@pytest.mark.parametrize("domain", DOMAINS)
def test_natural_question_reveals_the_withheld_fact_once(domain):
    task = pick(domain, "ambiguous")
    (fact,) = task[SCRIPT_KEY]["reveal"]
    sim = simulator(task)
    assert fact["reply"] not in sim.opening()
    noun = fact["nouns"][0]
    said = _talk(sim, "What is the weather like?", f"I picked the first {noun}.", _natural_question(fact), _natural_question(fact))
    # Naming the fact without asking reveals nothing; asking does, once.
    assert said[1] == said[2] == said[4] == task[SCRIPT_KEY]["restatement"]
    assert said[3] == fact["reply"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_question_asking_for_everything_reveals_nothing(domain):
    task = pick(domain, "ambiguous")
    (fact,) = task[SCRIPT_KEY]["reveal"]
    assert not asks_for(SHOTGUN, fact["nouns"])
    assert _talk(simulator(task), SHOTGUN)[1] == task[SCRIPT_KEY]["restatement"]
    assert asks_for(f"Which {fact['nouns'][0]} is it?", fact["nouns"])
    assert not asks_for(f"I found your {fact['nouns'][0]}.", fact["nouns"])  # a statement asks for nothing
    assert not asks_for(f"Is this a pre{fact['nouns'][0]}?", fact["nouns"])  # whole words only


def _proposal(calls):
    return f"Here is what I would do: {json.dumps([c['arguments'] for c in calls])}. Shall I go ahead?"


@pytest.mark.parametrize("domain", DOMAINS)
def test_changing_switches_only_after_a_concrete_proposal(domain):
    task = pick(domain, "changing")
    script = task[SCRIPT_KEY]
    proposal = _proposal(script["first_goal"])
    assert proposes(proposal, script["first_goal"], script["customer"])
    # Naming some of its values is no proposal: every identifier-like value of the first goal is needed.
    values = identifiers(script["first_goal"], script["customer"])
    assert values and not proposes(f"Shall I go ahead with {' and '.join(values[:-1])}?", script["first_goal"], script["customer"])
    said = _talk(simulator(task), "Shall I proceed? Please confirm.", "Done, your request is complete.", proposal, "Shall I proceed with that?")
    # Neither a vague confirmation request nor a statement proposes the first goal: no switch yet.
    assert said[1] == CONFIRM and said[2] == script["restatement"]
    assert said[3] == script["switch"] and said[4] == CONFIRM
    # After the switch the user restates the new goal, not the first one.
    assert _talk(simulator(task), proposal, "Let me check.")[2] == script["switch"]
    # An agent that acts on the first goal without asking meets the switch as well.
    assert _talk(simulator(task), "Done.", db_hash="1" * 64)[1] == script["switch"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_goal_state_ends_the_dialogue(domain):
    task = pick(domain, "standard", lambda t: writes(t) >= 1)
    assert _talk(simulator(task), "All done.", db_hash=_gold_hash(task))[1] == DONE


def test_a_partial_job_is_restated_once_then_left():
    task = pick("retail", "standard", lambda t: writes(t) >= 2)
    sim = simulator(task)
    restatement = task[SCRIPT_KEY]["restatement"]
    partial = "2" * 64
    said = _talk(sim, "I cancelled the first one.", "That's everything I can do.", db_hash=partial)
    assert said[1:] == [restatement, LEAVE] and STOP in LEAVE
    # A question, or a write since the restatement, keeps the dialogue going.
    assert _talk(sim, "I cancelled the first one.", "Anything else?", db_hash=partial)[2] == restatement
    transcript = [{"role": "user", "content": sim.opening()}, {"role": "assistant", "content": "Done with one."},
                  {"role": "user", "content": restatement},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "cancel_pending_order", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "c", "content": "{}"}, {"role": "assistant", "content": "Done with another."}]
    assert sim.reply(transcript, partial) == restatement


def test_a_request_of_several_parts_goes_on_after_a_refusal():
    task = pick("retail", "infeasible", lambda t: writes(t) == 1)
    said = _talk(simulator(task), "I cannot do that.", "I'm afraid it is still not possible.", "Unfortunately no.")
    assert said[1:] == [INSIST, ACCEPT_REST, ACCEPT]
    # The same in a feasible request of two parts.
    feasible = pick("retail", "standard", lambda t: writes(t) == 2)
    assert _talk(simulator(feasible), "I cannot do that.", "I'm afraid it is still not possible.", "Unfortunately no.")[1:] == \
        [INSIST, ACCEPT_REST, ACCEPT]


def test_max_turns_and_reproducibility():
    task = pick("airline", "standard")
    said = _talk(simulator(task, max_turns=3), "Hm?", "Hm?", "Hm?")
    assert said[1] == said[2] == task[SCRIPT_KEY]["restatement"] and said[3] == STOP
    lines = ("What?", "Which reservation?", "Shall I proceed? Please confirm.", "Sorry, I can't.")
    for scenario in ("standard", "ambiguous", "changing", "infeasible"):
        task = pick("airline", scenario)
        assert _talk(simulator(task), *lines) == _talk(simulator(task), *lines)


def test_tasks_without_a_script_are_refused():
    task = dict(pick("retail", "standard"))
    del task[SCRIPT_KEY]
    with pytest.raises(ValueError, match="user_script"):
        ScriptedUserSimulator(as_task(task), initial_hash="", goal_hash="", is_write=bool)
