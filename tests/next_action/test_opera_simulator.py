"""The simulator: deterministic, sized by a parameter, reproduces the bundle, and has the real data's shape."""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datasets.opera.bundle import DATA_DIR, VERSION, load_bundled
from datasets.opera.loader import load_opera
from datasets.opera.simulator import (DEFAULT_SEED, MAX_PAGE_CHARS, MIN_PAGE_CHARS, Shape, _persona, name_pattern,
                                      persona_conflicts, rationale, simulate, stats, write_layout)
from evaluation.metrics.next_action import CLICK_TYPES

SMALL = Shape(users=6, train_sessions=10, test_sessions=4, train_actions=100, test_actions=40)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


@pytest.fixture(scope="module")
def bundle_stats() -> dict:
    return stats(load_opera(DATA_DIR, pages=["test"]))


def test_small_shapes_are_quick_and_the_same_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    started = time.perf_counter()
    first, second = write_layout(tmp_path / "a", shape=SMALL), write_layout(tmp_path / "b", shape=SMALL)
    assert time.perf_counter() - started < 20
    assert digests(first) == digests(second) and len(digests(first)) == 6
    numbers = stats(load_opera(first))
    assert numbers["train"]["sessions"] == 10 and numbers["test"]["sessions"] == 4
    assert 80 <= numbers["train"]["actions"] <= 120
    assert simulate(1, SMALL).sessions["test"] != simulate(2, SMALL).sessions["test"]


def test_any_subset_of_sessions_reproduces_the_bundle() -> None:
    # Every session has its own random stream: three of them regenerate exactly as committed.
    subset = simulate(DEFAULT_SEED, only=[0, 7, 300])
    committed = {split: pq.read_table(DATA_DIR / "OPeRA_filtered" / "action" / f"{split}-00000-of-00001.parquet").to_pylist()
                 for split in ("train", "test")}
    rows = [row for split in ("train", "test") for row in subset.actions[split]]
    assert len({row["session_id"] for row in rows}) == 3
    by_id = {row["action_id"]: row for split in committed.values() for row in split}
    for row in rows:
        assert by_id[row["action_id"]] == row
    assert VERSION == "sim2-seed2025"


def test_shape_close_to_the_real_dataset(bundle_stats: dict) -> None:
    test, train = bundle_stats["test"], bundle_stats["train"]
    assert test["sessions"] == 90 and train["sessions"] == 437 and train["users"] == 51
    assert abs(test["actions"] - 992) <= 30 and abs(train["actions"] - 4864) <= 100
    assert 0.08 <= test["action_types"]["input"] / test["actions"] <= 0.14
    assert test["action_types"]["terminate"] + test["purchase_sessions"] == 90  # a session ends one way or the other
    assert 0.45 <= train["purchase_rate"] <= 0.65
    assert set(train["click_types"]) == set(CLICK_TYPES)
    assert train["session_length"]["min"] == 1 and 10 <= train["session_length"]["mean"] <= 12


def test_pages_at_the_cards_scale(bundle_stats: dict) -> None:
    pages = bundle_stats["test"]["page_chars"]
    assert MIN_PAGE_CHARS <= pages["min"] < 10_000 and 300_000 <= pages["max"] <= MAX_PAGE_CHARS
    assert 80_000 <= pages["median"] <= 125_000


def test_what_the_real_data_does_not_give_away(bundle_stats: dict) -> None:
    train = bundle_stats["train"]
    # An element's click type is not always its id's: real annotators label the same element differently.
    assert train["ambiguous_click_names"] >= 20
    # Purchases happen anywhere, not only at the end.
    assert train["purchase_clicks_before_last_3"] >= 0.3 * train["purchase_clicks"]
    assert train["distinct_rationales"] >= 0.7 * train["rationales"] >= 300
    assert train["persona_conflicts"] == 0 == bundle_stats["test"]["persona_conflicts"]


def test_rationale_grammar_and_persona_checks() -> None:
    rng = random.Random(0)
    people = [_persona(rng) for _ in range(20)]
    notes = {rationale(rng, topic, person, noun="bike light", dim="color", value="green")
             for person in people for topic in ("search", "purchase", "review", "product_option", "terminate") for _ in range(20)}
    assert len(notes) >= 400
    assert all(not persona_conflicts(p.survey) for p in people)
    assert persona_conflicts({"Demographic Information": {"Age": "18-24 years old", "Employment status": "Retired"}}) == [
        "retired at 18-24 years old"]


def test_ids_in_the_real_style() -> None:
    assert name_pattern("product_options.color.button_list.3_99_3_99_cashmere_vanilla_tassel_ceramic") == \
        name_pattern("product_options.color.button_list.green") == "product_options.color.button_list.*"
    assert name_pattern("active_item_list.lamicall_bike_frame_bag.delete") == "active_item_list.*.delete"
    data = load_opera(DATA_DIR, splits=["test"])
    names = {a.semantic_id for a in data.actions["test"]}
    assert any(re.fullmatch(r"product_options\.\w+\.button_list\.\d+_\d+_.*", n) for n in names)  # prices inside ids
    assert {"cart_side_bar.go_to_cart", "go_to_cart", "check_out"} <= names


def test_pages_hold_their_targets() -> None:
    data = load_opera(DATA_DIR, splits=["test"])
    for action in data.actions["test"]:
        if action.action_type != "terminate":
            assert f'name="{action.semantic_id}"' in action.simplified_html, action.semantic_id
        assert re.match(r"^https://www\.amazon\.com/", action.url)


def test_load_bundled() -> None:
    load_bundled.cache_clear()
    started = time.perf_counter()
    bench = load_bundled()
    assert time.perf_counter() - started < 10
    assert (bench.slug, bench.kind, bench.name, bench.version) == ("opera", "next_action", "OPeRA next-action prediction", VERSION)
    assert [s.slug for s in bench.scenarios] == ["full", "no_persona", "no_rationale"]
    train, test = bench.splits
    assert (train.name, train.labels_hidden, test.name, test.labels_hidden) == ("train", False, "test", True)
    instance = test.instances[0]
    session_id, step = instance.key.split("#")
    assert instance.input["session_id"] == session_id and instance.input["step"] == int(step) >= 1
    assert set(instance.input) == {"session_id", "user_id", "step", "persona", "history", "observation", "url"}
    assert set(instance.reference) == {"session_id", "type", "name", "text", "click_type"}
    assert len({i.key for i in test.instances}) == len(test.instances)
    # Only the test split stores its pages; the train split keeps everything else.
    assert all(i.input["observation"] for i in test.instances)
    assert not any(i.input["observation"] for i in train.instances) and train.instances[0].input["history"]
    assert bench.extra["source"] == "simulated" and bench.extra["paged_splits"] == ["test"]
    assert "CC-BY-4.0" in bench.license and "2506.05606" in bench.citation
