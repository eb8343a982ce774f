"""A hosted tau2 benchmark exports as tau2 task files that read back to the same tasks, and its
successful rollouts export as fine-tuning lines with tau2's tools."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from datasets.tau2.bundle import read_task_folder
from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Submission, TaskInstance
from leaderboard.sft import sft_lines
from leaderboard.submissions import create_submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def airline(tmp_path):
    call_command("load_benchmarks", "tau2-airline", verbosity=0)
    return tmp_path


def test_a_hosted_benchmark_round_trips_through_tau2_task_files(airline):
    from datasets.tau2 import domain_dir

    out = airline / "export"
    call_command("export_tool_tasks", "tau2-airline", "--out", str(out), "--include-hidden", verbosity=0)
    assert sorted(p.name for p in out.iterdir()) == ["split_tasks.json", "tasks_standard.json"]
    exported, shipped = read_task_folder(out), read_task_folder(domain_dir("airline"))
    assert {s: dict(t) for s, t in exported.tasks.items()} == {s: dict(t) for s, t in shipped.tasks.items()}
    assert {k: sorted(v) for k, v in exported.splits.items()} == {k: sorted(v) for k, v in shipped.splits.items()}


def test_without_the_flag_hidden_grading_parts_stay_on_the_server(airline):
    out = airline / "public"
    call_command("export_tool_tasks", "tau2-airline", "--out", str(out), verbosity=0)
    test_ids = set(json.loads((out / "split_tasks.json").read_text())["test"])
    tasks = {t["id"]: t for t in json.loads((out / "tasks_standard.json").read_text())}
    assert test_ids and all("evaluation_criteria" not in tasks[i] for i in test_ids)
    assert any("evaluation_criteria" in t for i, t in tasks.items() if i not in test_ids)


def test_only_tau2_benchmarks_export(airline):
    with pytest.raises(CommandError, match="no tau2-format benchmark 'opera'"):
        call_command("export_tool_tasks", "opera", "--out", str(airline / "x"))


def test_successful_tau2_rollouts_export_with_tau2_tools(airline):
    from evaluation.tau2.sft import tau2_tools

    model = ModelEntry.objects.create(name="agent", base_url="http://127.0.0.1:9/v1", model_id="agent")
    call_command("set_benchmark_simulator", "tau2-airline", "--user-base-url", "http://127.0.0.1:9/v1", "--user-model", "user",
                 verbosity=0)
    benchmark = Benchmark.objects.get(slug="tau2-airline")
    submission = create_submission(model=model, benchmark=benchmark, max_instances=1, trials=1, enqueue=False)
    instance = TaskInstance.objects.filter(split=submission.split).first()
    transcript = [{"role": "system", "content": "policy"}, {"role": "user", "content": "Hi, cancel my trip."},
                  {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                      "name": "get_reservation_details", "arguments": "{\"reservation_id\": \"ABC123\"}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "Error: Reservation ABC123 not found"},
                  {"role": "assistant", "content": "I could not find that reservation."},
                  {"role": "user", "content": "Thanks. ###STOP###"}]
    InstanceResult.objects.create(submission=submission, instance=instance, scenario="standard", trial=0,
                                  transcript=transcript, correct=True)
    Submission.objects.filter(id=submission.id).update(status="finished")
    lines = [json.loads(line) for line in sft_lines(benchmark="tau2-airline")]
    assert len(lines) == 1
    assert lines[0]["tools"] == tau2_tools("airline")
    assert lines[0]["messages"][-1] == {"role": "assistant", "content": "I could not find that reservation."}


def test_a_task_set_graded_by_a_judge_refuses_submissions_until_one_is_set(airline, client, django_user_model):
    call_command("load_benchmarks", "tau2-retail", verbosity=0)
    benchmark = Benchmark.objects.get(slug="tau2-retail")
    assert benchmark.needs_judge  # tau2's retail tasks carry natural-language assertions
    call_command("set_benchmark_simulator", "tau2-retail", "--user-base-url", "http://127.0.0.1:9/v1", "--user-model", "user",
                 verbosity=0)
    benchmark.refresh_from_db()
    assert "no judge configured" in benchmark.missing_simulator_message
    client.force_login(django_user_model.objects.create_user("carol", password="pw-carol-123"))
    body = {"benchmark": "tau2-retail", "name": "m", "base_url": "http://127.0.0.1:9/v1", "model_id": "m"}
    response = client.post("/api/submissions/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "no_simulator"
    assert "no judge configured" in response.json()["detail"]
    assert "no judge configured" in client.get("/b/tau2-retail/").content.decode()
    call_command("set_benchmark_simulator", "tau2-retail", "--user-base-url", "http://127.0.0.1:9/v1", "--user-model", "user",
                 "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "judge", verbosity=0)
    benchmark.refresh_from_db()
    assert benchmark.missing_simulator_message == ""
