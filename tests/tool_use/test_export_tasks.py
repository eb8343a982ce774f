"""The bundled Trajectory2Task benchmark exports as tau2 task folders (one per domain) that read back to the
shipped tasks, and a folder of generated tasks imports like any tau2 task set."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from datasets.tau2.bundle import read_task_folder
from datasets.tool_use.bundle import DATA_DIR
from leaderboard.models import Benchmark

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    call_command("load_benchmarks", "trajectory2task", verbosity=0)


def test_generated_tasks_round_trip_through_tau2_task_files(loaded, tmp_path):
    call_command("export_tool_tasks", "trajectory2task", "--out", str(tmp_path), "--include-hidden", verbosity=0)
    for domain in ("retail", "airline"):
        exported, shipped = read_task_folder(tmp_path / domain), read_task_folder(DATA_DIR / domain)
        assert {s: dict(t) for s, t in exported.tasks.items()} == {s: dict(t) for s, t in shipped.tasks.items()}
        assert {k: sorted(v) for k, v in exported.splits.items()} == {k: sorted(v) for k, v in shipped.splits.items()}


def test_hidden_generated_tasks_are_left_out_without_the_flag(loaded, tmp_path, capsys):
    call_command("export_tool_tasks", "trajectory2task", "--out", str(tmp_path))
    assert "400 tasks of hidden splits left out" in capsys.readouterr().out
    for domain in ("retail", "airline"):
        splits = json.loads((tmp_path / domain / "split_tasks.json").read_text())
        assert set(splits) == {"train", "dev"}


def test_a_generated_folder_imports_as_a_tau2_task_set(tmp_path):
    call_command("import_tool_tasks", "--path", str(DATA_DIR / "airline"), "--slug", "t2t-airline", verbosity=0)
    benchmark = Benchmark.objects.get(slug="t2t-airline")
    assert benchmark.kind == "tau2"
    assert sorted(benchmark.scenarios.values_list("slug", flat=True)) == ["ambiguous", "changing", "infeasible", "standard"]
    assert benchmark.splits.get(name="test").instances.count() == 200
