"""A real LLM through the whole loop: SmolLM2-135M served by llama.cpp, evaluated by a Celery worker."""

from __future__ import annotations

import json

import pytest

from evaluation.baselines import smollm
from evaluation.client import EndpointClient, EndpointConfig
from leaderboard.baselines import SMOLLM_EVALUATOR_CONFIG, SMOLLM_GENERATION_PARAMS, register
from leaderboard.models import InstanceResult, Score, Submission
from tests.integration.conftest import wait_for
from tests.integration.test_worker import finished, load, submit

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(("slug", "scenario"), [("opera", "full"), ("trajectory2task", "standard")])
def test_smollm_answers_through_the_whole_loop(celery_worker_factory, smollm_endpoint, slug, scenario):
    benchmark = load(slug)
    celery_worker_factory("llm", concurrency=1)
    model = register(smollm_endpoint, smollm.MODEL_ID, "SmolLM2 on llama.cpp")
    model.generation_params = SMOLLM_GENERATION_PARAMS
    model.save()
    # The settings `make run` uses for this baseline, on a couple of instances of one scenario.
    submission = submit(model, benchmark, scenarios=[scenario], max_instances=2, trials=1, concurrency=1,
                        evaluator_config=SMOLLM_EVALUATOR_CONFIG[benchmark.kind])
    wait_for(lambda: finished(submission), 900, f"SmolLM2 on {slug}", interval=2)
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    results = InstanceResult.objects.filter(submission=submission)
    assert results.count() == submission.progress_total
    # The model really answered: no endpoint errors, tokens counted by llama.cpp, replies in transcripts.
    assert not results.exclude(error_code="").exists(), list(results.exclude(error_code="").values_list("error_message", flat=True)[:3])
    assert submission.prompt_tokens > 0 and submission.completion_tokens > 0
    assert all(any(turn.get("role") == "assistant" for turn in r.transcript) for r in results)
    assert Score.objects.filter(submission=submission, scenario="overall", metric=benchmark.main_metric).exists()


def test_smollm_server_honours_a_json_schema(smollm_endpoint):
    """Structured outputs: the reply is constrained to the schema, whatever the model would rather say."""
    schema = {"type": "object", "additionalProperties": False, "required": ["type", "name"],
              "properties": {"type": {"enum": ["click", "input", "terminate"]}, "name": {"type": "string", "maxLength": 40}}}
    with EndpointClient(EndpointConfig(smollm_endpoint, smollm.MODEL_ID, timeout=300)) as client:
        result = client.chat([{"role": "user", "content": "Say hello."}], temperature=0.0, max_tokens=100,
                             response_format={"type": "json_schema", "json_schema": {"name": "next_action", "schema": schema, "strict": True}})
    action = json.loads(result.content)
    assert set(action) == {"type", "name"} and action["type"] in {"click", "input", "terminate"}
