"""The scripted agents on transcripts: they understand every bundled request through the domain's phrasing
pools, and the reference agent's messages do what the policy and the scripted user expect of them."""

import json

import pytest

from datasets.tool_use.airline import FREE_BAGS
from datasets.tool_use.bundle import load_splits
from datasets.tool_use.generator import get_domain
from datasets.tool_use.policy import refusal_problem
from evaluation.baselines.tool_use import (NaiveAgentPolicy, Part, ReferenceAgentPolicy, domain_for_tools, parse_request,
                                           proposal, question, read_conversation, refusal)
from evaluation.tau2.environment import load_environment
from evaluation.tool_use.simulator import CONFIRM, asks_for, is_confirmation_request, is_refusal, proposes


@pytest.fixture(scope="module")
def tasks():
    """(domain, scenario, script, reference) of every bundled test task."""
    split = next(s for s in load_splits().splits if s.name == "test")
    return [(i.input["domain"], i.scenario, i.reference["user_script"], i.reference) for i in split.instances]


def _asked(scenario: str, script: dict, reference: dict) -> list[dict]:
    """The writes the opening asks for, in order: a changing task's first goal; the refused write, then the
    allowed part; otherwise the gold writes."""
    if scenario == "changing":
        return script["first_goal"]
    gold = [{"name": a["name"], "arguments": a["arguments"]} for a in reference["evaluation_criteria"]["actions"]]
    refused = [{"name": a["tool_name"], "arguments": a["arguments"]} for a in reference["instructions"].get("actions_should_not_taken", [])]
    return refused + gold


def _check_parts(parts: list[Part], calls: list[dict], withheld: set[str] = frozenset()) -> None:
    assert [p.tool for p in parts] == [c["name"] for c in calls]
    for index, (part, call) in enumerate(zip(parts, calls)):
        stated = part.stated()
        assert stated == {k: call["arguments"][k] for k in stated}, (part, call)
        missing = set(part.missing(get_domain_of(part.tool)))
        assert missing == (withheld if index == 0 else set()), (part, call)


def get_domain_of(tool: str):
    return next(get_domain(d) for d in ("retail", "airline") if tool in get_domain(d).write_tools)


def test_every_bundled_request_is_understood(tasks):
    """Opening, restatement and switch line read back into exactly the writes they ask for, with every stated
    argument and nothing but the withheld fact missing."""
    for domain_name, scenario, script, reference in tasks:
        domain = get_domain(domain_name)
        withheld = {fact["fact"] for fact in script.get("reveal") or []}
        asked = _asked(scenario, script, reference)
        _check_parts(parse_request(domain, script["opening"]), asked, withheld)
        _check_parts(parse_request(domain, script["restatement"]), asked, withheld)
        if scenario == "changing":
            final = [{"name": a["name"], "arguments": a["arguments"]} for a in reference["evaluation_criteria"]["actions"]]
            _check_parts(parse_request(domain, script["switch"]), final)


def test_a_revealed_fact_completes_the_part_that_lacks_it(tasks):
    for domain_name, scenario, script, reference in tasks:
        if scenario != "ambiguous":
            continue
        convo = read_conversation(get_domain(domain_name), [
            {"role": "system", "content": ""}, {"role": "user", "content": script["opening"]},
            {"role": "assistant", "content": "Which one do you mean?"}, {"role": "user", "content": script["reveal"][0]["reply"]},
            {"role": "assistant", "content": "Sorry?"}, {"role": "user", "content": script["restatement"]}])
        _check_parts(convo.parts, _asked(scenario, script, reference))  # kept through the restatement too


def test_the_question_for_a_missing_fact_is_one_the_user_answers():
    for name in ("retail", "airline"):
        domain = get_domain(name)
        for write in domain.writes:
            parts = [Part(write.tool), Part(write.tool), Part(write.tool)]
            for fact_name, fact in write.facts.items():
                if fact.deciding:
                    for index in range(3):
                        text = question(domain, parts[: index + 1], index, fact_name)
                        assert asks_for(text, fact.nouns), text
                        assert not is_refusal(text) and not is_confirmation_request(text), text


def test_a_refusal_states_exactly_its_rule():
    for name in ("retail", "airline"):
        policy = get_domain(name).policy
        for rule in policy.rules:
            text = refusal(Part(rule.tool), rule)
            assert is_refusal(text)
            assert refusal_problem(policy, rule, [text]) == "", (rule.id, text)


def test_a_proposal_is_a_confirmation_request_that_names_the_write(tasks):
    for domain_name, scenario, script, reference in tasks:
        for call in _asked(scenario, script, reference):
            text = proposal(call["name"], call["arguments"])
            assert is_confirmation_request(text) and not is_refusal(text), text
            if any(ch.isdigit() for ch in json.dumps(call["arguments"])):
                assert proposes(text, [call], script["customer"]), text


