import json

import pytest

from datasets.tool_use.bundle import load_bundled
from datasets.tool_use.env import ToolEnv
from datasets.tool_use.domains import get_domain
from evaluation.tool_use.verify import contains, diff_dbs, normalise, public_verdict, replay, verify_rollout


@pytest.fixture(scope="module")
def tasks():
    records = [r for split in load_bundled().splits for r in split.instances]
    return {s: [r for r in records if r.scenario == s] for s in ("standard", "ambiguous", "changing", "infeasible")}


def test_normalise_and_contains():
    assert normalise("Refund: $1,234.50!") == "refund 1234.5"
    assert normalise("30 Days") == "30 days"
    assert contains("Your refund of 54.2 is on its way", "54.20")
    assert contains("order #W1001 was cancelled", "#W1001") and not contains("order #W10012", "#W1001")
    assert contains("Gift cards cannot be the default", "gift card")
    assert not contains("refund 54.25", "54.20")
    assert not contains("refund 54.50", "54.00") and contains("refund 54.", "54.00")


def test_diff_names_tables_and_keys():
    diff = diff_dbs({"orders": {"#W1": {"status": "cancelled"}}, "x": 1}, {"orders": {"#W1": {"status": "pending"}}, "y": 2})
    assert diff == ['orders/#W1/status: "cancelled" (expected "pending")', "x: unexpected 1", "y: missing (expected 2)"]


def _gold_run(record):
    env = ToolEnv.fresh(record.input["domain"], record.input["db_seed"])
    said = []
    for action in record.reference["gold_actions"]:
        said.append("Done: " + env.call(action["name"], action["arguments"]).output)
    return env.db, said


def test_gold_replay_with_outputs_succeeds(tasks):
    for record in tasks["standard"][:10] + tasks["changing"][:5]:
        db, said = _gold_run(record)
        verdict = verify_rollout(record.input["domain"], record.input["db_seed"], db, said, record.reference)
        assert verdict.success, verdict.failure_reason
        assert verdict.failure_reason == ""


def test_missing_output_is_named(tasks):
    record = next(r for r in tasks["standard"] if r.reference["expected_outputs"])
    db, _ = _gold_run(record)
    verdict = verify_rollout(record.input["domain"], record.input["db_seed"], db, ["All done!"], record.reference)
    assert not verdict.success
    assert verdict.missing_outputs == record.reference["expected_outputs"]
    assert "never told the user" in verdict.failure_reason


def test_wrong_record_is_shown_in_the_diff(tasks):
    record = next(r for r in tasks["standard"] if r.reference["gold_actions"][0]["name"] == "cancel_order")
    env = ToolEnv.fresh(record.input["domain"], record.input["db_seed"])
    gold_order = record.reference["gold_actions"][0]["arguments"]["order_id"]
    other = next(o for o, row in env.db["orders"].items() if row["status"] == "pending" and o != gold_order)
    env.call("cancel_order", {"order_id": other, "reason": "no longer needed"})
    verdict = verify_rollout("retail", record.input["db_seed"], env.db, ["refund " + " ".join(record.reference["expected_outputs"])], record.reference)
    assert not verdict.success and verdict.missing_outputs == []
    assert any(line.startswith(f"orders/{other}/status") for line in verdict.db_diff)
    assert any(line.startswith(f"orders/{gold_order}/status") for line in verdict.db_diff)
    assert "database differs from the goal state" in verdict.failure_reason


def test_forbidden_action_is_called_out(tasks):
    record = tasks["infeasible"][0]
    forbidden = record.reference["forbidden_actions"][0]
    db = replay(record.input["domain"], record.input["db_seed"], [forbidden])
    verdict = verify_rollout(record.input["domain"], record.input["db_seed"], db, ["Done."], record.reference)
    assert not verdict.success
    assert f"performed the action the policy forbids ({forbidden['name']} {json.dumps(forbidden['arguments'], sort_keys=True)})" in verdict.failure_reason
    untouched = replay(record.input["domain"], record.input["db_seed"], [])
    explained = verify_rollout(record.input["domain"], record.input["db_seed"], untouched,
                               [f"Sorry, I cannot: {record.reference['expected_outputs'][0]}."], record.reference)
    assert explained.success


def _infeasible(tasks, domain, keyword):
    return next(r for r in tasks["infeasible"] if r.input["domain"] == domain and r.reference["expected_outputs"] == [keyword])


@pytest.mark.parametrize("domain,keyword,explanation", [
    ("bank", "60 days", "That charge is outside our 60-day dispute window, so I can't open a dispute."),
    ("retail", "pending", "I can't cancel that order: it has already shipped."),
    ("retail", "30 days", "It was delivered more than thirty days ago, so the return window has closed."),
    ("bank", "zero balance", "I can't close it while it still has money in it; please move the funds out first."),
])
def test_infeasible_accepts_the_specific_reason_in_other_words(tasks, domain, keyword, explanation):
    record = _infeasible(tasks, domain, keyword)
    untouched = replay(domain, record.input["db_seed"], [])
    assert verify_rollout(domain, record.input["db_seed"], untouched, [explanation], record.reference).success


def test_infeasible_refusals_without_the_reason_or_with_every_reason_fail(tasks):
    record = _infeasible(tasks, "retail", "pending")
    seed, reference = record.input["db_seed"], record.reference
    untouched = replay("retail", seed, [])
    policy = get_domain("retail").policy
    bare = verify_rollout("retail", seed, untouched, ["Sorry, I cannot do that."], reference)
    assert not bare.success and "states the reason" in bare.failure_reason
    pasted = verify_rollout("retail", seed, untouched, ["Sorry, I cannot do that. Our policy:\n" + policy.text], reference)
    assert not pasted.success and pasted.refusal_problem
    listed = " ".join(rule.message for rule in policy.rules)
    assert verify_rollout("retail", seed, untouched, [f"Sorry, I cannot do that. {listed}"], reference).refusal_problem == \
        "a message names several policy rules"
    # The reason in one message and every reason in another: the shotgun still fails.
    assert not verify_rollout("retail", seed, untouched, ["It is not pending any more.", listed], reference).success
    public = public_verdict({**bare.as_prediction(), "stop_reason": "user_stop"})
    assert public["refusal_problem"] and "pending" not in json.dumps(public)
