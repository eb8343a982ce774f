"""Fixtures for the OPeRA next-action tests: none of them needs Django or a database."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.prerequisites import missing

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the repo's packages, whichever way pytest was started
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def shared_opera_dir() -> Path:
    """The real OPeRA sample rows shipped in the shared folder (ACTBOARD_SHARED_DIR, default ../shared)."""
    shared = Path(os.environ.get("ACTBOARD_SHARED_DIR", REPO.parent / "shared"))
    folder = shared / "external" / "opera"
    if not folder.is_dir():
        missing(f"real OPeRA sample rows not found at {folder} (set ACTBOARD_SHARED_DIR to the shared folder)")
    return folder


ACTION_FIELDS = ("session_id", "action_id", "timestamp", "action_type", "click_type", "semantic_id", "mouse_position",
                 "element_meta", "url", "window_size", "page_meta", "simplified_html", "rationale", "products",
                 "input_text", "image")


def write_layout(root: Path, split: str, users: list[dict], sessions: list[dict], actions: list[dict],
                 config: str = "filtered", drop: tuple[str, ...] = ()) -> Path:
    """Write rows in the Hub's parquet layout under ``root/OPeRA_<config>``; ``drop`` removes action columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = root / f"OPeRA_{config}"
    for part in ("user", "session"):
        (base / part / split).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(users), base / "user" / split / f"{split}.parquet")
    session_schema = pa.schema([("session_id", pa.string()), ("user_id", pa.string()), ("action_count", pa.int64())])
    pq.write_table(pa.Table.from_pylist(sessions, schema=session_schema), base / "session" / split / f"{split}.parquet")
    fields = [f for f in ACTION_FIELDS if f not in drop]
    schema = pa.schema([(f, pa.string()) for f in fields])
    rows = [{f: a.get(f, "") for f in fields} for a in actions]
    (base / "action").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), base / "action" / f"{split}-00000-of-00001.parquet")
    return root


def page_with(name: str, kind: str) -> str:
    """A minimal simplified page holding the target (the real sample ships no page)."""
    element = f'<input name="{name}" type="text"/>' if kind == "input" else f'<button name="{name}">go</button>'
    return f'<html><body><div name="nav_bar"><input name="nav_bar.search_input" type="text"/></div>{element}</body></html>'


@pytest.fixture(scope="session")
def real_rows(shared_opera_dir: Path) -> dict:
    """The real sample rows: 2 users and 39 ground-truth test actions of 6 sessions, as loader rows."""
    import csv
    import json

    with open(shared_opera_dir / "user_sample.csv", newline="", encoding="utf-8") as fh:
        users = list(csv.DictReader(fh))
    steps = [json.loads(line) for line in (shared_opera_dir / "test_actions_sample.jsonl").read_text().splitlines() if line.strip()]
    actions, counts = [], {}
    for step in steps:
        gt = step["action_gt"]
        counts[step["session_id"]] = counts.get(step["session_id"], 0) + 1
        actions.append({
            "session_id": step["session_id"],
            "action_id": f"{step['session_id']}_{step['step_idx']}",
            "timestamp": str(step["step_idx"]),
            "action_type": gt["type"],
            "click_type": gt.get("click_type", ""),
            "semantic_id": gt.get("name", ""),
            "input_text": gt.get("text", ""),
            "url": "https://www.amazon.com/",
            "simplified_html": page_with(gt.get("name", ""), gt["type"]),
            # PROVENANCE: the sample's rationales are mostly machine-written, so they are not loaded as human ones.
            "rationale": "",
        })
    sessions = [{"session_id": s, "user_id": s.split("_")[0], "action_count": n} for s, n in counts.items()]
    return {"users": users, "sessions": sessions, "actions": actions, "steps": steps}


@pytest.fixture
def real_layout(tmp_path: Path, real_rows: dict) -> Path:
    return write_layout(tmp_path / "opera", "test", real_rows["users"], real_rows["sessions"], real_rows["actions"])
