"""The records a task's gold actions change, exactly, for hand-picked retail and airline tasks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datasets.tau2 import domain_dir
from evaluation.tau2.environment import load_environment

DB = dict[str, Any]


def replay(domain: str, task_id: str) -> tuple[DB, DB]:
    """The database before and after the task's gold actions, every one of which must succeed."""
    task = next(t for t in json.loads((domain_dir(domain) / "tasks.json").read_text()) if t["id"] == task_id)
    env = load_environment(domain)
    for action in task["evaluation_criteria"]["actions"]:
        result = env.call(action["name"], action["arguments"])
        assert result.ok, (action, result.output)
    return load_environment(domain).db, env.db


def changes(before: DB, after: DB) -> dict[tuple[str, str], dict[str, Any]]:
    """Per changed record, its changed fields with their new values (a new record: all of them)."""
    changed = {}
    for table, records in after.items():
        for key, record in records.items():
            old = before[table].get(key, {})
            fields = {name: value for name, value in record.items() if old.get(name, object()) != value}
            if fields:
                changed[(table, key)] = fields
    return changed


def test_retail_exchange_records_the_request_and_the_price_difference():
    before, after = replay("retail", "0")
    assert changes(before, after) == {("orders", "#W2378156"): {
        "status": "exchange requested",
        "exchange_items": ["1151293680", "4983901480"],
        "exchange_new_items": ["7706410293", "7747408585"],
        "exchange_payment_method_id": "credit_card_9513926",
        "exchange_price_difference": -16.63,
    }}


def test_retail_cancel_refunds_each_payment():
    before, after = replay("retail", "66")
    assert changes(before, after) == {("orders", "#W3361211"): {
        "status": "cancelled",
        "cancel_reason": "no longer needed",
        "payment_history": [
            {"transaction_type": "payment", "amount": 1464.0, "payment_method_id": "credit_card_1640996"},
            {"transaction_type": "refund", "amount": 1464.0, "payment_method_id": "credit_card_1640996"},
        ],
    }}


def test_retail_pending_order_address_change():
    before, after = replay("retail", "17")
    assert changes(before, after) == {("orders", "#W8665881"): {"address": {
        "address1": "123 Elm Street", "address2": "Suite 641", "city": "Austin", "country": "USA", "state": "TX",
        "zip": "78712"}}}


def test_retail_return_requests_the_items_back():
    before, after = replay("retail", "5")
    assert changes(before, after) == {("orders", "#W6390527"): {
        "status": "return requested", "return_items": ["8538875209"], "return_payment_method_id": "paypal_7644869"}}


def test_retail_payment_change_pays_with_the_new_method_and_refunds_the_old():
    before, after = replay("retail", "40")
    assert changes(before, after)[("orders", "#W4923227")]["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": 321.18, "payment_method_id": "credit_card_8897086"},
        {"transaction_type": "refund", "amount": 321.18, "payment_method_id": "credit_card_8554680"},
    ]


def test_retail_item_modification_charges_the_gift_card_with_taus_arithmetic():
    before, after = replay("retail", "20")
    changed = changes(before, after)
    order = changed[("orders", "#W9911714")]
    assert order["status"] == "pending (item modified)"
    # The unrounded sum of price differences, as tau2 records it.
    assert order["payment_history"][1] == {"transaction_type": "payment", "amount": 71.96000000000001,
                                           "payment_method_id": "gift_card_4332117"}
    assert changed[("users", "ethan_garcia_1261")]["payment_methods"]["gift_card_4332117"]["balance"] == 14.04
    # tau2 prices (and describes) every modified item as the last new item: kept, so databases match.
    last = before["products"]["5149340237"]["variants"]["2882812427"]
    assert [item["item_id"] for item in order["items"]] == ["4579334072", "1151293680", "4107812777", "2882812427"]
    assert all(item["price"] == last["price"] and item["options"] == last["options"] for item in order["items"])


