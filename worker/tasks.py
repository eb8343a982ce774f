"""Celery tasks: thin callers of ``worker.lifecycle``; every task is idempotent."""

from __future__ import annotations

import logging

from celery import chain, group, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from leaderboard.models import Submission
from worker import lifecycle
from worker.scoring import evaluator_for, finalize

log = logging.getLogger(__name__)

# The start task only plans and sends messages; a probe of the endpoint is its slowest part.
START_SOFT_LIMIT, START_HARD_LIMIT = 120, 180


def lane_chains(submission: Submission, lanes: list[lifecycle.Lane]) -> group:
    """A Celery group of one chain per lane: the lanes run side by side, a lane's batches one after another,
    so at most the submission's concurrency is in flight whatever the workers' process count. Each batch
    has time limits sized from its own work at its lane's concurrency."""
    evaluator = evaluator_for(submission)
    chains = []
    for lane in lanes:
        steps = []
        for part in lane.batches:
            soft, hard = lifecycle.batch_time_limits(evaluator, len(part), lane.concurrency)
            # Immutable: a batch takes its keys, not the result of the batch before it.
            steps.append(run_batch.si(submission.id, part, lane.concurrency, lifecycle.run_of(submission))
                         .set(soft_time_limit=soft, time_limit=hard))
        chains.append(chain(steps))
    return group(chains)


def fan_out(submission: Submission, keys: list[lifecycle.WorkKey]) -> list[lifecycle.Lane]:
    """Plan the pending work into lanes and send them."""
    lanes = lifecycle.plan_lanes(keys, submission.concurrency, batch_size=settings.ACTBOARD_BATCH_SIZE,
                                 max_lanes=settings.ACTBOARD_WORKER_LANES)
    lane_chains(submission, lanes).apply_async()
    return lanes


@shared_task(acks_late=True, soft_time_limit=START_SOFT_LIMIT, time_limit=START_HARD_LIMIT)
def start_submission(submission_id: int) -> str:
    """Claim a queued submission, check its endpoint, and fan its pending work out as batch tasks."""
    return lifecycle.run_submission(submission_id, fan_out)


@shared_task(acks_late=True)
def run_batch(submission_id: int, keys: list[list], concurrency: int | None = None, run: str | None = None) -> str:
    """Run one batch of a lane, then score the submission if its work is all done.

    It never raises: a chain drops the rest of its lane after a task that fails, so a batch that hits its
    soft time limit, or meets an unexpected error, logs it and returns, and the lane goes on. What it left
    undone, and the rest of a lane cut by a hard time limit, runs again when the reaper resumes the quiet
    submission. A batch whose worker was killed is delivered again with the rest of its chain.
    """
    try:
        stored = lifecycle.run_batch(submission_id, [tuple(k) for k in keys], concurrency=concurrency, run=run)  # type: ignore[misc]
    except SoftTimeLimitExceeded:
        log.warning("batch of submission %s hit its time limit", submission_id)
        return "time limit: stopped"
    except Exception:
        log.exception("batch of submission %s failed", submission_id)
        return "error: stopped"
    finalize(submission_id)
    return f"stored {stored} results"


@shared_task(soft_time_limit=START_SOFT_LIMIT, time_limit=START_HARD_LIMIT)
def reap_stuck_submissions() -> dict[str, list[int]]:
    reaped = lifecycle.reap()
    if reaped:
        log.warning("reaper: %s", reaped)
    return {"redispatched": reaped.redispatched, "resumed": reaped.resumed, "failed": reaped.failed}
