"""Hosting tau2 task sets: import_tool_tasks (folder and offline Hub), set_benchmark_simulator, the board
epoch, refusing submissions without a simulator, and the drill-down of a hidden split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from datasets.tau2 import domain_dir
from leaderboard import boards
from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Score, Submission, TaskInstance
from leaderboard.submissions import create_submission
from tests.hub_server import HubServer

pytestmark = pytest.mark.django_db


def airline_tasks(n: int) -> list[dict]:
    return json.loads((domain_dir("airline") / "tasks.json").read_text())[:n]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    tasks = airline_tasks(3)
    (tmp_path / "tasks_general.json").write_text(json.dumps(tasks[:2]))
    (tmp_path / "tasks_ambiguous.json").write_text(json.dumps(tasks[2:]))
    return tmp_path


@pytest.fixture
def hosted(folder) -> Benchmark:
    call_command("import_tool_tasks", "--path", str(folder), "--slug", "mini-airline", verbosity=0)
    return Benchmark.objects.get(slug="mini-airline")


def set_simulator(slug: str, model: str = "scenario-user", key: str = "sk-sim-secret") -> None:
    call_command("set_benchmark_simulator", slug, "--user-base-url", "http://127.0.0.1:9/v1", "--user-model", model,
                 "--user-api-key", key, "--params", '{"temperature": 0}', verbosity=0)


def test_folder_import_has_a_tab_per_task_type_on_the_named_domain(hosted, capsys):
    assert hosted.kind == "tau2" and list(hosted.scenarios.values_list("slug", flat=True)) == ["standard", "ambiguous"]
    split = hosted.splits.get()
    assert split.name == "test" and split.labels_hidden and split.instance_count == 3
    row = TaskInstance.objects.get(split=split, key=airline_tasks(3)[2]["id"])
    assert row.scenario == "ambiguous" and row.input["domain"] == "airline" and "evaluation_criteria" in row.reference


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["evaluation_criteria"]["actions"][0].update(name="teleport"), "evaluation_criteria.actions[0].name: unknown tool 'teleport'"),
    (lambda t: t.pop("user_scenario"), "user_scenario"),
    (lambda t: t["evaluation_criteria"].update(reward_basis="DB"), "evaluation_criteria.reward_basis"),
])
def test_bad_task_is_named_by_file_task_and_field_and_nothing_is_imported(folder, mutate, message):
    tasks = airline_tasks(2)
    task = next(t for t in tasks if t["evaluation_criteria"].get("actions"))
    mutate(task)
    (folder / "tasks_general.json").write_text(json.dumps(tasks))
    with pytest.raises(CommandError) as err:
        call_command("import_tool_tasks", "--path", str(folder), "--slug", "mini-airline", verbosity=0)
    assert "tasks_general.json" in str(err.value) and f"task '{task['id']}'" in str(err.value) and message in str(err.value)
    assert not Benchmark.objects.filter(slug="mini-airline").exists()


def test_bad_database_is_refused(folder):
    db = json.loads((domain_dir("airline") / "db.json").read_text())
    next(iter(db["flights"].values())).pop("origin")
    (folder / "db.json").write_text(json.dumps(db))
    with pytest.raises(CommandError, match="origin"):
        call_command("import_tool_tasks", "--path", str(folder), "--slug", "mini-airline", verbosity=0)
    assert not Benchmark.objects.exists()


def test_hub_import_offline_with_a_split_file(folder):
    hub = HubServer()
    try:
        files = {p.name: p.read_bytes() for p in folder.iterdir()}
        ids = [t["id"] for t in airline_tasks(3)]
        files["split_tasks.json"] = json.dumps({"train": ids[:1], "test": ids[1:]}).encode()
        hub.repos["datasets/org/mini"] = files
        hub.commits["datasets/org/mini"] = "a" * 40
        call_command("import_tool_tasks", "--repo-id", "org/mini", "--endpoint", hub.endpoint, "--slug", "hub-airline", verbosity=0)
    finally:
        hub.stop()
    benchmark = Benchmark.objects.get(slug="hub-airline")
    assert {s.name: (s.instance_count, s.labels_hidden) for s in benchmark.splits.all()} == {"train": (1, False), "test": (2, True)}


def test_simulator_setting_is_sealed_shown_and_starts_a_new_epoch(hosted, capsys):
    set_simulator(hosted.slug)
    hosted.refresh_from_db()
    assert "sk-sim-secret" not in json.dumps(hosted.simulator) and hosted.simulator_config()["user"]["api_key"] == "sk-sim-secret"
    assert hosted.simulator_shown == {"user": {"base_url": "http://127.0.0.1:9/v1", "model": "scenario-user",
                                               "params": {"temperature": 0}, "prompt_version": "tau2-user-1"}}
    first, version = hosted.simulator_epoch, hosted.board_version
    set_simulator(hosted.slug, key="sk-rotated")  # a new key is not a new setting
    hosted.refresh_from_db()
    assert hosted.simulator_epoch == first and hosted.board_version == version
    set_simulator(hosted.slug, model="another-user")
    hosted.refresh_from_db()
    assert hosted.simulator_epoch not in ("", first) and hosted.board_version > version
    with pytest.raises(CommandError, match="does not use a user simulator"):
        set_simulator_on_other_kind()


def set_simulator_on_other_kind():
    from datasets.registry import load_bundled
    from leaderboard.importing import import_benchmark

    import_benchmark(load_bundled("trajectory2task"))
    set_simulator("trajectory2task")


def finished_submission(benchmark: Benchmark, name: str, value: float, **config) -> Submission:
    model = ModelEntry.objects.create(name=name, base_url="http://127.0.0.1:9/v1", model_id=name)
    submission = create_submission(model=model, benchmark=benchmark, trials=1, enqueue=False, evaluator_config=config)
    Submission.objects.filter(id=submission.id).update(status=Submission.Status.FINISHED)
    Score.objects.create(submission=submission, scenario="standard", metric="pass_1", value=value, n=2)
    Benchmark.touch_boards([benchmark.id])
    return submission


def test_snapshot_takes_the_benchmarks_simulator_and_the_board_ranks_only_the_current_epoch(hosted, client):
    set_simulator(hosted.slug)
    hosted.refresh_from_db()
    old = finished_submission(hosted, "old", 0.9, user={"base_url": "http://evil.example/v1", "model": "yes-man"})
    assert old.config["simulator"]["user"]["model"] == "scenario-user" and old.simulator_epoch == hosted.simulator_epoch
    assert old.config["evaluator"]["user"]["model"] == "scenario-user" and "sk-sim-secret" not in json.dumps(old.config)
    set_simulator(hosted.slug, model="another-user")
    hosted.refresh_from_db()
    new = finished_submission(hosted, "new", 0.5)
    assert [row.submission.id for row in boards.board(hosted, "standard")] == [new.id]
    page = client.get(reverse("leaderboard", args=[hosted.slug])).content.decode()
    assert "another-user" in page and "sk-sim-secret" not in page
    assert "earlier simulator setting" in client.get(reverse("submission", args=[old.id])).content.decode()


def test_benchmark_without_simulator_refuses_submissions_on_the_api(hosted, client, django_user_model):
    from leaderboard.models import ApiToken

    user = django_user_model.objects.create_user("alice", password="pw-alice-123")
    token = ApiToken.issue(user, "test")[1]
    response = client.post(reverse("api-submissions"), {"benchmark": hosted.slug, "name": "m", "base_url": "http://127.0.0.1:9/v1",
                                                       "model_id": "m"}, content_type="application/json",
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.json()["code"] == "no_simulator"
    assert "no user simulator configured" in client.get(reverse("leaderboard", args=[hosted.slug])).content.decode()


def test_drill_down_shows_reasons_to_staff_only_on_a_hidden_split(hosted, client, django_user_model):
    set_simulator(hosted.slug)
    hosted.refresh_from_db()
    submission = finished_submission(hosted, "m", 0.0)
    instance = TaskInstance.objects.filter(split__benchmark=hosted).first()
    reason = "gold call 0 book_reservation({}) was not made (all arguments)"
    prediction = {"success": False, "stop_reason": "user_stop", "reward": 0.0, "reward_basis": ["DB", "ACTION"], "note": "",
                  "components": {"DB": {"value": 1.0, "details": []}, "ACTION": {"value": 0.0, "details": [reason]}}, "failures": [reason]}
    InstanceResult.objects.create(submission=submission, instance=instance, scenario="standard", prediction=prediction)
    url = reverse("submission", args=[submission.id])
    public = client.get(url).content.decode()
    assert "book_reservation" not in public and "1 reason, hidden" in public
    client.force_login(django_user_model.objects.create_user("mod", password="pw-mod-123", is_staff=True))
    assert "book_reservation" in client.get(url).content.decode()
