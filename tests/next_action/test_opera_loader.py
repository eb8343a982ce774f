"""The OPeRA loader on real rows, on malformed input and through the Hub code path (offline)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.next_action.conftest import REPO, write_layout

from datasets.base import DatasetError
from datasets.opera.loader import build_instances, load_opera


def test_real_rows(real_layout: Path, real_rows: dict) -> None:
    data = load_opera(real_layout, splits=["test"])
    assert len(data.actions["test"]) == 39 and len(data.sessions["test"]) == 6
    user = data.users["7f0c8207-6a6f-49cd-9d7e-17987cfafcb9"]
    assert user.survey["Personality"]["MBTI personality type"] == "infj"
    assert user.raw_survey["Gender"] == "Female"
    assert user.interview_transcript_processed.startswith("### Demographic Information")
    instances = build_instances(data, "test")
    assert len(instances) == 39 - 6  # every action but the first of its session
    by_key = {i.key: i for i in instances}
    positions: dict[str, int] = {}
    for step in real_rows["steps"]:
        # Keys count positions in the session; the sample lacks one step, so step_idx can run ahead.
        position = positions[step["session_id"]] = positions.get(step["session_id"], -1) + 1
        key = f"{step['session_id']}#{position}"
        if position == 0:
            assert key not in by_key
            continue
        gt = step["action_gt"]
        assert by_key[key].reference == {"session_id": step["session_id"], "type": gt["type"], "name": gt.get("name", ""),
                                         "text": gt.get("text", ""), "click_type": gt.get("click_type", "")}
    terminate = next(i for i in instances if i.reference["type"] == "terminate" and i.input["step"] == 2)
    assert [h["type"] for h in terminate.input["history"]] == ["input", "click"]
    assert terminate.input["history"][0]["text"] == "Specialized Flashback Bicycle Tail Light"
    assert terminate.input["persona"]["survey"] == user.survey
    assert terminate.input["persona"]["interview"] == user.interview_transcript_processed


def edge_rows(real_rows: dict) -> dict:
    user_id = real_rows["users"][0]["user_id"]
    base = {"url": "https://www.amazon.com/s?k=x", "timestamp": "t", "rationale": None, "input_text": None, "click_type": None}
    long_page = "<html><body>" + "<div><span>filler text</span></div>" * 20_000 + '<a name="pagination.2">2</a></body></html>'
    actions = [
        dict(base, session_id=f"{user_id}_one", action_id="1", action_type="terminate", semantic_id=None, simplified_html="<html/>"),
        dict(base, session_id=f"{user_id}_two", action_id="2", action_type="input", semantic_id="nav_bar.search_input",
             simplified_html="<html/>"),
        dict(base, session_id=f"{user_id}_two", action_id="3", action_type="click", click_type="page_related",
             semantic_id="pagination.2", simplified_html=long_page, rationale="  "),
    ]
    sessions = [{"session_id": f"{user_id}_one", "user_id": user_id, "action_count": 1},
                {"session_id": f"{user_id}_two", "user_id": user_id, "action_count": 2}]
    return {"users": real_rows["users"][:1], "sessions": sessions, "actions": actions}


def test_edge_cases(tmp_path: Path, real_rows: dict) -> None:
    rows = edge_rows(real_rows)
    root = write_layout(tmp_path, "test", rows["users"], rows["sessions"], rows["actions"], drop=("products", "image", "mouse_position"))
    data = load_opera(root, splits=["test"])
    one, two, three = data.actions["test"]
    assert two.input_text == "" and three.rationale == "" and one.semantic_id == "" and one.products == ""
    instances = build_instances(data, "test")
    assert [i.key for i in instances] == [f"{rows['sessions'][1]['session_id']}#1"]  # a one-action session has none
    assert len(instances[0].input["observation"]) > 600_000  # the loader keeps the page; the prompt shrinks it
    assert instances[0].input["history"] == [{"type": "input", "click_type": "", "name": "nav_bar.search_input", "text": "", "rationale": ""}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows["actions"][2].update(action_type="scroll"), "row 2, field 'action_type': unknown action type 'scroll'"),
        (lambda rows: rows["actions"][2].update(semantic_id=""), "row 2, field 'semantic_id': empty value"),
        (lambda rows: rows["actions"][2].update(click_type=None), "row 2, field 'click_type': empty value"),
        (lambda rows: rows["actions"][1].update(session_id="nobody"), "row 1, field 'session_id': session 'nobody' is not in the session table"),
        (lambda rows: rows["sessions"][0].update(user_id="ghost"), "row 0, field 'user_id': user 'ghost' is not in the user table"),
        (lambda rows: rows["users"][0].update(survey="{not json"), "row 0, field 'survey': invalid JSON"),
        (lambda rows: rows["users"][0].update(survey="[1, 2]"), "row 0, field 'survey': expected a JSON object, found list"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path: Path, real_rows: dict, change, message: str) -> None:
    rows = edge_rows(real_rows)
    rows["users"] = [dict(u) for u in rows["users"]]
    change(rows)
    write_layout(tmp_path, "test", rows["users"], rows["sessions"], rows["actions"])
    with pytest.raises(DatasetError) as info:
        load_opera(tmp_path, splits=["test"])
    assert message in str(info.value)
    assert ".parquet" in str(info.value)


def test_bad_files(tmp_path: Path, real_rows: dict) -> None:
    rows = edge_rows(real_rows)
    write_layout(tmp_path, "test", rows["users"], rows["sessions"], rows["actions"], drop=("simplified_html",))
    with pytest.raises(DatasetError, match=r"test-00000-of-00001\.parquet, field 'simplified_html': missing column"):
        load_opera(tmp_path, splits=["test"])
    action_file = tmp_path / "OPeRA_filtered/action/test-00000-of-00001.parquet"
    action_file.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DatasetError, match="not a readable parquet file"):
        load_opera(tmp_path, splits=["test"])
    pq.write_table(pa.table({"session_id": [1], "user_id": ["u"], "action_count": [1]}), tmp_path / "OPeRA_filtered/session/test/test.parquet")
    with pytest.raises(DatasetError, match="field 'session_id': expected a string column, found int64"):
        load_opera(tmp_path, splits=["test"])
    with pytest.raises(DatasetError, match=r"train/\*\.parquet: no parquet files match"):
        load_opera(tmp_path, splits=["train"])
    with pytest.raises(DatasetError, match="neither a local folder nor a Hub repo id"):
        load_opera(tmp_path / "missing" / "folder")


def populate_hub_cache(cache: Path, layout: Path, commit: str = "0" * 40) -> None:
    """The cache layout huggingface_hub writes after a download: refs/main -> snapshots/<commit>/..."""
    repo = cache / "datasets--NEU-HAI--OPeRA"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(layout, repo / "snapshots" / commit)


def test_hub_path_offline_from_the_cache(tmp_path: Path, real_layout: Path) -> None:
    """The real snapshot_download code path, with HF_HUB_OFFLINE=1 set before huggingface_hub loads."""
    cache = tmp_path / "hf-cache"
    populate_hub_cache(cache, real_layout)
    script = (
        "from datasets.opera.loader import load_opera, build_instances\n"
        f"data = load_opera('NEU-HAI/OPeRA', splits=['test'], cache_dir={str(cache)!r})\n"
        "print(data.source, len(data.actions['test']), len(build_instances(data, 'test')))\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["NEU-HAI/OPeRA", "39", "33"]
    missing = subprocess.run([sys.executable, "-c", script.replace("NEU-HAI/OPeRA", "someone/else")], env=env,
                             capture_output=True, text=True, timeout=120, cwd=REPO)
    assert missing.returncode != 0 and "LocalEntryNotFoundError" in missing.stderr
