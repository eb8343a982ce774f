"""The reply parser accepts what models really write and never raises."""

from __future__ import annotations

import pytest

from evaluation.next_action.parser import parse_reply

CLICK = {"type": "click", "name": "buybox.purchase_form.add_to_cart", "click_type": "purchase"}


@pytest.mark.parametrize(
    "reply",
    [
        '{"rationale": "good deal", "action": {"type": "click", "name": "buybox.purchase_form.add_to_cart", "click_type": "purchase"}}',
        'Sure! Here is my answer:\n```json\n{"rationale": "good deal", "action": {"type": "click", '
        '"name": "buybox.purchase_form.add_to_cart", "click_type": "purchase"}}\n```\nHope that helps.',
        "{'rationale': 'good deal', 'action': {'type': 'click', 'name': 'buybox.purchase_form.add_to_cart', 'click_type': 'purchase',},}",
        '{"rationale": "good deal", "action": {"type": "CLICK", "name": "buybox.purchase_form.add_to_cart", "click_type": "Purchase"},}',
        'I think {"type": "click", "name": "buybox.purchase_form.add_to_cart", "click_type": "purchase", "rationale": "good deal"}',
    ],
)
def test_tolerated_forms(reply: str) -> None:
    parsed = parse_reply(reply)
    assert {k: parsed[k] for k in CLICK} == CLICK
    assert parsed["parse_error"] == ""
    assert parsed["rationale"] == "good deal"


def test_input_and_terminate() -> None:
    parsed = parse_reply('{"rationale": "x", "action": {"type": "input", "name": "nav_bar.search_input", "text": "bike light"}}')
    assert (parsed["type"], parsed["name"], parsed["text"]) == ("input", "nav_bar.search_input", "bike light")
    assert parse_reply('{"action": "terminate"}')["type"] == "terminate"
    assert parse_reply('{"rationale": "done", "action": {"type": "terminate", "name": "x"}}')["name"] == ""


def test_braces_and_apostrophes_inside_strings() -> None:
    reply = '{"rationale": "I don\'t like {this} one", "action": {"type": "click", "name": "a.b", "click_type": "other"}}'
    parsed = parse_reply(reply)
    assert parsed["rationale"] == "I don't like {this} one" and parsed["name"] == "a.b"


def test_python_literals() -> None:
    parsed = parse_reply("{'action': {'type': 'click', 'name': 'x', 'click_type': None}, 'rationale': None}")
    assert parsed["type"] == "click" and parsed["click_type"] == "" and parsed["rationale"] == ""


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (None, "empty reply"),
        ("   ", "empty reply"),
        ("I would click the add to cart button.", "no JSON object"),
        ('{"action": {"type": "scroll"}}', "unknown action type 'scroll'"),
        ('{"action": {"name": "x"}}', "no 'type'"),
        ('{"action": ["click"]}', "'action' is a list"),
        ('{"action": {"type": "click", "name": "x"', "no JSON object"),
    ],
)
def test_unparsable_replies_are_invalid_predictions(reply: str | None, error: str) -> None:
    parsed = parse_reply(reply)
    assert parsed["type"] == "invalid"
    assert error in parsed["parse_error"]


def test_huge_garbage_does_not_hang() -> None:
    parsed = parse_reply("{" * 50_000 + "not json")
    assert parsed["type"] == "invalid"
