"""Robustness of the bundled benchmark: gaming agents score no better than the naive agent, and the
scripted user's answers do not tell infeasible tasks from feasible ones."""

from collections import Counter, defaultdict

import pytest

from datasets.tool_use.bundle import load_bundled
from evaluation.base import Instance
from evaluation.baselines.server import PolicyServer
from evaluation.baselines.tool_use import NaiveAgentPolicy, ReferenceAgentPolicy
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.tool_use.evaluator import ToolUseEvaluator
from evaluation.tool_use.simulator import ACCEPT, CONFIRM, DONE, INSIST, ScriptedUserSimulator
from tests.tool_use.adversaries import ADVERSARIES, HEDGE, REFUSAL, SHOTGUN, STALL

SCENARIOS = ToolUseEvaluator.scenarios
# Where an adversary has no business passing, it must stay near zero.
NO_BUSINESS = {
    "adversary-scenario-prober": ("infeasible",),
    "adversary-policy-paster": SCENARIOS,
    "adversary-refuse-everything": SCENARIOS,
    "adversary-stall-then-act": ("changing", "infeasible"),
    "adversary-shotgun-asker": ("changing", "infeasible"),
}
NEAR_ZERO = 0.05


@pytest.fixture(scope="module")
def test_split():
    split = next(s for s in load_bundled().splits if s.name == "test")
    return [Instance(r.key, r.input, r.reference, r.scenario, id=r.key) for r in split.instances]


def pass_at_1(policy, instances):
    """pass^1 per scenario of one trial per task, through a served endpoint as for any submission."""
    server = PolicyServer(policy).start_background()
    client = EndpointClient(EndpointConfig(server.base_url, policy.model_id, max_retries=0))
    evaluator = ToolUseEvaluator()
    wins: dict[str, list[bool]] = defaultdict(list)
    try:
        for instance in instances:
            wins[instance.scenario].append(bool(evaluator.run(client, instance, instance.scenario, 0).prediction["success"]))
    finally:
        client.close()
        server.stop()
    return {scenario: sum(hits) / len(hits) for scenario, hits in wins.items()}


@pytest.fixture(scope="module")
def board(test_split):
    return {policy.model_id: pass_at_1(policy, test_split) for policy in (ReferenceAgentPolicy(), NaiveAgentPolicy(), *ADVERSARIES)}


def test_adversaries_score_no_better_than_the_naive_agent(board):
    naive = board["t2t-naive-agent"]
    assert all(board["t2t-reference-agent"][s] == 1.0 for s in SCENARIOS), board["t2t-reference-agent"]
    for adversary in ADVERSARIES:
        scores = board[adversary.model_id]
        for scenario in SCENARIOS:
            assert scores[scenario] <= naive[scenario], (adversary.model_id, scenario, scores, naive)
        for scenario in NO_BUSINESS[adversary.model_id]:
            assert scores[scenario] <= NEAR_ZERO, (adversary.model_id, scenario, scores)


PROBES = (HEDGE, REFUSAL, SHOTGUN, STALL, "Would you like me to go ahead with that?", "Is that right?",
          "I have done that for you.", "Which of your orders do you mean?")


def _kind(reply, script):
    for name, line in (("insist", INSIST), ("accept", ACCEPT), ("confirm", CONFIRM), ("done", DONE),
                       ("restatement", script["restatement"]), ("switch", script.get("switch"))):
        if line and reply == line:
            return name
    if any(reply == fact["reply"] for fact in script.get("reveal") or []):
        return "reveal"
    raise AssertionError(f"unclassified reply {reply!r}")


@pytest.mark.parametrize("probe", PROBES)
def test_user_answers_do_not_tell_infeasible_from_feasible(test_split, probe):
    """The same first agent message gets the same kind of answer in infeasible and feasible tasks."""
    kinds: dict[str, Counter] = defaultdict(Counter)
    for instance in test_split:
        simulator = ScriptedUserSimulator(instance.input, instance.reference, instance.scenario)
        transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": simulator.opening()},
                      {"role": "assistant", "content": probe}]
        reply = simulator.reply(transcript, instance.input["initial_db_hash"])
        kinds[instance.scenario][_kind(reply, instance.input["script"])] += 1
    assert set(kinds["infeasible"]) == set(kinds["standard"]) and len(kinds["standard"]) == 1, dict(kinds)
    # Ambiguous and changing differ only by their own events: a reveal, a switch.
    for scenario in ("ambiguous", "changing"):
        assert set(kinds[scenario]) - {"reveal", "switch"} <= set(kinds["standard"]), (scenario, dict(kinds))


PUBLISHED_AS = {"t2t-reference-agent": "reference agent", "t2t-naive-agent": "naive agent",
                "adversary-scenario-prober": "scenario prober", "adversary-policy-paster": "policy paster",
                "adversary-shotgun-asker": "shotgun asker", "adversary-stall-then-act": "stall-then-act",
                "adversary-refuse-everything": "refuse-everything"}


def test_the_benchmark_page_states_the_measured_figures(board):
    published = load_bundled().extra["robustness"]
    assert published["scenarios"] == list(SCENARIOS)
    for model_id, label in PUBLISHED_AS.items():
        assert published["pass_1"][label] == pytest.approx([board[model_id][s] for s in SCENARIOS], abs=0.005), label
