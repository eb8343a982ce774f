"""Prompt builder: scenarios, the observation budget and parsing the prompt back."""

from __future__ import annotations

import json

import pytest

from evaluation.next_action.prompt import PROMPT_VERSION, build_messages, compact_observation, parse_prompt

NAMES = [f"search_results.item_{i}.product_link" for i in range(40)] + ["nav_bar.search_input", "pagination.2"]


def big_page() -> str:
    filler = "<div class='ad-banner' style='color:red'><span>" + "Sponsored content you did not ask for. " * 40 + "</span></div>"
    items = "".join(
        f"<div class='s-result'><p>{'Long marketing description. ' * 30}</p>"
        f"<a name='{name}' href='/dp/{i}'>Product {i} title</a></div>{filler}"
        for i, name in enumerate(NAMES[:40])
    )
    return (f"<html><head><style>{'x{color:red}' * 500}</style></head><body>"
            f"<header><input name='nav_bar.search_input' type='text' value='bike'/></header>{items}"
            f"<nav><a name='pagination.2'>2</a></nav></body></html>")


def instance_input() -> dict:
    return {
        "session_id": "u1_s", "user_id": "u1", "step": 2,
        "persona": {"survey": {"Demographic Information": {"Age": "25-34 years old"}}, "interview": "Likes cycling."},
        "history": [
            {"type": "input", "click_type": "", "name": "nav_bar.search_input", "text": "bike light", "rationale": "need a light"},
            {"type": "click", "click_type": "page_related", "name": "pagination.2", "text": "", "rationale": ""},
        ],
        "observation": big_page(),
        "url": "https://www.amazon.com/s?k=bike+light",
    }


def test_small_pages_pass_through_unchanged() -> None:
    assert compact_observation("<a name='x'>hi</a>", 100) == "<a name='x'>hi</a>"


@pytest.mark.parametrize("budget", [3_000, 8_000, 20_000])
def test_budget_keeps_every_named_element(budget: int) -> None:
    page = big_page()
    assert len(page) > 100_000
    shrunk = compact_observation(page, budget)
    assert len(shrunk) <= budget
    for name in NAMES:
        assert f'name="{name}"' in shrunk


def test_budget_keeps_text_while_it_can() -> None:
    shrunk = compact_observation(big_page(), 20_000)
    assert "Product 7 title" in shrunk and "style=" not in shrunk and "x{color:red}" not in shrunk


def test_tiny_budget_lists_what_fits_and_says_what_is_left() -> None:
    shrunk = compact_observation(big_page(), 500)
    assert len(shrunk) <= 500
    assert 'name="search_results.item_0.product_link"' in shrunk and "more named elements omitted" in shrunk


def test_scenarios() -> None:
    full = build_messages(instance_input(), "full", observation_chars=10_000)
    assert full[0]["role"] == "system" and '"click_type"' in full[0]["content"]
    user = full[1]["content"]
    assert "## Persona" in user and "Likes cycling." in user and "need a light" in user
    assert "## Persona" not in build_messages(instance_input(), "no_persona")[1]["content"]
    no_rationale = build_messages(instance_input(), "no_rationale")[1]["content"]
    assert "need a light" not in no_rationale and "Likes cycling." in no_rationale
    with pytest.raises(ValueError, match="unknown scenario"):
        build_messages(instance_input(), "bogus")
    assert PROMPT_VERSION


def test_parse_prompt_round_trip() -> None:
    messages = build_messages(instance_input(), "full", observation_chars=10_000)
    view = parse_prompt(messages)
    assert view.url == "https://www.amazon.com/s?k=bike+light"
    assert view.has_persona
    assert view.history == [
        {"type": "input", "name": "nav_bar.search_input", "text": "bike light", "rationale": "need a light"},
        {"type": "click", "name": "pagination.2", "click_type": "page_related"},
    ]
    assert 'name="pagination.2"' in view.observation and len(view.observation) <= 10_000
    assert view.survey == instance_input()["persona"]["survey"]
    assert "Likes cycling." in view.persona and "## " not in view.persona and "bike light" not in view.persona
    first_step = dict(instance_input(), history=[])
    assert parse_prompt(build_messages(first_step, "no_persona")).history == []
    assert json.loads(json.dumps(messages)) == messages


def test_parse_prompt_reads_only_what_the_scenario_shows() -> None:
    no_persona = parse_prompt(build_messages(instance_input(), "no_persona"))
    assert not no_persona.has_persona and no_persona.persona == "" and no_persona.survey == {}
    assert no_persona.history[0]["rationale"] == "need a light"
    no_rationale = parse_prompt(build_messages(instance_input(), "no_rationale"))
    assert no_rationale.has_persona and no_rationale.survey == instance_input()["persona"]["survey"]
    assert all("rationale" not in entry for entry in no_rationale.history)
    empty = parse_prompt(build_messages(dict(instance_input(), persona={}), "full"))
    assert empty.has_persona and empty.persona == "(no persona information)" and empty.survey == {}
    interview_only = parse_prompt(build_messages(dict(instance_input(), persona={"interview": "### Style\n\nQuick."}), "full"))
    assert interview_only.persona == "Interview summary:\n### Style\n\nQuick." and interview_only.survey == {}
