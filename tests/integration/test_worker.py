"""End to end through real processes: Django → Redis → a `celery worker` process → an HTTP endpoint →
PostgreSQL, including a worker killed with SIGKILL in the middle of a run."""

from __future__ import annotations

import pytest
from django.db import transaction

from datasets.registry import load_bundled
from leaderboard.baselines import register
from leaderboard.importing import import_benchmark
from leaderboard.models import InstanceResult, Score, Submission
from leaderboard.submissions import create_submission
from worker import lifecycle
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration]


def load(slug: str):
    return import_benchmark(load_bundled(slug))


def submit(model, benchmark, **options) -> Submission:
    with transaction.atomic():  # enqueued on commit, as the web request does it
        return create_submission(model=model, benchmark=benchmark, **options)


def status_of(submission: Submission) -> Submission:
    submission.refresh_from_db()
    return submission


def finished(submission: Submission) -> bool:
    return status_of(submission).status in (Submission.Status.FINISHED, Submission.Status.FAILED, Submission.Status.CANCELLED)


def test_worker_evaluates_a_submission_and_scores_land_in_postgres(celery_worker_factory, baseline_endpoint):
    benchmark = load("opera")
    celery_worker_factory("w1")
    model = register(baseline_endpoint.base_url, "opera-majority", "majority baseline")
    submission = submit(model, benchmark, max_instances=60, concurrency=4)
    assert submission.status == Submission.Status.QUEUED
    wait_for(lambda: finished(submission), 240, "the submission to finish")
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    total = 60 * len(submission.scenarios)
    assert submission.progress_done == submission.progress_total == total
    assert InstanceResult.objects.filter(submission=submission).count() == total
    headline = Score.objects.get(submission=submission, scenario="full", metric=benchmark.main_metric)
    assert 0.0 <= headline.value <= 1.0 and headline.n == 60
    assert Score.objects.filter(submission=submission, scenario="overall").exists()
    assert submission.worker and submission.started_at <= submission.finished_at


def test_tool_use_submission_runs_closed_loop_through_the_worker(celery_worker_factory, baseline_endpoint):
    benchmark = load("trajectory2task")
    celery_worker_factory("w1")
    model = register(baseline_endpoint.base_url, "t2t-reference-agent", "reference agent")
    submission = submit(model, benchmark, max_instances=3, trials=2, concurrency=4)
    wait_for(lambda: finished(submission), 240, "the submission to finish")
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    assert InstanceResult.objects.filter(submission=submission).count() == 3 * 4 * 2
    assert Score.objects.filter(submission=submission, scenario="standard", metric="pass_1").get().value > 0
    transcript = InstanceResult.objects.filter(submission=submission).first().transcript
    assert any(turn.get("role") == "tool" for turn in transcript)


def test_unreachable_endpoint_fails_with_a_clear_message(celery_worker_factory):
    benchmark = load("opera")
    celery_worker_factory("w1")
    model = register("http://127.0.0.1:9/v1", "opera-majority", "nothing listens here")
    submission = submit(model, benchmark, max_instances=5)
    wait_for(lambda: finished(submission), 120, "the submission to fail")
    assert submission.status == Submission.Status.FAILED
    assert submission.error_code == "endpoint_unreachable"
    assert submission.error_message.startswith("Endpoint check failed: cannot connect to http://127.0.0.1:9/v1")


def test_sigkill_mid_run_loses_nothing_and_duplicates_nothing(celery_worker_factory, baseline_endpoint):
    benchmark = load("opera")
    baseline_endpoint.latency = 0.05  # slow enough to kill the worker in the middle
    try:
        worker = celery_worker_factory("victim")
        model = register(baseline_endpoint.base_url, "opera-retrieval", "retrieval baseline")
        submission = submit(model, benchmark, max_instances=80, concurrency=2)
        wait_for(lambda: status_of(submission).progress_done >= 40, 180, "some progress before the kill")
        worker.kill()
        done_before = dict(InstanceResult.objects.filter(submission=submission).values_list("id", "created_at"))
        assert 40 <= len(done_before) < submission.progress_total

        # The reaper notices the stopped heartbeat and resumes it by itself; a new worker picks it up.
        celery_worker_factory("rescuer")
        reaped = wait_for(lambda: lifecycle.reap(heartbeat_timeout=3).resumed, 120, "the reaper to resume it")
        assert reaped == [submission.id]
        assert status_of(submission).auto_resumes == 1
        wait_for(lambda: finished(submission), 300, "the resumed submission to finish")
    finally:
        baseline_endpoint.latency = 0.0
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    results = InstanceResult.objects.filter(submission=submission)
    assert results.count() == submission.progress_total == submission.progress_done
    kept = dict(results.filter(id__in=done_before).values_list("id", "created_at"))
    assert kept == done_before  # every result finished before the kill survived, untouched
    keys = list(results.values_list("instance_id", "scenario", "trial"))
    assert len(keys) == len(set(keys))
