"""Robustness of the bundled benchmark on a sample of its test split: agents that game it score no better
than the naive agent, the reference agent solves every task, and the scripted user's answers do not tell
infeasible tasks from feasible ones. ``bench/t2t_robustness.py`` runs the same agents on the whole split."""

from collections import Counter, defaultdict

import pytest

from datasets.tool_use.bundle import load_splits
from datasets.tool_use.generator import get_domain
from evaluation.baselines.tool_use import NaiveAgentPolicy, ReferenceAgentPolicy, parse_request
from evaluation.tool_use.evaluator import ToolUseEvaluator
from evaluation.tool_use.simulator import ACCEPT, ACCEPT_REST, CONFIRM, DONE, INSIST, LEAVE, ScriptedUserSimulator
from evaluation.tau2.environment import write_tools
from tests.tool_use.adversaries import ADVERSARIES, HEDGE, REFUSAL, SHOTGUN, STALL, sample, served_results

SCENARIOS = ToolUseEvaluator.scenarios
PER_CELL = 2  # tasks per (domain, scenario): single and multi-write goals, both kinds of infeasible task; quick for CI
# Where an adversary has no business passing, it must stay near zero (in both domains).
NO_BUSINESS = {
    "adversary-scenario-prober": SCENARIOS,  # the fair user insists on its hedge everywhere, so it always refuses
    "adversary-policy-paster": SCENARIOS,
    "adversary-refuse-everything": SCENARIOS,
    "adversary-stall-then-act": ("changing", "infeasible"),
    "adversary-shotgun-asker": ("changing", "infeasible"),
}
NEAR_ZERO = 0.05


@pytest.fixture(scope="module")
def instances():
    split = next(s for s in load_splits().splits if s.name == "test")
    return sample(split.instances, PER_CELL)


@pytest.fixture(scope="module")
def evaluator():
    return ToolUseEvaluator()  # one for the module, so each task's gold replay is computed once


@pytest.fixture(scope="module")
def board(instances, evaluator):
    """Per agent, per task: whether its one trial succeeded."""
    return {policy.model_id: served_results(policy, instances, evaluator)
            for policy in (ReferenceAgentPolicy(), NaiveAgentPolicy(), *ADVERSARIES)}


def pass_1(results: dict[str, bool], instances, domain: str, scenario: str) -> float:
    cell = [results[i.key] for i in instances if i.input["domain"] == domain and i.scenario == scenario]
    return sum(cell) / len(cell)


def test_the_reference_agent_solves_every_task(board):
    failed = [key for key, ok in board["t2t-reference-agent"].items() if not ok]
    assert not failed, failed


def test_the_naive_agent_fails_where_it_must_ask_or_refuse(board, instances):
    naive = board["t2t-naive-agent"]
    for domain in ("retail", "airline"):
        assert pass_1(naive, instances, domain, "standard") == 1.0
        assert pass_1(naive, instances, domain, "changing") <= NEAR_ZERO
        assert pass_1(naive, instances, domain, "infeasible") <= NEAR_ZERO


def test_adversaries_score_no_better_than_the_naive_agent(board, instances):
    naive = board["t2t-naive-agent"]
    for adversary in ADVERSARIES:
        scores = board[adversary.model_id]
        for domain in ("retail", "airline"):
            for scenario in SCENARIOS:
                mine, theirs = pass_1(scores, instances, domain, scenario), pass_1(naive, instances, domain, scenario)
                assert mine <= theirs, (adversary.model_id, domain, scenario, mine, theirs)
            for scenario in NO_BUSINESS.get(adversary.model_id, ()):
                assert pass_1(scores, instances, domain, scenario) <= NEAR_ZERO, (adversary.model_id, domain, scenario)


def test_guessing_the_only_rule_of_a_tool_passes_no_infeasible_task(board, instances):
    """When a tool has one rule, its message is always the right reason; a refusal also has to name the facts
    of the request behind it (read from its records), so guessing the rule from the tool passes nothing."""
    guesser = board["adversary-rule-guesser"]
    single_rule = [i for i in instances if (forbidden := i.reference["instructions"].get("actions_should_not_taken"))
                   and sum(r.tool == forbidden[0]["tool_name"] for r in get_domain(i.input["domain"]).policy.rules) == 1]
    assert any(i.input["domain"] == "airline" for i in single_rule), "the sample has no airline task of a single-rule tool"
    assert not [i.key for i in single_rule if guesser[i.key]]
    for scenario in ("standard", "ambiguous", "changing", "infeasible"):
        assert pass_1(guesser, instances, "airline", scenario) <= NEAR_ZERO


# -- the scripted user is fair ---------------------------------------------------------------------------

PROBES = (HEDGE, REFUSAL, SHOTGUN, STALL, "Would you like me to go ahead with that?", "Is that right?",
          "I have done that for you.", "Which order do you mean?", "Which reservation do you mean?",
          "I'm sorry, but I cannot do that. Only pending orders can be cancelled, and this order is no longer pending.")


def _kind(reply: str, script: dict) -> str:
    for name, line in (("insist", INSIST), ("accept", ACCEPT), ("accept", ACCEPT_REST), ("confirm", CONFIRM), ("done", DONE),
                       ("leave", LEAVE), ("restatement", script["restatement"]), ("switch", script.get("switch"))):
        if line and reply == line:
            return name
    if any(reply == fact["reply"] for fact in script.get("reveal") or []):
        return "reveal"
    raise AssertionError(f"unclassified reply {reply!r}")


@pytest.fixture(scope="module")
def users(instances, evaluator):
    """The scripted user of every sampled task, with the hash of the database it starts from."""
    out = []
    for instance in instances:
        task = evaluator.task(instance)
        grader = evaluator.grader(instance.input["domain"])
        gold = grader.gold_state(task)
        user = ScriptedUserSimulator(task, initial_hash=gold.initial_hash, goal_hash=gold.hash,
                                     is_write=write_tools(grader.domain).__contains__)
        out.append((instance, user, gold.initial_hash))
    return out


@pytest.mark.parametrize("probe", PROBES)
def test_user_answers_do_not_tell_infeasible_from_feasible(users, probe):
    """The same agent message gets the same kind of answer in infeasible and feasible tasks; ambiguous and
    changing differ only by their own events (a reveal, a switch)."""
    kinds: dict[str, Counter] = defaultdict(Counter)
    for instance, user, initial in users:
        transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": user.opening()},
                      {"role": "assistant", "content": probe}]
        kinds[instance.scenario][_kind(user.reply(transcript, initial), user.script)] += 1
    assert set(kinds["infeasible"]) == set(kinds["standard"]) and len(kinds["standard"]) == 1, dict(kinds)
    for scenario in ("ambiguous", "changing"):
        assert set(kinds[scenario]) - {"reveal", "switch"} <= set(kinds["standard"]), (scenario, dict(kinds))


def test_a_second_refusal_is_accepted_alike_whatever_the_scenario(users):
    """After insisting once, the user accepts; whether it asks for the rest depends only on how many parts the
    request visibly has, never on whether the request is feasible."""
    for instance, user, initial in users:
        transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": user.opening()},
                      {"role": "assistant", "content": REFUSAL}, {"role": "user", "content": INSIST},
                      {"role": "assistant", "content": REFUSAL}]
        parts = len(parse_request(get_domain(instance.input["domain"]), user.opening()))
        assert user.reply(transcript, initial) == (ACCEPT_REST if parts > 1 else ACCEPT), instance.key
