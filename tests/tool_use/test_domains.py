import json

import pytest

from datasets.tool_use.domains import all_domains, domain_for_tools, get_domain
from datasets.tool_use.env import ToolEnv, db_hash, initial_db
from evaluation.tool_use.verify import normalise


def test_registry_discovers_both_domains():
    assert set(all_domains()) >= {"retail", "bank"}
    with pytest.raises(KeyError, match="unknown tool-use domain"):
        get_domain("airline")
    bank = get_domain("bank")
    assert domain_for_tools({t.name for t in bank.tools}) is bank


@pytest.mark.parametrize("name", ["retail", "bank"])
def test_tools_are_well_formed(name):
    domain = get_domain(name)
    assert len(domain.tools) >= 10
    assert {t.kind for t in domain.tools} == {"read", "write"}
    openers = [t.intent.opener for t in domain.write_tools]
    assert len(set(openers)) == len(openers)
    for tool in domain.tools:
        schema = tool.schema()["function"]
        assert schema["parameters"]["type"] == "object"
        assert set(schema["parameters"]["required"]) <= set(schema["parameters"]["properties"])
        if tool.kind == "write":
            assert set(tool.intent.slots) == set(tool.parameters["properties"])
    assert domain.policy.text.startswith(domain.title)


@pytest.mark.parametrize("name", ["retail", "bank"])
def test_policy_text_states_every_coded_rule(name):
    # The markdown and the code are the same policy: each rule's reason is written in the text.
    domain = get_domain(name)
    text = normalise(domain.policy.text)
    for rule in domain.policy.rules:
        assert normalise(rule.keyword) in text, rule.keyword
        assert normalise(rule.keyword) in normalise(rule.message)


@pytest.mark.parametrize("name", ["retail", "bank"])
def test_database_is_seeded_and_serialisable(name):
    first, again, other = initial_db(name, 11), initial_db(name, 11), initial_db(name, 12)
    assert db_hash(first) == db_hash(again) != db_hash(other)
    assert json.loads(json.dumps(first)) == first
    first["meta"]["touched"] = True
    assert db_hash(initial_db(name, 11)) == db_hash(again)  # copies, not the cached original


def test_hash_is_canonical():
    assert db_hash({"a": 1, "b": [1, 2]}) == db_hash({"b": [1, 2], "a": 1})
    assert db_hash({"a": 1}) != db_hash({"a": 2})


def test_bad_calls_come_back_as_errors_and_change_nothing():
    env = ToolEnv.fresh("retail", 7)
    before = env.hash()
    unknown = env.call("refund_everything", {})
    assert unknown.status == "invalid" and unknown.output.startswith("Error: unknown tool")
    assert env.call("get_order", "{not json").status == "invalid"
    assert env.call("get_order", "[1]").output == "Error: arguments of 'get_order' must be a JSON object"
    assert "missing required argument 'order_id'" in env.call("get_order", {}).output
    assert "unexpected argument 'x'" in env.call("get_order", {"order_id": "#W1", "x": 1}).output
    assert "must be of type string" in env.call("get_order", {"order_id": 5}).output
    assert "must be one of" in env.call("cancel_order", {"order_id": "#W1", "reason": "bored"}).output
    missing = env.call("cancel_order", {"order_id": "#W0", "reason": "no longer needed"})
    assert missing.status == "tool_error" and missing.output == "Error: order '#W0' not found"
    assert env.hash() == before


def test_retail_cancel_refunds_the_total():
    env = ToolEnv.fresh("retail", 7)
    order = next(o for o in env.db["orders"].values() if o["status"] == "pending")
    result = env.call("cancel_order", {"order_id": order["order_id"], "reason": "ordered by mistake"})
    assert result.ok
    assert json.loads(result.output)["refund_amount"] == order["total"]
    assert env.db["orders"][order["order_id"]]["status"] == "cancelled"
    assert env.call("cancel_order", {"order_id": order["order_id"], "reason": "ordered by mistake"}).status == "tool_error"


def test_bank_transfer_moves_money_and_block_issues_replacement():
    env = ToolEnv.fresh("bank", 7)
    customer = next(c for c in env.db["customers"].values() if len(c["accounts"]) >= 2)
    a, b = customer["accounts"][:2]
    total = env.db["accounts"][a]["balance"] + env.db["accounts"][b]["balance"]
    result = json.loads(env.call("transfer_funds", {"from_account_id": a, "to_account_id": b, "amount": 10.0}).output)
    assert result["from_balance"] + result["to_balance"] == pytest.approx(total)
    card = next(c for c in env.db["cards"].values() if c["status"] == "active")
    replaced = json.loads(env.call("block_card", {"card_id": card["card_id"], "reason": "lost"}).output)
    assert env.db["cards"][replaced["replacement_card_id"]]["status"] == "active"


def test_policy_code_refuses_what_the_policy_forbids():
    retail = get_domain("retail")
    db = initial_db("retail", 7)
    delivered = next(o for o in db["orders"].values() if o["status"] == "delivered")
    shipped = next(o for o in db["orders"].values() if o["status"] == "processed")
    assert [r.keyword for r in retail.policy.violations(db, "cancel_order", {"order_id": shipped["order_id"], "reason": "no longer needed"})] == ["pending"]
    old = next(o for o in db["orders"].values() if o["status"] == "delivered" and o["delivered_date"] < "2024-05-01")
    args = {"order_id": old["order_id"], "item_ids": [old["items"][0]["item_id"]], "refund_method_id": old["payment_method_id"]}
    assert [r.keyword for r in retail.policy.violations(db, "return_items", args)] == ["30 days"]
    assert retail.policy.violations(db, "set_default_payment_method", {"user_id": delivered["user_id"], "payment_method_id": "gift_card_1"})
    # A record that does not exist is the tool's error, not a policy violation.
    assert retail.policy.violations(db, "cancel_order", {"order_id": "#W0", "reason": "no longer needed"}) == []

    bank = get_domain("bank")
    db = initial_db("bank", 7)
    funded = next(a for a in db["accounts"].values() if a["balance"] > 0 and a["status"] == "open")
    assert [r.keyword for r in bank.policy.violations(db, "close_account", {"account_id": funded["account_id"]})] == ["zero balance"]
    accounts = db["customers"][funded["customer_id"]]["accounts"]
    other = next(a for a in accounts if a != funded["account_id"])
    big = {"from_account_id": funded["account_id"], "to_account_id": other, "amount": 2500.0}
    assert "2000" in [r.keyword for r in bank.policy.violations(db, "transfer_funds", big)]
