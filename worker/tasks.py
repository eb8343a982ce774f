"""Celery tasks: thin callers of ``worker.lifecycle``; every task is idempotent."""

from __future__ import annotations

import logging

from celery import group, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from leaderboard.models import Submission
from worker import lifecycle
from worker.scoring import evaluator_for, finalize

log = logging.getLogger(__name__)

# The start task only plans and sends messages; a probe of the endpoint is its slowest part.
START_SOFT_LIMIT, START_HARD_LIMIT = 120, 180


def fan_out(submission: Submission, parts: list[list[lifecycle.WorkKey]]) -> None:
    """Dispatch the batches as a Celery group, each with time limits sized from its own work."""
    evaluator = evaluator_for(submission)
    signatures = []
    for part in parts:
        soft, hard = lifecycle.batch_time_limits(submission, evaluator, len(part))
        signatures.append(run_batch.signature((submission.id, part), soft_time_limit=soft, time_limit=hard))
    group(signatures).apply_async()


@shared_task(acks_late=True, soft_time_limit=START_SOFT_LIMIT, time_limit=START_HARD_LIMIT)
def start_submission(submission_id: int) -> str:
    """Claim a queued submission, check its endpoint, and fan its pending work out as batch tasks."""
    return lifecycle.run_submission(submission_id, fan_out)


@shared_task(acks_late=True)
def run_batch(submission_id: int, keys: list[list]) -> str:
    try:
        stored = lifecycle.run_batch(submission_id, [tuple(k) for k in keys])  # type: ignore[misc]
    except SoftTimeLimitExceeded:
        # What finished is stored; the rest runs again when the reaper resumes the quiet submission.
        log.warning("batch of submission %s hit its time limit", submission_id)
        return "time limit: stopped"
    finalize(submission_id)
    return f"stored {stored} results"


@shared_task(soft_time_limit=START_SOFT_LIMIT, time_limit=START_HARD_LIMIT)
def reap_stuck_submissions() -> dict[str, list[int]]:
    reaped = lifecycle.reap()
    if reaped:
        log.warning("reaper: %s", reaped)
    return {"redispatched": reaped.redispatched, "resumed": reaped.resumed, "failed": reaped.failed}
