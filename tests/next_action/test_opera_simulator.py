"""The simulator is deterministic, writes the real layout and has the real test split's shape."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pyarrow.parquet as pq

from datasets.opera.bundle import DATA_DIR, load_bundled
from datasets.opera.loader import load_opera
from datasets.opera.simulator import simulate, stats, write_layout
from evaluation.metrics.next_action import CLICK_TYPES


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.parquet"))}


def test_same_seed_same_bytes_and_the_bundle_is_reproducible(tmp_path: Path) -> None:
    first, second = write_layout(tmp_path / "a"), write_layout(tmp_path / "b")
    assert digests(first) == digests(second)
    assert len(digests(first)) == 6
    # Parquet bytes may change with the pyarrow version; the committed rows must not.
    for name in digests(first):
        assert pq.read_table(first / name).equals(pq.read_table(DATA_DIR / name)), name


def test_other_seed_other_data() -> None:
    assert simulate(1).sessions["test"] != simulate(2).sessions["test"]


def test_shape_close_to_the_real_split() -> None:
    numbers = stats(load_opera(DATA_DIR))
    test, train = numbers["test"], numbers["train"]
    assert test["sessions"] == 90 and train["sessions"] == 437 and train["users"] == 51
    assert 800 <= test["actions"] <= 1100 and 4300 <= train["actions"] <= 5400
    assert 0.08 <= test["action_types"]["input"] / test["actions"] <= 0.14
    assert test["action_types"]["terminate"] + test["purchase_sessions"] == 90  # a session ends one way or the other
    assert 0.45 <= train["purchase_rate"] <= 0.7
    assert set(train["click_types"]) == set(CLICK_TYPES)
    assert train["session_length"]["min"] == 1 and train["rationales"] > 0
    assert 2_000 <= train["page_chars"]["median"] <= 50_000


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
    assert time.perf_counter() - started < 5
    assert (bench.slug, bench.kind, bench.name) == ("opera", "next_action", "OPeRA next-action prediction")
    assert [s.slug for s in bench.scenarios] == ["full", "no_persona", "no_rationale"]
    train, test = bench.splits
    assert (train.name, train.labels_hidden, test.name, test.labels_hidden) == ("train", False, "test", True)
    instance = test.instances[0]
    session_id, step = instance.key.split("#")
    assert instance.input["session_id"] == session_id and instance.input["step"] == int(step) >= 1
    assert set(instance.input) == {"session_id", "user_id", "step", "persona", "history", "observation", "url"}
    assert set(instance.reference) == {"session_id", "type", "name", "text", "click_type"}
    assert len({i.key for i in test.instances}) == len(test.instances)
    assert "CC-BY-4.0" in bench.license and "2506.05606" in bench.citation
