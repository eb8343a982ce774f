"""Creating submissions: the config snapshot, its hash, and the hand-over to the worker.

The leaderboard app creates submissions and reads their results; it never runs them. The hand-over is a
Celery message sent by task name once the creating transaction commits, so this module does not import
the worker. A message that cannot be sent (broker down) leaves the submission queued with a clear note,
and the worker's reaper dispatches it again (``worker.lifecycle.reap``): nothing is stranded.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from evaluation.base import OVERALL
from evaluation.canonical import canonical_hash
from evaluation.errors import CodedError
from evaluation.registry import get_evaluator_class
from leaderboard.crypto import seal
from leaderboard.models import Benchmark, ModelEntry, Split, Submission

log = logging.getLogger(__name__)

START_TASK = "worker.tasks.start_submission"

__all__ = ["OVERALL", "config_snapshot", "config_hash", "create_submission", "dispatch", "rerun", "scenario_slugs"]


def scenario_slugs(benchmark: Benchmark, requested: list[str] | None) -> list[str]:
    known = list(benchmark.scenarios.values_list("slug", flat=True))
    if not requested:
        return known
    unknown = [s for s in requested if s not in known]
    if unknown:
        raise CodedError("bad_scenario", f"unknown scenario(s) {', '.join(unknown)} for {benchmark.slug} (known: {', '.join(known)})")
    return [s for s in known if s in requested]


def config_snapshot(
    model: ModelEntry,
    benchmark: Benchmark,
    split: Split,
    *,
    scenarios: list[str] | None = None,
    trials: int | None = None,
    max_instances: int | None = None,
    evaluator_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that determines a submission's result (the model need not be saved yet).

    A family that needs a user simulator gets the benchmark's (set by its maintainers), whatever the caller
    passes for it; without one it raises ``CodedError("no_simulator")``.
    """
    evaluator_cls = get_evaluator_class(benchmark.kind)
    evaluator_config = dict(evaluator_config or {})
    if evaluator_cls.needs_simulator:
        if missing := benchmark.missing_simulator_message:
            raise CodedError("no_simulator", missing)
        evaluator_config.pop("judge", None)  # a benchmark without a judge has none, not the caller's
        evaluator_config.update(benchmark.simulator_config())
    evaluator = evaluator_cls(evaluator_config)
    simulator = {"simulator": benchmark.simulator_shown, "simulator_epoch": benchmark.simulator_epoch} if evaluator_cls.needs_simulator else {}
    return {
        "endpoint_host": model.base_url.split("//", 1)[-1].split("/", 1)[0],
        "model_id": model.model_id,
        "generation_params": model.generation_params or {},
        "prompt_version": evaluator.prompt_version,
        "evaluator": evaluator.snapshot(),
        "evaluator_config": seal(evaluator.config),  # what the worker rebuilds the evaluator from
        "dataset": {"benchmark": benchmark.slug, "benchmark_version": benchmark.version, "split": split.name,
                    "split_version": split.version, "sha256": split.sha256},
        "scenarios": scenario_slugs(benchmark, scenarios),
        "trials": trials or evaluator_cls.default_trials,
        "max_instances": max_instances,
        **simulator,
    }


def config_hash(config: dict[str, Any], base_url: str) -> str:
    """Equal hashes mean the same run: same endpoint, model, params, prompt and dataset version."""
    shown = {k: v for k, v in config.items() if k != "evaluator_config"}  # sealed secrets differ on every encryption
    return canonical_hash({**shown, "base_url": base_url})


def create_submission(
    *,
    model: ModelEntry,
    benchmark: Benchmark,
    split: Split | None = None,
    scenarios: list[str] | None = None,
    trials: int | None = None,
    concurrency: int = 4,
    max_instances: int | None = None,
    evaluator_config: dict[str, Any] | None = None,
    owner=None,
    is_public: bool = True,
    enqueue: bool = True,
) -> Submission:
    """Create a queued submission with its config snapshot; dispatch it once the transaction commits."""
    split = split or benchmark.splits.get(name="test")
    config = config_snapshot(
        model, benchmark, split, scenarios=scenarios, trials=trials, max_instances=max_instances, evaluator_config=evaluator_config
    )
    submission = Submission(
        model=model,
        benchmark=benchmark,
        split=split,
        scenarios=config["scenarios"],
        trials=config["trials"],
        concurrency=max(1, min(concurrency, settings.ACTBOARD_MAX_CONCURRENCY)),
        max_instances=max_instances,
        config=config,
        config_hash=config_hash(config, model.base_url),
        simulator_epoch=config.get("simulator_epoch", ""),
        owner=owner,
        is_public=is_public,
        is_baseline=model.is_baseline,
    )
    submission.progress_total = submission.count_work()
    submission.save()
    if enqueue:
        dispatch_on_commit(submission.pk)
    return submission


def dispatch(submission_id: int) -> bool:
    """Send the start task now; on failure record why and leave the submission queued for the reaper."""
    from config.celery_app import app  # the Celery app, not the worker's code: tasks are named, not imported

    try:
        if app.conf.task_always_eager:  # tests and local debugging: run it here, as ``delay`` would
            app.autodiscover_tasks(["worker"], force=True)  # a web process has not loaded the task modules
            app.tasks[START_TASK].apply(args=[submission_id])
        else:
            app.send_task(START_TASK, args=[submission_id])
    except Exception as exc:  # kombu raises many types for an unreachable broker; each means "try later"
        log.warning("dispatching submission %s failed: %s", submission_id, exc)
        Submission.objects.mark_dispatch_failed(submission_id, "the job queue is unreachable")
        return False
    Submission.objects.mark_dispatched(submission_id)
    return True


def dispatch_on_commit(submission_id: int) -> None:
    transaction.on_commit(lambda: dispatch(submission_id))


def rerun(submission: Submission) -> bool:
    """Queue a stopped submission again (finished results kept) and dispatch it."""
    with transaction.atomic():
        if not submission.requeue():
            return False
        dispatch_on_commit(submission.pk)
    return True
