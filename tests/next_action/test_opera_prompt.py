"""Prompt builder: scenarios, the observation budget and parsing the prompt back."""

from __future__ import annotations

import json
import re

import pytest

from evaluation.metrics.next_action import CLICK_TYPES
from evaluation.next_action.prompt import (PROMPT_VERSION, build_messages, compact_observation, parse_prompt, prepare_input,
                                           reply_format)

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


@pytest.mark.parametrize("budget", [4_000, 8_000, 20_000])
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
    # Pagination sits at the very end of the page and is kept before the 39 other results.
    assert 'name="pagination.2"' in shrunk and 'name="search_results.item_39.product_link"' not in shrunk


def long_page(reviews: int = 600, rails: int = 30) -> str:
    """A product page as the real ones are laid out: the cart side bar and the pagination come last."""
    review = ("<div class='review'><span>{i} people found this helpful. " + "A long review text. " * 20 + "</span>"
              "<button name='reviews.review_{i}.helpful'>Helpful</button></div>")
    return ("<html><body><header><input name='nav_bar.search_input' value=''/><a name='go_to_cart'>Cart</a></header>"
            + "".join(f"<button name='product_options.color.button_list.{i}_99_{i}_99_shade_{i}'>${i}.99</button>" for i in range(8))
            + "<div name='buybox'><button name='buybox.purchase_form.add_to_cart'>Add to Cart</button></div>"
            + "".join(review.format(i=i) for i in range(reviews))
            + "".join(f"<a name='customers_also_bought_{r}.product_{r}_{k}_gift_set'>Product</a>" for r in range(rails) for k in range(10))
            + "<div name='cart_side_bar'><a name='cart_side_bar.go_to_cart'>Go to Cart</a></div>"
            + "<a name='pagination.next'>Next</a></body></html>")


@pytest.mark.parametrize("budget", [2_000, 8_000, 32_000])
def test_shortening_keeps_what_shoppers_act_on_wherever_it_sits(budget: int) -> None:
    page = long_page()
    assert len(page) > 300_000
    shrunk = compact_observation(page, budget)
    assert len(shrunk) <= budget
    for name in ("nav_bar.search_input", "go_to_cart", "buybox.purchase_form.add_to_cart", "cart_side_bar.go_to_cart",
                 "pagination.next", "product_options.color.button_list.7_99_7_99_shade_7"):
        assert f'name="{name}"' in shrunk, name
    # Repeated blocks go first: one of each kind before the second of any.
    assert 'name="reviews.review_0.helpful"' in shrunk and 'name="reviews.review_599.helpful"' not in shrunk
    kept = re.findall(r'name="([^"]*)"', shrunk)
    assert kept == sorted(kept, key=lambda name: page.index(f"name='{name}'"))  # in page order, whatever their priority
    assert "<button name=\"buybox.purchase_form.add_to_cart\">Add to Cart</button>" in shrunk
    assert '<input name="nav_bar.search_input">\n' in shrunk  # void elements have no end tag


def test_a_page_a_little_over_the_budget_keeps_its_text() -> None:
    page = long_page(reviews=40, rails=2)
    shrunk = compact_observation(page, len(page) // 2)
    assert "class=" not in shrunk and "A long review text." in shrunk and "name='reviews.review_39.helpful'" in shrunk
    assert len(shrunk) <= len(page) // 2


def test_reply_format_is_the_prompts_reply_schema() -> None:
    response_format = reply_format()
    assert response_format["type"] == "json_schema"
    schema = response_format["json_schema"]["schema"]
    assert schema["required"] == ["rationale", "action"]
    shapes = {option["properties"]["type"]["const"]: option for option in schema["properties"]["action"]["anyOf"]}
    assert set(shapes) == {"click", "input", "terminate"}
    assert shapes["click"]["properties"]["click_type"]["enum"] == list(CLICK_TYPES)
    assert shapes["input"]["required"] == ["type", "name", "text"]


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


def test_prepared_parts_build_the_same_prompts_and_serve_only_their_budget_and_version() -> None:
    prepared = prepare_input(instance_input(), 10_000)
    assert prepared["observation"] == compact_observation(big_page(), 10_000)
    for scenario in ("full", "no_persona", "no_rationale"):
        assert build_messages(instance_input(), scenario, observation_chars=10_000, prepared=prepared) == \
            build_messages(instance_input(), scenario, observation_chars=10_000)
    marked = {**prepared, "observation": "MARKER", "persona": "MARKER"}
    assert "MARKER" in build_messages(instance_input(), "full", observation_chars=10_000, prepared=marked)[1]["content"]
    missing_a_part = {key: value for key, value in marked.items() if key != "history_without_rationales"}
    for stale in ({**marked, "observation_chars": 20_000}, {**marked, "prompt_version": "opera-next-action/0"}, missing_a_part, {}):
        assert "MARKER" not in build_messages(instance_input(), "full", observation_chars=10_000, prepared=stale)[1]["content"]


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
