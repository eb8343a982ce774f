"""A real LLM through the whole loop: SmolLM2-135M served by llama.cpp, evaluated by a Celery worker."""

from __future__ import annotations

import pytest

from evaluation.baselines import smollm
from leaderboard.baselines import register
from leaderboard.models import InstanceResult, Score, Submission
from tests.integration.conftest import wait_for
from tests.integration.test_worker import finished, load, submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(("slug", "max_instances", "trials"), [("opera", 4, 1), ("trajectory2task", 1, 1)])
def test_smollm_answers_through_the_whole_loop(celery_worker_factory, smollm_endpoint, slug, max_instances, trials):
    benchmark = load(slug)
    celery_worker_factory("llm", concurrency=1)
    model = register(smollm_endpoint, smollm.MODEL_ID, "SmolLM2 on llama.cpp")
    model.generation_params = {"temperature": 0.0, "max_tokens": 128}
    model.save()
    submission = submit(model, benchmark, max_instances=max_instances, trials=trials, concurrency=1)
    wait_for(lambda: finished(submission), 900, f"SmolLM2 on {slug}", interval=2)
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    results = InstanceResult.objects.filter(submission=submission)
    assert results.count() == submission.progress_total
    # The model really answered: no endpoint errors, tokens counted by llama.cpp, replies in transcripts.
    assert not results.exclude(error_code="").exists(), list(results.exclude(error_code="").values_list("error_message", flat=True)[:3])
    assert submission.prompt_tokens > 0 and submission.completion_tokens > 0
    assert all(any(turn.get("role") == "assistant" for turn in r.transcript) for r in results)
    assert Score.objects.filter(submission=submission, scenario="overall", metric=benchmark.main_metric).exists()
