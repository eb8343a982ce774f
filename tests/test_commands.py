"""The management commands a maintainer runs: load, evaluate, statistics."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from evaluation.baselines.next_action import MajorityPolicy
from evaluation.baselines.server import PolicyServer
from leaderboard.models import Benchmark, Score, Split, Submission


@pytest.fixture
def loaded(db):
    call_command("load_benchmarks", verbosity=0)
    return Benchmark.objects.get(slug="opera")


def test_load_benchmarks_is_idempotent(loaded):
    splits = dict(Split.objects.values_list("id", "sha256"))
    out = io.StringIO()
    call_command("load_benchmarks", stdout=out, verbosity=0)
    assert dict(Split.objects.values_list("id", "sha256")) == splits  # unchanged splits are kept as they are
    assert "OPeRA next-action prediction" in out.getvalue() and "test 905" in out.getvalue()  # 902 in the real data
    assert set(Benchmark.objects.values_list("slug", flat=True)) == {"opera", "trajectory2task", "tau2-retail", "tau2-airline"}


def test_evaluate_prints_a_score_table(loaded):
    server = PolicyServer(MajorityPolicy()).start_background()
    out = io.StringIO()
    try:
        call_command("evaluate", "--benchmark", "opera", "--base-url", server.base_url, "--model", "opera-majority",
                     "--max-instances", "12", "--scenarios", "full", "no_persona", stdout=out, stderr=io.StringIO())
    finally:
        server.stop()
    submission = Submission.objects.get()
    assert submission.status == "finished" and submission.progress_done == 24
    text = out.getvalue()
    assert f"Submission #{submission.id}: opera-majority" in text and "Exact match ↑" in text
    value = Score.objects.get(submission=submission, scenario="full", metric="exact_match").value
    assert f"{100 * value:.2f}" in text


def test_evaluate_reports_an_unreachable_endpoint(loaded):
    with pytest.raises(CommandError, match=r"failed: Endpoint check failed: cannot connect to http://127.0.0.1:9/v1"):
        call_command("evaluate", "--benchmark", "opera", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", stderr=io.StringIO())
    assert Submission.objects.get().error_code == "endpoint_unreachable"


def test_evaluate_names_a_missing_benchmark(db):
    with pytest.raises(CommandError, match="no benchmark 'nope'; run `manage.py load_benchmarks` first"):
        call_command("evaluate", "--benchmark", "nope", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")


def test_opera_stats_prints_bundled_next_to_real(db):
    out = io.StringIO()
    call_command("opera_stats", stdout=out)
    text = out.getvalue()
    assert "test split" in text and "prediction instances" in text and "902" in text and "real OPeRA" in text


def test_opera_stats_names_a_missing_folder(db, tmp_path):
    with pytest.raises(CommandError, match=str(tmp_path)):
        call_command("opera_stats", str(tmp_path))


def test_baselines_are_reused_or_resumed_not_duplicated(loaded, monkeypatch):
    from leaderboard.baselines import submit_baselines
    from worker import lifecycle

    monkeypatch.setattr("leaderboard.submissions.dispatch_on_commit", lambda *args: None)
    first = submit_baselines("http://127.0.0.1:8100/v1")
    assert len(first) == 4 and all(s.status == "queued" for s in first)
    stopped = first[0]
    Submission.objects.claim(stopped.id, "test")
    monkeypatch.setattr(lifecycle, "dispatch", lambda pk: True)
    assert lifecycle.reap(heartbeat_timeout=0).resumed == [stopped.id]  # cut off by a stop, resumed by the reaper
    again = submit_baselines("http://127.0.0.1:8100/v1")
    assert [s.id for s in again] == [s.id for s in first]
    assert Submission.objects.get(id=stopped.id).status == "queued"  # resumed, not replaced
    assert Submission.objects.count() == 4


def small_opera_layout(root):
    from datasets.opera.simulator import Shape, write_layout

    return write_layout(root, seed=7, shape=Shape(users=4, train_sessions=6, test_sessions=3, train_actions=50, test_actions=25))


def test_load_benchmarks_loads_the_real_opera_from_a_folder_or_the_hub(db, client, tmp_path, monkeypatch):
    import shutil

    folder = small_opera_layout(tmp_path / "opera")
    out = io.StringIO()
    call_command("load_benchmarks", "opera", "--source", str(folder), stdout=out, verbosity=0)
    benchmark = Benchmark.objects.get(slug="opera")
    assert benchmark.version.startswith("real-local-") and f"from {folder}" in out.getvalue()
    test_split = benchmark.splits.get(name="test")
    assert test_split.labels_hidden and test_split.instances.first().input["observation"]  # test pages stored
    board = client.get("/b/opera/").content.decode()
    assert "real OPeRA sessions" in board and "21.51" in board  # the paper's figures, on real data only
    home = client.get("/").content.decode()
    assert "real OPeRA sessions" in home and "21.51" not in home
    # The Hub path (huggingface_hub's snapshot_download, offline from its cache): the version names the commit.
    commit = "c0ffee" * 6 + "abcd"
    repo = tmp_path / "hf" / "datasets--NEU-HAI--OPeRA"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(folder, repo / "snapshots" / commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    call_command("load_benchmarks", "opera", "--source", "NEU-HAI/OPeRA", "--revision", "main", verbosity=0)
    assert Benchmark.objects.get(slug="opera").version == f"real-{commit[:12]}"
    assert f"revision <code>{commit[:12]}</code>" in client.get("/b/opera/").content.decode()


def test_the_bundled_board_says_its_data_is_simulated(loaded, client):
    board = client.get("/b/opera/").content.decode()
    assert "simulated sessions in the OPeRA format" in board and "21.51" not in board
    assert loaded.splits.get(name="train").instances.first().input["observation"] == ""  # only test pages are stored


def test_load_benchmarks_source_errors(db, tmp_path):
    with pytest.raises(CommandError, match="--source loads one benchmark's real data"):
        call_command("load_benchmarks", "trajectory2task", "--source", str(tmp_path), verbosity=0)
    with pytest.raises(CommandError, match="folder not found"):
        call_command("load_benchmarks", "opera", "--source", str(tmp_path), verbosity=0)
    with pytest.raises(CommandError, match="--revision needs --source"):
        call_command("load_benchmarks", "opera", "--revision", "main", verbosity=0)
    assert not Benchmark.objects.filter(slug="opera").exists()
