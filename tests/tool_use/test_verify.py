"""Grading generated tasks: the REFUSAL component of infeasible tasks, and the database diff it reports beside."""

import pytest

from datasets.tool_use.generator import SCRIPT_KEY, get_domain
from datasets.tool_use.policy import refusal_problem
from evaluation.tau2.environment import load_environment
from evaluation.tau2.grading import diff_dbs
from tests.tool_use.generated import as_task, grader, pick, refusal_line, writes

# Stated in other words than the rule's message; each names only its own reason.
OWN_WORDS = {
    "retail.cancel.reason": "I can't cancel it for that: the order was not ordered by mistake, and that reason is not accepted.",
    "retail.exchange.status": "I'm afraid that order has not been delivered yet, so it cannot be exchanged.",
    "retail.return.status": "Unfortunately that order hasn't been delivered, so a return is not possible yet.",
    "airline.cabin.flown": "I can't change the cabin: one of the flights has already been flown.",
}


def _grade(task, said, stop_reason="user_stop"):
    transcript = [{"role": "user", "content": task[SCRIPT_KEY]["opening"]}, *({"role": "assistant", "content": s} for s in said)]
    domain = task["user_scenario"]["instructions"]["domain"]
    return grader(domain).grade(as_task(task), transcript, load_environment(domain).db, stop_reason)


def _infeasible(domain):
    return pick(domain, "infeasible", lambda t: writes(t) == 0)


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_every_rule_accepts_its_own_message(domain):
    policy = get_domain(domain).policy
    for rule in policy.rules:
        assert refusal_problem(policy, rule, [f"I'm sorry, I cannot do that. {rule.message}"]) == "", rule.id


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_a_specific_refusal_passes(domain):
    task = _infeasible(domain)
    grade = _grade(task, [refusal_line(task)])
    assert grade.reward == 1.0 and grade.reward_basis[-1] == "REFUSAL"
    assert grade.components["REFUSAL"].value == 1.0 and task[SCRIPT_KEY]["refusal_rule"] in grade.components["REFUSAL"].details[0]


@pytest.mark.parametrize("rule,words", OWN_WORDS.items())
def test_the_reason_counts_in_other_words(rule, words):
    task = pick(rule.split(".")[0], "infeasible", lambda t: writes(t) == 0 and t[SCRIPT_KEY]["refusal_rule"] == rule)
    evidence = task[SCRIPT_KEY].get("refusal_evidence")
    if not evidence:  # a rule whose reason is the customer's own words (a cancellation reason) needs no record
        assert _grade(task, ["Let me check that.", words]).components["REFUSAL"].value == 1.0
        return
    fact = evidence[-1]  # the last spelling: "May 02", "two", a flight number
    assert _grade(task, ["Let me check that.", f"{words} I can see {fact} on your records."]).components["REFUSAL"].value == 1.0
    # The reason alone could be guessed from the tool: without the facts of the request it does not count.
    without = _grade(task, ["Let me check that.", words]).components["REFUSAL"]
    assert without.value == 0.0 and "facts of this request" in without.details[0]


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_refusals_without_the_reason_or_with_every_reason_fail(domain):
    task = _infeasible(domain)
    policy = get_domain(domain).policy
    bare = _grade(task, ["Sorry, I cannot do that."])
    assert bare.reward == 0.0 and bare.components["DB"].value == 1.0
    assert "states the reason" in bare.components["REFUSAL"].details[0]
    assert any(line.startswith("REFUSAL: ") for line in bare.failures())
    pasted = _grade(task, ["Sorry, I cannot do that. Our policy:\n" + policy.text])
    assert pasted.components["REFUSAL"].value == 0.0
    listed = " ".join(rule.message for rule in policy.rules)
    several = _grade(task, [f"Sorry, I cannot do that. {listed}"])
    assert several.components["REFUSAL"].value == 0.0 and "several policy rules" in several.components["REFUSAL"].details[0]
    # The reason in one message and every reason in another: the list still fails.
    assert _grade(task, [refusal_line(task), listed]).reward == 0.0


def test_only_generated_infeasible_tasks_are_graded_on_refusal():
    task = pick("retail", "standard")
    grade = _grade(task, ["Sorry, I cannot do that."])
    assert "REFUSAL" not in grade.components and grade.reward_basis == task["evaluation_criteria"]["reward_basis"]
    # The basis the task file gives is left as it is; the grade lists REFUSAL beside it.
    infeasible = _infeasible("retail")
    assert _grade(infeasible, []).reward_basis == [*infeasible["evaluation_criteria"]["reward_basis"], "REFUSAL"]


def test_diff_names_tables_and_keys():
    diff = diff_dbs({"orders": {"#W1": {"status": "cancelled"}}, "x": 1}, {"orders": {"#W1": {"status": "pending"}}, "y": 2})
    assert diff == ['orders/#W1/status: "cancelled" (expected "pending")', "x: unexpected 1", "y: missing (expected 2)"]
    assert len(diff_dbs({str(i): i for i in range(20)}, {}, limit=3)) == 3
