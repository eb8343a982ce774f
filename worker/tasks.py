"""Celery tasks: thin wrappers around ``leaderboard.jobs``; every task is idempotent."""

from __future__ import annotations

import logging

from celery import group, shared_task
from django.conf import settings

from leaderboard import jobs
from leaderboard.models import Submission

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def start_submission(submission_id: int) -> str:
    """Claim a queued submission, check its endpoint, and fan its pending work out as batch tasks."""
    if not jobs.claim(submission_id):
        return "not queued (claimed elsewhere, cancelled or finished)"
    submission = Submission.objects.select_related("model", "benchmark").get(id=submission_id)
    try:
        jobs.preflight(submission)
    except jobs.SubmissionError as err:
        jobs.fail(submission_id, err.code, err.message)
        return f"failed: {err.message}"
    pending = jobs.pending_work(submission)
    if not pending:
        jobs.finalize(submission_id)
        return "nothing pending; scored"
    parts = jobs.batches(pending, settings.ACTBOARD_BATCH_SIZE)
    group(run_batch.s(submission_id, part) for part in parts).apply_async()
    return f"dispatched {len(pending)} items in {len(parts)} batches"


@shared_task(acks_late=True)
def run_batch(submission_id: int, keys: list[list]) -> str:
    stored = jobs.run_batch(submission_id, [tuple(k) for k in keys])
    jobs.finalize(submission_id)
    return f"stored {stored} results"


@shared_task
def reap_stuck_submissions() -> list[int]:
    reaped = jobs.reap_stuck()
    if reaped:
        log.warning("failed stuck submissions %s", reaped)
    return reaped
