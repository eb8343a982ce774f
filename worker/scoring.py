"""The last step of a submission: score its stored results and mark it finished (or failed)."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from django.db import transaction

from evaluation.base import OVERALL, SIMULATOR_ERROR, Evaluator, Instance, ResultRow, ScoreValue
from evaluation.registry import get_evaluator_class
from leaderboard.crypto import unseal
from leaderboard.models import Benchmark, InstanceResult, Score, Submission, TaskInstance

log = logging.getLogger(__name__)


def evaluator_for(submission: Submission) -> Evaluator:
    """The submission's benchmark family, configured as its snapshot says (secrets unsealed)."""
    return get_evaluator_class(submission.benchmark.kind)(unseal(submission.config.get("evaluator_config", {})))


def _scored_instances(submission: Submission) -> dict[int, Instance]:
    """The instances of a submission's results with their references, each loaded once for all its scenarios
    and trials. Not their inputs: scoring reads predictions against references, and an input can be a
    100K-character page that would cost seconds to load."""
    ids = InstanceResult.objects.filter(submission=submission).values("instance_id")
    rows = TaskInstance.objects.filter(id__in=ids).values_list("id", "key", "reference", "scenario")
    return {i: Instance(id=i, key=key, input={}, reference=reference, scenario=scenario)
            for i, key, reference, scenario in rows.iterator(chunk_size=2000)}


def _result_rows(submission: Submission, scenario: str, instances: dict[int, Instance]) -> list[ResultRow]:
    """A scenario's results, as plain rows (a model object per result costs more than the scoring)."""
    rows = (
        InstanceResult.objects.filter(submission=submission, scenario=scenario)
        .order_by("instance_id", "trial")
        .values_list("instance_id", "trial", "prediction", "metrics", "error_code")
    )
    return [ResultRow(instance=instances[i], trial=trial, prediction=prediction, metrics=metrics, error_code=error_code)
            for i, trial, prediction, metrics, error_code in rows.iterator(chunk_size=2000)]


def overall_scores(scores: list[ScoreValue]) -> list[ScoreValue]:
    """Macro average over scenarios, per metric: every scenario weighs the same on the overall tab."""
    by_metric: dict[str, list[ScoreValue]] = {}
    for s in scores:
        by_metric.setdefault(s.metric, []).append(s)
    return [
        ScoreValue(OVERALL, metric, float(np.mean([s.value for s in group])), n=sum(s.n for s in group))
        for metric, group in by_metric.items()
    ]


def score_submission(submission: Submission) -> None:
    """Compute and store every score of a submission (replacing earlier ones) and its usage summary."""
    evaluator = evaluator_for(submission)
    scores: list[ScoreValue] = []
    instances = _scored_instances(submission)
    for scenario in submission.scenarios:
        scores.extend(evaluator.score(scenario, _result_rows(submission, scenario, instances)))
    scores.extend(overall_scores([s for s in scores if s.scenario in submission.scenarios]))
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


def all_done(submission_id: int) -> bool:
    submission = Submission.objects.get(id=submission_id)
    return InstanceResult.objects.filter(submission_id=submission_id).count() >= submission.progress_total


def finalize(submission_id: int) -> bool:
    """Score a submission whose work is all done and mark it finished (or failed if nothing succeeded).

    Called after every batch; only the caller that finds all work done and wins the scoring claim scores.
    """
    if not all_done(submission_id) or not Submission.objects.claim_scoring(submission_id):
        return False
    submission = Submission.objects.select_related("benchmark", "model").get(id=submission_id)
    try:
        score_submission(submission)
    except Exception as exc:
        log.exception("scoring submission %s failed", submission_id)
        Submission.objects.fail(submission_id, "scoring_failed", f"Scoring failed: {exc!r}")
        return True
    code, summary = error_summary(submission)
    failed = InstanceResult.objects.filter(submission=submission).exclude(error_code="")
    errors, simulator_errors = failed.count(), failed.filter(error_code=SIMULATOR_ERROR).count()
    total = submission.progress_total
    if total and errors == total:
        Submission.objects.fail(submission_id, code, f"All {total} evaluations failed: {summary}")
    else:
        # The model's endpoint failing is a verdict on the model; the benchmark's simulator failing is not.
        notes = []
        if errors - simulator_errors:
            notes.append(f"{errors - simulator_errors} of {total} evaluations failed and count as wrong")
        if simulator_errors:
            notes.append(f"{simulator_errors} of {total} could not be evaluated (the benchmark's user simulator or judge "
                         "failed) and are left out of the scores")
        note = f"{'; '.join(notes)}: {summary}" if notes else ""
        if Submission.objects.finish(submission_id, code, note):
            Benchmark.touch_boards([submission.benchmark_id])
    return True
