"""manage.py verify_tool_tasks on the shipped tau2 task files, and on bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

DATA = Path("datasets/tau2/data")
TABLES = {"retail": {"products", "users", "orders"}, "airline": {"flights", "users", "reservations"}}


def verify(*args):
    out = io.StringIO()
    call_command("verify_tool_tasks", *args, stdout=out, verbosity=0)
    return out.getvalue()


def test_retail_99_clean_15_failing_with_the_documented_report(tmp_path):
    report_path = tmp_path / "retail.json"
    text = verify("--domain", "retail", "--tasks", str(DATA / "retail" / "tasks.json"), "--json", str(report_path))
    assert text.splitlines()[0] == "retail: 99 of 114 tasks replay cleanly, 15 fail"
    report = json.loads(report_path.read_text())
    tasks = json.loads((DATA / "retail" / "tasks.json").read_text())
    assert list(report) == [t["id"] for t in tasks]
    failing = {task_id for task_id, entry in report.items() if entry["errors"]}
    assert len(failing) == 15
    for task_id, entry in report.items():
        assert set(entry) == {"errors", "changed"}
        assert all(isinstance(e, str) and ": " in e for e in entry["errors"])
        gold_names = {a["name"] for t in tasks if t["id"] == task_id for a in t["evaluation_criteria"]["actions"]}
        assert all(e.split(": ", 1)[0] in gold_names for e in entry["errors"])
        for address in entry["changed"]:
            table, key = address.split("/", 1)
            assert table in TABLES["retail"] and key
    for task_id in failing:
        assert f"  task {task_id}: " in text
    # task 0 exchanges two items of one delivered order: that order is the one record changed
    assert list(report["0"]["changed"]) == ["orders/#W2378156"]
    assert report["0"]["changed"]["orders/#W2378156"]["status"] == "exchange requested"


def test_airline_replays_cleanly(tmp_path):
    report_path = tmp_path / "airline.json"
    text = verify("--domain", "airline", "--tasks", str(DATA / "airline" / "tasks.json"), "--json", str(report_path))
    assert text.splitlines()[0] == "airline: 50 of 50 tasks replay cleanly, 0 fail"
    report = json.loads(report_path.read_text())
    assert len(report) == 50 and not any(entry["errors"] for entry in report.values())
    changed_tables = {address.split("/", 1)[0] for entry in report.values() for address in entry["changed"]}
    assert changed_tables <= TABLES["airline"] and "reservations" in changed_tables


def test_another_database_changes_the_outcome(tmp_path):
    db = json.loads((DATA / "retail" / "db.json").read_text())
    del db["orders"]["#W2378156"]
    db_path = tmp_path / "db.json"
    db_path.write_text(json.dumps(db))
    tasks_path = tmp_path / "tasks.json"
    tasks_path.write_text(json.dumps(json.loads((DATA / "retail" / "tasks.json").read_text())[:1]))
    text = verify("--domain", "retail", "--tasks", str(tasks_path), "--db", str(db_path))
    assert text.splitlines()[0] == "retail: 0 of 1 tasks replay cleanly, 1 fail"
    assert text.splitlines()[1].startswith("  task 0: get_order_details: Error: ")


def test_bad_task_file_is_a_command_error_naming_file_task_and_field(tmp_path):
    tasks = json.loads((DATA / "airline" / "tasks.json").read_text())[:3]
    tasks[2]["evaluation_criteria"]["actions"].append({"action_id": "x", "name": "cancel_order", "arguments": {}})
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(tasks))
    index = len(tasks[2]["evaluation_criteria"]["actions"]) - 1
    with pytest.raises(CommandError, match=rf"tasks\.json: task '2': evaluation_criteria\.actions\[{index}\]\.name: unknown tool 'cancel_order'"):
        verify("--domain", "airline", "--tasks", str(path), "--json", str(tmp_path / "out.json"))
    assert not (tmp_path / "out.json").exists()
