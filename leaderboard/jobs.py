"""Submission lifecycle on top of the evaluation engine: claim, fan out, persist, score.

The Celery tasks in ``worker.tasks`` and the ``evaluate`` command are thin callers of these functions.
Every step is idempotent: results are unique per (submission, instance, scenario, trial), so a batch
that runs twice, or a submission resumed after a crash, neither loses nor duplicates a result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from evaluation.base import Evaluator, Instance, Outcome, ResultRow
from evaluation.client import EndpointClient, EndpointConfig
from evaluation.registry import get_evaluator_class
from evaluation.runner import WorkItem, run_items
from leaderboard import crypto
from leaderboard.endpoints import EndpointRejected, probe
from leaderboard.models import Benchmark, InstanceResult, ModelEntry, Score, Split, Submission, TaskInstance

log = logging.getLogger(__name__)

# After this many endpoint faults in a row a batch stops and the submission fails with the fault's
# message, instead of retrying every remaining instance against a dead endpoint.
MAX_CONSECUTIVE_ENDPOINT_ERRORS = 20
OVERALL = "overall"

WorkKey = tuple[int, str, int]  # (instance id, scenario, trial): JSON-friendly for Celery


class SubmissionError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- creating ---------------------------------------------------------------------------------------


SECRET_KEYS = frozenset({"api_key"})


def seal(value: Any) -> Any:
    """Encrypt every ``api_key`` in a config (e.g. an LLM user simulator's endpoint) before it is stored."""
    if isinstance(value, dict):
        return {(f"{k}_encrypted" if k in SECRET_KEYS else k): (crypto.encrypt(v) if k in SECRET_KEYS else seal(v)) for k, v in value.items()}
    return value


def unseal(value: Any) -> Any:
    if isinstance(value, dict):
        return {(k.removesuffix("_encrypted") if k.removesuffix("_encrypted") in SECRET_KEYS else k):
                (crypto.decrypt(v) if k.removesuffix("_encrypted") in SECRET_KEYS else unseal(v)) for k, v in value.items()}
    return value


def evaluator_for(submission: Submission) -> Evaluator:
    return get_evaluator_class(submission.benchmark.kind)(unseal(submission.config.get("evaluator_config", {})))


def client_for(model: ModelEntry, timeout: float | None = None) -> EndpointClient:
    return EndpointClient(
        EndpointConfig(
            base_url=model.base_url,
            model=model.model_id,
            api_key=model.api_key,
            timeout=timeout or settings.ACTBOARD_ENDPOINT_TIMEOUT,
            params=dict(model.generation_params or {}),
        )
    )


def scenario_slugs(benchmark: Benchmark, requested: list[str] | None) -> list[str]:
    known = list(benchmark.scenarios.values_list("slug", flat=True))
    if not requested:
        return known
    unknown = [s for s in requested if s not in known]
    if unknown:
        raise SubmissionError("bad_scenario", f"unknown scenario(s) {', '.join(unknown)} for {benchmark.slug} (known: {', '.join(known)})")
    return [s for s in known if s in requested]


def canonical_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    """Everything that determines a submission's result (the model need not be saved yet)."""
    evaluator_cls = get_evaluator_class(benchmark.kind)
    evaluator = evaluator_cls(evaluator_config or {})
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
    }


def config_hash(config: dict[str, Any], base_url: str) -> str:
    """Equal hashes mean the same run: same endpoint, model, params, prompt and dataset version."""
    return canonical_hash({**config, "base_url": base_url})


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
    """Create a queued submission with its config snapshot; enqueue it once the transaction commits."""
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
        owner=owner,
        is_public=is_public,
        is_baseline=model.is_baseline,
    )
    submission.progress_total = count_work(submission)
    submission.save()
    if enqueue:
        from worker.tasks import start_submission  # the worker app imports this module

        start_submission.delay_on_commit(submission.pk)
    return submission


# --- planning ---------------------------------------------------------------------------------------


def _instance_ids(submission: Submission, scenario: str) -> list[int]:
    qs = TaskInstance.objects.filter(split_id=submission.split_id, scenario__in=("", scenario)).order_by("id")
    ids = qs.values_list("id", flat=True)
    return list(ids[: submission.max_instances] if submission.max_instances else ids)