def _tools(domain: str) -> list[dict]:
    return load_environment(domain).tool_schemas()


def test_the_domain_is_told_by_the_tool_names():
    assert domain_for_tools({t["function"]["name"] for t in _tools("retail")}).name == "retail"
    assert domain_for_tools({t["function"]["name"] for t in _tools("airline")}).name == "airline"
    assert domain_for_tools({"get_weather"}) is None


def _episode(agent, opening: str, domain: str, answers: dict[str, str], limit: int = 30) -> list[dict]:
    """Run ``agent`` against a real environment with a user that answers confirmation requests with ``CONFIRM``
    and anything else from ``answers`` (first matching key), until the agent speaks without asking."""
    env = load_environment(domain)
    tools = env.tool_schemas()
    messages = [{"role": "system", "content": env.policy}, {"role": "user", "content": opening}]
    for _ in range(limit):
        reply = agent.reply(messages, tools, {})
        assert agent.reply(messages, tools, {})["content"] == reply["content"], "the same messages get the same reply"
        messages.append({"role": "assistant", **reply})
        for call in reply.get("tool_calls") or []:
            result = env.call(call["function"]["name"], call["function"]["arguments"])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result.output})
        if reply.get("tool_calls"):
            continue
        text = reply["content"]
        if is_confirmation_request(text):
            messages.append({"role": "user", "content": CONFIRM})
            continue
        answer = next((a for key, a in answers.items() if key in text), None)
        if answer is None:
            return messages
        messages.append({"role": "user", "content": answer})
    raise AssertionError("the agent did not finish")


def _calls(messages: list[dict]) -> list[tuple[str, dict]]:
    return [(c["function"]["name"], json.loads(c["function"]["arguments"])) for m in messages for c in m.get("tool_calls") or []]


def test_the_reference_agent_authenticates_asks_confirms_and_reports():
    db = load_environment("retail").db
    user = next(u for u in db["users"].values() if any(db["orders"][o]["status"] == "pending" for o in u["orders"]))
    order = next(o for o in user["orders"] if db["orders"][o]["status"] == "pending")
    opening = f"Hi. My email is {user['email']}. I'd like to cancel an order. The reason: no longer needed."
    messages = _episode(ReferenceAgentPolicy(), opening, "retail", {"Which order": f"It's order {order}."})
    calls = _calls(messages)
    assert calls[0] == ("find_user_id_by_email", {"email": user["email"]})
    texts = [m["content"] for m in messages if m["role"] == "assistant" and m.get("content")]
    assert texts[0] == "Which order do you mean?"
    write = calls.index(("cancel_pending_order", {"order_id": order, "reason": "no longer needed"}))
    assert messages[[i for i, m in enumerate(messages) if m.get("tool_calls")][write] - 1]["content"] == CONFIRM
    refund = sum(p["amount"] for p in db["orders"][order]["payment_history"] if p["transaction_type"] == "payment")
    assert f"{refund:.2f}" in texts[-1]


def test_the_reference_agent_refuses_what_the_policy_forbids_and_the_naive_agent_does_not():
    db = load_environment("retail").db
    order = next(o for o in db["orders"].values() if o["status"] == "delivered")
    email = db["users"][order["user_id"]]["email"]
    opening = f"Hi. My email is {email}. I'd like to cancel an order. It's order {order['order_id']}. The reason: no longer needed."
    reference = _episode(ReferenceAgentPolicy(), opening, "retail", {})
    assert not any(name == "cancel_pending_order" for name, _ in _calls(reference))
    policy = get_domain("retail").policy
    assert refusal_problem(policy, policy.rule("retail.cancel.status"), [reference[-1]["content"]]) == ""
    naive = _episode(NaiveAgentPolicy(), opening, "retail", {})
    assert _calls(naive) == [("cancel_pending_order", {"order_id": order["order_id"], "reason": "no longer needed"})]


def test_the_airline_reference_agent_derives_what_the_customer_does_not_say():
    db = load_environment("airline").db
    reservation = next(r for r in db["reservations"].values() if r.get("status") != "cancelled" and r["cabin"] == "economy")
    user = db["users"][reservation["user_id"]]
    card = next(m for m, v in user["payment_methods"].items() if v["source"] == "credit_card")
    total = reservation["total_baggages"] + 2
    opening = (f"Hello! My user id is {user['user_id']}. I want to add checked bags to a booking. "
               f"It's reservation {reservation['reservation_id']}. I need {total} checked bags in all. Please charge {card}.")
    messages = _episode(ReferenceAgentPolicy(), opening, "airline", {})
    free = FREE_BAGS[user["membership"]]["economy"] * len(reservation["passengers"])
    assert ("update_reservation_baggages", {"nonfree_baggages": max(0, total - free), "payment_id": card,
                                            "reservation_id": reservation["reservation_id"], "total_baggages": total}) in _calls(messages)