def test_airline_booking_with_a_certificate_and_a_credit_card():
    before, after = replay("airline", "20")
    changed = changes(before, after)
    assert changed[("reservations", "HATHAT")] == {
        "reservation_id": "HATHAT", "user_id": "mia_li_3668", "origin": "JFK", "destination": "SEA",
        "flight_type": "one_way", "cabin": "economy",
        "flights": [
            {"flight_number": "HAT136", "origin": "JFK", "destination": "ATL", "date": "2024-05-20", "price": 152},
            {"flight_number": "HAT039", "origin": "ATL", "destination": "SEA", "date": "2024-05-20", "price": 103},
        ],
        "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
        "payment_history": [{"payment_id": "certificate_7504069", "amount": 250},
                            {"payment_id": "credit_card_4421486", "amount": 5}],
        "created_at": "2024-05-15T15:00:00", "total_baggages": 3, "nonfree_baggages": 0, "insurance": "no",
        "status": None,
    }
    user = after["users"]["mia_li_3668"]
    assert "certificate_7504069" not in user["payment_methods"]  # spent whole
    assert user["reservations"][-1] == "HATHAT"
    for flight in ("HAT136", "HAT039"):
        seats = before["flights"][flight]["dates"]["2024-05-20"]["available_seats"]
        assert after["flights"][flight]["dates"]["2024-05-20"]["available_seats"] == {**seats, "economy": seats["economy"] - 1}
    assert set(changed) == {("reservations", "HATHAT"), ("users", "mia_li_3668"), ("flights", "HAT136"),
                            ("flights", "HAT039")}


def test_airline_cancel_refunds_every_payment_and_keeps_the_seats():
    before, after = replay("airline", "19")
    assert changes(before, after) == {("reservations", "Z7GOZK"): {
        "payment_history": [{"payment_id": "gift_card_2200803", "amount": 169},
                            {"payment_id": "gift_card_2200803", "amount": -169}],
        "status": "cancelled",
    }}


def test_airline_downgrade_refunds_the_difference_to_the_gift_card():
    before, after = replay("airline", "11")
    assert changes(before, after) == {
        ("reservations", "GV1N64"): {
            "cabin": "basic_economy",
            "flights": [
                {"flight_number": "HAT003", "origin": "LAS", "destination": "DEN", "date": "2024-05-19", "price": 53},
                {"flight_number": "HAT290", "origin": "DEN", "destination": "LAS", "date": "2024-05-20", "price": 99},
            ],
            "payment_history": [{"payment_id": "gift_card_1642017", "amount": 5700},
                                {"payment_id": "gift_card_1642017", "amount": -5244}],
        },
        ("users", "james_patel_9828"): {"payment_methods": {"gift_card_1642017": {
            "source": "gift_card", "id": "gift_card_1642017", "amount": 5372.0}}},
    }


def test_airline_cabin_upgrade_charges_the_credit_card():
    before, after = replay("airline", "37")
    assert changes(before, after) == {("reservations", "M20IZO"): {
        "cabin": "business",
        "flights": [
            {"flight_number": "HAT268", "origin": "JFK", "destination": "ATL", "date": "2024-05-22", "price": 430},
            {"flight_number": "HAT010", "origin": "ATL", "destination": "MCO", "date": "2024-05-22", "price": 412},
        ],
        "payment_history": [{"payment_id": "credit_card_4959530", "amount": 490},
                            {"payment_id": "credit_card_9074831", "amount": 1194}],
    }}


def test_airline_free_baggage_update_records_no_payment():
    before, after = replay("airline", "12")
    assert changes(before, after) == {("reservations", "YAX4DR"): {"total_baggages": 2}}


@pytest.mark.parametrize("amount, stored", [(100, 100.0), (50, 50.0)])
def test_airline_certificates_get_taus_ids_in_order(amount, stored):
    env = load_environment("airline")
    first = env.call("send_certificate", {"user_id": "mia_li_3668", "amount": amount})
    second = env.call("send_certificate", {"user_id": "mia_li_3668", "amount": amount})
    assert first.output == f"Certificate certificate_3221322 added to user mia_li_3668 with amount {amount}."
    assert second.output.startswith("Certificate certificate_3221323 ")
    assert env.db["users"]["mia_li_3668"]["payment_methods"]["certificate_3221322"] == {
        "source": "certificate", "id": "certificate_3221322", "amount": stored}
    env.call("send_certificate", {"user_id": "mia_li_3668", "amount": amount})
    assert env.call("send_certificate", {"user_id": "mia_li_3668", "amount": amount}).output == "Error: Too many certificates"