def all_work(submission: Submission) -> Iterator[WorkKey]:
    for scenario in submission.scenarios:
        for instance_id in _instance_ids(submission, scenario):
            for trial in range(submission.trials):
                yield (instance_id, scenario, trial)


def count_work(submission: Submission) -> int:
    return sum(len(_instance_ids(submission, s)) for s in submission.scenarios) * submission.trials


def pending_work(submission: Submission) -> list[WorkKey]:
    done = set(InstanceResult.objects.filter(submission=submission).values_list("instance_id", "scenario", "trial"))
    return [key for key in all_work(submission) if key not in done]


def batches(keys: list[WorkKey], size: int) -> list[list[WorkKey]]:
    return [keys[i : i + size] for i in range(0, len(keys), size)]


# --- claiming ---------------------------------------------------------------------------------------


def claim(submission_id: int) -> bool:
    """Move a queued submission to running. Only one caller can win; 0 rows means someone else has it."""
    now = timezone.now()
    return bool(
        Submission.objects.filter(id=submission_id, status=Submission.Status.QUEUED).update(
            status=Submission.Status.RUNNING, started_at=now, heartbeat_at=now, worker=socket.gethostname()[:200],
            error_code="", error_message="", scoring_started_at=None, finished_at=None,
        )
    )


def fail(submission_id: int, code: str, message: str, *, only_if_running: bool = True) -> bool:
    qs = Submission.objects.filter(id=submission_id)
    if only_if_running:
        qs = qs.filter(status=Submission.Status.RUNNING)
    return bool(qs.update(status=Submission.Status.FAILED, error_code=code, error_message=message[:2000], finished_at=timezone.now()))


def preflight(submission: Submission) -> None:
    """Fail fast, with a clear message, when the endpoint cannot serve the submission at all.

    The URL rules are checked again here, not only at submission: a name may resolve elsewhere now.
    """
    model = submission.model
    try:
        probe(model.base_url, model.model_id, model.api_key, timeout=30)
    except EndpointRejected as err:
        raise SubmissionError(err.code, f"Endpoint check failed: {err.message}") from None


def requeue(submission: Submission) -> bool:
    """Resume a failed, cancelled or finished submission (a stuck one is failed by the reaper first).

    Finished results are kept; instances that ended in an endpoint error are evaluated again (an outage
    is not a verdict on the model), and everything not yet done runs.
    """
    with transaction.atomic():
        # Never an active one: a running submission's batches are still out, a second dispatch would race them.
        updated = Submission.objects.filter(id=submission.id).exclude(status__in=Submission.ACTIVE).update(
            status=Submission.Status.QUEUED, error_code="", error_message="", finished_at=None, scoring_started_at=None
        )
        if not updated:
            return False
        InstanceResult.objects.filter(submission=submission).exclude(error_code="").delete()
        Submission.objects.filter(id=submission.id).update(
            progress_done=InstanceResult.objects.filter(submission=submission).count(), error_count=0
        )
        Benchmark.touch_boards([submission.benchmark_id])  # a finished run leaves the board until it finishes again
        from worker.tasks import start_submission

        start_submission.delay_on_commit(submission.pk)
    return True


def cancel(submission: Submission) -> bool:
    return bool(
        Submission.objects.filter(id=submission.id, status__in=Submission.ACTIVE).update(
            status=Submission.Status.CANCELLED, finished_at=timezone.now(), error_code="cancelled", error_message="Cancelled by the user."
        )
    )


# --- running ----------------------------------------------------------------------------------------


def _as_instance(row: TaskInstance) -> Instance:
    return Instance(id=row.id, key=row.key, input=row.input, reference=row.reference, scenario=row.scenario)


def headline_value(evaluator: Evaluator, outcome: Outcome) -> bool:
    metric = evaluator.headline_metric().name
    per_instance = outcome.metrics.get(metric, outcome.metrics.get("success", outcome.metrics.get("exact_match", 0)))
    return not outcome.error_code and bool(per_instance)


