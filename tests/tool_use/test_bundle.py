import json
import shutil
from collections import Counter

import pytest

from datasets.base import DatasetError
from datasets.registry import load_bundled as load_registered
from datasets.tool_use.bundle import DATA_DIR, load_bundled, load_splits, read_tasks, to_instance
from datasets.tool_use.domains import get_domain
from datasets.tool_use.env import initial_db
from datasets.tool_use.pipeline import Task, verify_task


@pytest.fixture(scope="module")
def bundle():
    return load_bundled()


def test_benchmark_shape(bundle):
    assert (bundle.slug, bundle.kind, bundle.name) == ("trajectory2task", "tool_use", "Trajectory2Task tool use")
    assert [s.slug for s in bundle.scenarios] == ["standard", "ambiguous", "changing", "infeasible"]
    assert [(s.name, s.labels_hidden) for s in bundle.splits] == [("train", False), ("dev", False), ("test", True)]
    counts = Counter((r.input["domain"], r.scenario) for s in bundle.splits for r in s.instances)
    assert sum(counts.values()) >= 300
    assert all(counts[(d, s)] >= 20 for d in ("retail", "bank") for s in ("standard", "ambiguous", "changing", "infeasible"))
    test = bundle.splits[2].instances
    assert {r.scenario for r in test} == {"standard", "ambiguous", "changing", "infeasible"}
    record = test[0]
    assert set(record.input) == {"task_id", "domain", "db_seed", "initial_db_hash", "user", "instruction", "script"}
    assert set(record.reference) >= {"gold_actions", "expected_outputs", "expected_db_hash"}
    assert load_registered("trajectory2task").splits[0].instances[0] == bundle.splits[0].instances[0]


def test_bundled_files_are_small():
    assert sum(p.stat().st_size for p in DATA_DIR.rglob("*")) < 2_000_000


def test_every_bundled_task_still_verifies():
    # Guards the seeded databases and the tools against drifting away from the shipped data.
    for folder in sorted(p for p in DATA_DIR.iterdir() if p.is_dir()):
        domain = get_domain(folder.name)
        for split in ("train", "dev", "test"):
            for row in read_tasks(folder / f"{split}.jsonl"):
                task = Task(**row)
                expected = task.expected_db_hash
                assert verify_task(domain, initial_db(task.domain, task.db_seed), task) == [], task.id
                assert task.expected_db_hash == expected


def _copy(tmp_path):
    shutil.copytree(DATA_DIR, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("field, value, message", [
    ("expected_db_hash", "abc", "must be a sha256 hex digest"),
    ("scenario", "sarcastic", "unknown scenario"),
    ("domain", "airline", "unknown domain"),
    ("gold_actions", [{"name": "launch_rocket", "arguments": {}}], "unknown tool"),
    ("db_seed", "seven", "must be of type int"),
])
def test_malformed_row_names_file_row_and_field(tmp_path, field, value, message):
    path = _copy(tmp_path) / "bank" / "dev.jsonl"
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row[field] = value
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as caught:
        read_tasks(path)
    assert (caught.value.path, caught.value.row, caught.value.field_name) == (str(path), 3, field)
    assert message in str(caught.value) and "row 3" in str(caught.value)


def test_missing_field_bad_json_and_tampering(tmp_path):
    root = _copy(tmp_path)
    path = root / "retail" / "test.jsonl"
    first = json.loads(path.read_text().splitlines()[0])
    del first["instruction"]
    path.write_text(json.dumps(first) + "\n{oops\n")
    with pytest.raises(DatasetError, match="row 1, field 'instruction': missing"):
        read_tasks(path)
    with pytest.raises(DatasetError, match="does not match the manifest"):
        load_splits(root)
    path.write_text("{oops\n")
    with pytest.raises(DatasetError, match="row 1: not valid JSON"):
        read_tasks(path)
    with pytest.raises(DatasetError, match="no domain folder"):
        load_splits(tmp_path)


def test_instance_keeps_references_out_of_the_input():
    row = read_tasks(DATA_DIR / "retail" / "test.jsonl")[0]
    record = to_instance(row)
    assert record.key == row["id"] and record.scenario == row["scenario"]
    assert "expected_db_hash" not in json.dumps(record.input) and "gold_actions" not in record.input
