"""publish_benchmark / import_benchmark: a local folder and a local stand-in for the Hub, with the real client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from datasets.base import DatasetError
from datasets.splits import read_folder
from leaderboard.models import Benchmark, Split, TaskInstance
from tests.hub_server import HubServer
from tests.test_downloads import HIDDEN, canary_benchmark  # noqa: F401 (a fixture)


@pytest.fixture
def hub():
    server = HubServer()
    yield server
    server.stop()


@pytest.fixture
def published(canary_benchmark, tmp_path) -> Path:
    call_command("publish_benchmark", "toy", "--repo-id", "org/toy", "--local-dir", str(tmp_path / "out"), "--dry-run", verbosity=0)
    return tmp_path / "out"


def test_published_folder_has_card_manifest_and_no_hidden_reference(published):
    assert sorted(p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file()) == [
        "README.md", "data/test.jsonl", "data/train.jsonl", "manifest.json",
    ]
    for path in published.rglob("*.*"):
        assert HIDDEN not in path.read_text(), path
    card = (published / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "cc0-1.0" and front["pretty_name"] == "Toy addition"
    assert front["citation"].startswith("@misc{toy")
    assert front["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train.jsonl"}]},
        {"config_name": "inputs_only", "data_files": [{"split": "test", "path": "data/test.jsonl"}]},
    ]
    assert "withheld" in card and "## Citation" in card
    manifest = json.loads((published / "manifest.json").read_text())
    assert {s["name"]: s["references_included"] for s in manifest["splits"]} == {"test": False, "train": True}
    # With references included, the file is the canonical split: its hash is the split's dataset hash.
    train = next(s for s in manifest["splits"] if s["name"] == "train")
    assert train["files"]["jsonl"]["sha256"] == train["sha256"] == Split.objects.get(name="train").sha256


def test_import_from_a_folder_round_trips(published, capsys):
    train_sha = Split.objects.get(name="train").sha256
    Benchmark.objects.all().delete()
    call_command("import_benchmark", "--path", str(published), verbosity=0)
    benchmark = Benchmark.objects.get(slug="toy")
    assert (benchmark.version, benchmark.license, benchmark.homepage) == ("2", "CC0", "https://example.org/toy")
    assert list(benchmark.scenarios.values_list("slug", flat=True)) == ["plain", "shouted"]
    # The test split was published without references: nothing to score against, so it is not imported.
    assert list(benchmark.splits.values_list("name", "sha256")) == [("train", train_sha)]
    assert "test: skipped" in capsys.readouterr().out
    assert TaskInstance.objects.get(key="t5").scenario == "shouted"


def test_import_onto_the_source_keeps_the_hidden_split(published):
    call_command("import_benchmark", "--path", str(published), verbosity=0)
    assert Split.objects.get(name="test").labels_hidden and TaskInstance.objects.filter(split__name="test").count() == 6


@pytest.mark.parametrize(
    "row, message",
    [
        ("not json", "data/train.jsonl, row 3: not valid JSON"),
        ('{"key": "x", "scenario": "", "input": [], "reference": {}}', "data/train.jsonl, row 3, field 'input': must be a JSON object"),
        ('{"key": "x", "scenario": "loud", "input": {}, "reference": {}}', "data/train.jsonl, row 3, field 'scenario': must be empty or one of plain, shouted"),
        ('{"key": "t0", "scenario": "", "input": {}, "reference": {}}', "data/train.jsonl, row 3, field 'key': duplicate key 't0'"),
        ('{"key": "x", "scenario": "", "input": {}}', "data/train.jsonl, row 3, field 'reference': missing"),
    ],
)
def test_malformed_row_is_named_and_nothing_is_imported(published, row, message):
    Benchmark.objects.all().delete()
    path = published / "data" / "train.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = row
    path.write_text("\n".join(lines) + "\n")
    manifest = json.loads((published / "manifest.json").read_text())
    # Re-hash so that the row check, not the integrity check, is what fails.
    next(s for s in manifest["splits"] if s["name"] == "train")["files"]["jsonl"]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (published / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as info:
        read_folder(published)
    assert str(info.value).startswith(message)
    with pytest.raises(CommandError, match="nothing imported"):
        call_command("import_benchmark", "--path", str(published), verbosity=0)
    assert not Benchmark.objects.exists() and not TaskInstance.objects.exists()


def test_tampered_file_fails_the_integrity_check(published):
    path = published / "data" / "train.jsonl"
    path.write_text(path.read_text().replace('"a":1', '"a":2'))
    with pytest.raises(DatasetError, match=r"data/train.jsonl: sha256 .* does not match the manifest"):
        read_folder(published)


def test_unknown_benchmark_and_missing_manifest(canary_benchmark, tmp_path):
    with pytest.raises(CommandError, match="no benchmark 'nope' \\(known: toy\\)"):
        call_command("publish_benchmark", "nope", "--repo-id", "org/x", "--dry-run", "--local-dir", str(tmp_path), verbosity=0)
    with pytest.raises(CommandError, match="manifest.json: no manifest.json"):
        call_command("import_benchmark", "--path", str(tmp_path), verbosity=0)


def test_publish_to_the_hub_and_import_back(canary_benchmark, hub, tmp_path, monkeypatch, capsys):
    """upload_folder and snapshot_download run for real, against a local stand-in for the Hub."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    call_command("publish_benchmark", "toy", "--repo-id", "org/toy", "--endpoint", hub.endpoint, "--token", "hf_test", verbosity=0)
    assert "Published toy v2: " + hub.endpoint + "/datasets/org/toy/commit/" in capsys.readouterr().out
    assert sorted(hub.repos["datasets/org/toy"]) == ["README.md", "data/test.jsonl", "data/train.jsonl", "manifest.json"]
    assert all(HIDDEN.encode() not in data for data in hub.repos["datasets/org/toy"].values())
    assert set(hub.tokens) == {"Bearer hf_test"}

    # Publishing again reuses the repo (create_repo with exist_ok).
    call_command("publish_benchmark", "toy", "--repo-id", "org/toy", "--endpoint", hub.endpoint, "--token", "hf_test", verbosity=0)
    assert hub.requests.count(("POST", "/api/repos/create")) == 2

    Benchmark.objects.all().delete()
    call_command("import_benchmark", "--repo-id", "org/toy", "--endpoint", hub.endpoint, verbosity=0)
    assert list(Split.objects.values_list("name", flat=True)) == ["train"]
    assert ("GET", "/api/datasets/org/toy/revision/main") in hub.requests
    assert any((tmp_path / "hf" / "hub").glob("datasets--org--toy/snapshots/*/manifest.json"))  # in the HF cache


def test_hub_errors_are_reported(canary_benchmark, hub, tmp_path, monkeypatch):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CommandError, match="cannot read org/missing"):
        call_command("import_benchmark", "--repo-id", "org/missing", "--endpoint", hub.endpoint, verbosity=0)
    with pytest.raises(CommandError, match="pushing to org/toy failed"):  # nothing listens on port 9
        call_command("publish_benchmark", "toy", "--repo-id", "org/toy", "--endpoint", "http://127.0.0.1:9", verbosity=0)