def persist(submission_id: int, evaluator: Evaluator, item: WorkItem, outcome: Outcome) -> bool:
    """Store one outcome and count it, in one transaction; False if it was already stored (a re-delivered batch)."""
    try:
        with transaction.atomic():
            InstanceResult.objects.create(
                submission_id=submission_id,
                instance_id=item.instance.id,
                scenario=item.scenario,
                trial=item.trial,
                prediction=outcome.prediction,
                transcript=outcome.transcript,
                metrics=outcome.metrics,
                correct=headline_value(evaluator, outcome),
                prompt_tokens=outcome.prompt_tokens,
                completion_tokens=outcome.completion_tokens,
                latency_ms=outcome.latency_ms,
                error_code=outcome.error_code,
                error_message=outcome.error[:2000],
            )
            Submission.objects.filter(id=submission_id).update(
                progress_done=F("progress_done") + 1,
                error_count=F("error_count") + (1 if outcome.error_code else 0),
                heartbeat_at=timezone.now(),
            )
    except IntegrityError:
        return False
    return True


def run_batch(
    submission_id: int,
    keys: list[WorkKey],
    *,
    on_progress: Callable[[], None] = lambda: None,
) -> int:
    """Evaluate one batch of work keys; skip keys already done; return how many new results were stored."""
    submission = Submission.objects.select_related("model", "benchmark").get(id=submission_id)
    if submission.status != Submission.Status.RUNNING:
        return 0
    done = set(
        InstanceResult.objects.filter(submission_id=submission_id, instance_id__in={k[0] for k in keys}).values_list("instance_id", "scenario", "trial")
    )
    keys = [tuple(k) for k in keys if tuple(k) not in done]  # type: ignore[misc]
    if not keys:
        return 0
    instances = {row.id: _as_instance(row) for row in TaskInstance.objects.filter(id__in={k[0] for k in keys})}
    items = [WorkItem(instances[i], scenario, trial) for i, scenario, trial in keys if i in instances]
    evaluator = evaluator_for(submission)
    consecutive_errors = 0
    stored = 0
    last_status_check = timezone.now()
    stopped = False

    def should_stop() -> bool:
        nonlocal last_status_check, stopped
        if stopped:
            return True
        now = timezone.now()
        if now - last_status_check > timedelta(seconds=2):  # cancellation, without a query per instance
            last_status_check = now
            stopped = not Submission.objects.filter(id=submission_id, status=Submission.Status.RUNNING).exists()
        return stopped

    def on_outcome(item: WorkItem, outcome: Outcome) -> None:
        nonlocal stored, stopped, consecutive_errors
        if outcome.error_code and outcome.error_code != "internal":
            consecutive_errors += 1
            if consecutive_errors >= MAX_CONSECUTIVE_ENDPOINT_ERRORS and not stopped:
                stopped = True
                fail(
                    submission_id,
                    "endpoint_" + outcome.error_code,
                    f"Stopped after {consecutive_errors} endpoint errors in a row: {outcome.error}. "
                    "Finished results are kept; re-run the submission to resume.",
                )
        else:
            consecutive_errors = 0
        if stopped and outcome.error_code:
            return  # not a verdict on the model: the endpoint was down; these items re-run on resume
        if persist(submission_id, evaluator, item, outcome):
            stored += 1
        on_progress()

    with client_for(submission.model) as client:
        run_items(evaluator, client, items, concurrency=submission.concurrency, on_outcome=on_outcome, should_stop=should_stop)
    return stored


# --- scoring ----------------------------------------------------------------------------------------


def all_done(submission_id: int) -> bool:
    submission = Submission.objects.get(id=submission_id)
    return InstanceResult.objects.filter(submission_id=submission_id).count() >= submission.progress_total


def claim_scoring(submission_id: int) -> bool:
    return bool(
        Submission.objects.filter(id=submission_id, status=Submission.Status.RUNNING, scoring_started_at__isnull=True).update(
            scoring_started_at=timezone.now()
        )
    )


def _result_rows(submission: Submission, scenario: str) -> list[ResultRow]:
    rows = (
        InstanceResult.objects.filter(submission=submission, scenario=scenario)
        .select_related("instance")
        .only("trial", "prediction", "metrics", "error_code", "instance__id", "instance__key", "instance__input",
              "instance__reference", "instance__scenario")
        .order_by("instance_id", "trial")
    )
    return [ResultRow(instance=_as_instance(r.instance), trial=r.trial, prediction=r.prediction, metrics=r.metrics, error_code=r.error_code) for r in rows.iterator(chunk_size=2000)]


