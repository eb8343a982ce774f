"""Fine-tuning export of tool-use rollouts stored by a real evaluation, through the command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from datasets.registry import load_bundled
from evaluation.baselines.server import PolicyServer
from evaluation.baselines.tool_use import NaiveAgentPolicy
from evaluation.tau2.sft import validate_line
from leaderboard.submissions import create_submission
from worker import lifecycle
from leaderboard.importing import import_benchmark
from leaderboard.models import InstanceResult, ModelEntry


@pytest.fixture
def evaluated(db):
    benchmark = import_benchmark(load_bundled("trajectory2task"))
    server = PolicyServer(NaiveAgentPolicy()).start_background()
    try:
        model = ModelEntry.objects.create(name="naive", base_url=server.base_url, model_id="t2t-naive-agent")
        submission = create_submission(model=model, benchmark=benchmark, max_instances=4, trials=1, enqueue=False)
        lifecycle.run_submission(submission.id, lifecycle.run_inline())
    finally:
        server.stop()
    return submission


def test_every_exported_line_is_valid_and_only_successes_are_exported(evaluated, tmp_path):
    out = tmp_path / "sft.jsonl"
    call_command("export_sft", "--benchmark", "trajectory2task", "--output", str(out))
    lines = out.read_text().splitlines()
    successes = InstanceResult.objects.filter(submission=evaluated, correct=True).count()
    assert 0 < len(lines) <= successes
    for line in lines:
        example = validate_line(line)
        assert example["messages"][0]["role"] == "system" and example["tools"]
        assert any(m.get("tool_calls") for m in example["messages"] if m["role"] == "assistant")


def test_scenario_and_submission_filters(evaluated, tmp_path):
    out = tmp_path / "standard.jsonl"
    call_command("export_sft", "--scenario", "standard", "--submission", str(evaluated.id), "--output", str(out))
    standard = out.read_text().splitlines()
    assert len(standard) == InstanceResult.objects.filter(submission=evaluated, scenario="standard", correct=True).count()
    call_command("export_sft", "--scenario", "infeasible", "--output", str(out))
    assert out.read_text() == ""  # the naive agent never refuses, so it solves no infeasible task


@pytest.mark.django_db
def test_bad_arguments_are_explained():
    with pytest.raises(CommandError, match="no tool-use benchmark 'opera'"):
        call_command("export_sft", "--benchmark", "opera")