def score_submission(submission: Submission) -> None:
    """Compute and store every score of a submission (replacing earlier ones) and its usage summary."""
    evaluator = evaluator_for(submission)
    scores = []
    for scenario in submission.scenarios:
        scores.extend(evaluator.score(scenario, _result_rows(submission, scenario)))
    scores.extend(overall_scores(evaluator, [s for s in scores if s.scenario in submission.scenarios]))
    latencies = np.fromiter(
        InstanceResult.objects.filter(submission=submission, error_code="").values_list("latency_ms", flat=True), dtype=float
    )
    tokens = InstanceResult.objects.filter(submission=submission).values_list("prompt_tokens", "completion_tokens")
    prompt_tokens = sum(p for p, _ in tokens)
    completion_tokens = sum(c for _, c in tokens)
    with transaction.atomic():
        Score.objects.filter(submission=submission).delete()
        Score.objects.bulk_create(
            Score(submission=submission, scenario=s.scenario, metric=s.metric, value=s.value, ci_low=s.ci_low, ci_high=s.ci_high, n=s.n)
            for s in scores
        )
        Submission.objects.filter(id=submission.id).update(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_mean_ms=float(latencies.mean()) if latencies.size else None,
            latency_p95_ms=float(np.percentile(latencies, 95)) if latencies.size else None,
        )


def overall_scores(evaluator: Evaluator, scores: list) -> list:
    """Macro average over scenarios, per metric: every scenario weighs the same on the overall tab."""
    from evaluation.base import ScoreValue

    by_metric: dict[str, list] = {}
    for s in scores:
        by_metric.setdefault(s.metric, []).append(s)
    return [
        ScoreValue(OVERALL, metric, float(np.mean([s.value for s in group])), n=sum(s.n for s in group))
        for metric, group in by_metric.items()
    ]


def error_summary(submission: Submission) -> tuple[str, str]:
    """The most common per-instance error (code, message with counts), for the submission's message."""
    counts = Counter(
        InstanceResult.objects.filter(submission=submission).exclude(error_code="").values_list("error_code", flat=True)
    )
    if not counts:
        return "", ""
    code, _ = counts.most_common(1)[0]
    example = InstanceResult.objects.filter(submission=submission, error_code=code).values_list("error_message", flat=True).first()
    breakdown = ", ".join(f"{c} ×{n}" for c, n in counts.most_common())
    return code, f"{breakdown}. Example: {example}"


def finalize(submission_id: int) -> bool:
    """Score a submission whose work is all done and mark it finished (or failed if nothing succeeded)."""
    if not all_done(submission_id) or not claim_scoring(submission_id):
        return False
    submission = Submission.objects.select_related("benchmark", "model").get(id=submission_id)
    try:
        score_submission(submission)
    except Exception as exc:
        log.exception("scoring submission %s failed", submission_id)
        fail(submission_id, "scoring_failed", f"Scoring failed: {exc!r}")
        return True
    code, summary = error_summary(submission)
    errors = InstanceResult.objects.filter(submission=submission).exclude(error_code="").count()
    total = submission.progress_total
    if total and errors == total:
        fail(submission_id, code, f"All {total} evaluations failed: {summary}")
    else:
        note = f"{errors} of {total} evaluations failed and count as wrong: {summary}" if errors else ""
        Submission.objects.filter(id=submission_id, status=Submission.Status.RUNNING).update(
            status=Submission.Status.FINISHED, finished_at=timezone.now(), error_code=code, error_message=note
        )
        Benchmark.touch_boards([submission.benchmark_id])
    return True


def reap_stuck(timeout_seconds: int | None = None) -> list[int]:
    """Fail running submissions whose heartbeat stopped (a worker died); they can be re-run to resume."""
    timeout = settings.ACTBOARD_HEARTBEAT_TIMEOUT if timeout_seconds is None else timeout_seconds
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stuck = list(Submission.objects.filter(status=Submission.Status.RUNNING, heartbeat_at__lt=cutoff).values_list("id", flat=True))
    return [
        sid for sid in stuck
        if fail(sid, "heartbeat_lost", f"No progress for {timeout} s: the worker running it stopped. Finished results are kept; re-run to resume.")
    ]
