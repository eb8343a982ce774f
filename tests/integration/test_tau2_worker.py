"""tau2 retail and airline submissions end to end: Django → Redis → a `celery worker` process → the agent's
and the user simulator's HTTP endpoints → PostgreSQL → the leaderboard."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from datasets.registry import load_bundled
from evaluation.baselines.server import PolicyServer
from evaluation.tau2.evaluator import Tau2Evaluator
from evaluation.base import Instance
from leaderboard import boards
from leaderboard.baselines import register
from leaderboard.forms import SubmissionForm
from leaderboard.importing import import_benchmark
from leaderboard.models import InstanceResult, Score, Submission, llm_role
from leaderboard.submissions import create_submission
from tests.integration.conftest import wait_for
from tests.user_endpoint import GoldAgentPolicy, NumberJudgePolicy, ScenarioUserPolicy

pytestmark = [pytest.mark.integration]
TASKS_PER_DOMAIN = 2


def words(text: str) -> str:
    return " ".join(text.split())


class GoldAgentForEveryTask:
    """The gold agent of whichever task the user's opening line belongs to (one model for a whole split)."""

    model_id = "gold-agent"

    def __init__(self, agents_by_opening: dict[str, GoldAgentPolicy]):
        self.agents_by_opening = agents_by_opening

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        opening = next(str(m.get("content") or "") for m in messages if m.get("role") == "user")
        return self.agents_by_opening[words(opening)].reply(messages, tools, params)


@pytest.fixture
def endpoints():
    started: list[PolicyServer] = []

    def start(*policies) -> PolicyServer:
        server = PolicyServer(*policies).start_background()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def gold_agent_for(benchmark, domain: str) -> GoldAgentForEveryTask:
    """Gold agents for the first test tasks, keyed by the stand-in user's opening line for each."""
    evaluator = Tau2Evaluator({"user": {"base_url": "http://127.0.0.1:9/v1", "model": "unused"}})
    agents = {}
    for row in benchmark.splits.get(name="test").instances.order_by("id")[:TASKS_PER_DOMAIN]:
        task = evaluator.task(Instance(row.key, row.input, row.reference, row.scenario, id=row.id))
        agents[words(f"Hi. {task.instructions.reason_for_call}")] = GoldAgentPolicy(domain, task)
    return GoldAgentForEveryTask(agents)


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_tau2_submission_runs_through_the_worker_to_the_board(celery_worker_factory, endpoints, domain):
    benchmark = import_benchmark(load_bundled(f"tau2-{domain}"))
    agent = endpoints(gold_agent_for(benchmark, domain))
    model = register(agent.base_url, "gold-agent", "gold agent")

    # Without a simulator the benchmark refuses submissions, on the page and the API alike.
    form = SubmissionForm({"benchmark": benchmark.slug, "name": "gold", "base_url": agent.base_url, "model_id": "gold-agent"})
    assert not form.is_valid() and form.errors.as_data()["benchmark"][0].code == "no_simulator"

    simulator = endpoints(ScenarioUserPolicy(), NumberJudgePolicy())
    benchmark.configure_simulator(llm_role("user", simulator.base_url, "scenario-user", api_key="sk-sim-secret"),
                                  llm_role("judge", simulator.base_url, "number-judge"))
    celery_worker_factory("w1")
    with transaction.atomic():  # enqueued on commit, as the web request does it
        submission = create_submission(model=model, benchmark=benchmark, max_instances=TASKS_PER_DOMAIN, trials=1, concurrency=2)
    wait_for(lambda: Submission.objects.get(id=submission.id).status in ("finished", "failed", "cancelled"), 240,
             "the submission to finish")
    submission.refresh_from_db()
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    results = InstanceResult.objects.filter(submission=submission)
    assert results.count() == TASKS_PER_DOMAIN and not results.exclude(error_code="").exists()
    pass_1 = Score.objects.get(submission=submission, scenario="standard", metric="pass_1")
    assert pass_1.value > 0
    assert submission.config["simulator"]["user"]["model"] == "scenario-user"
    assert submission.config["simulator"]["judge"]["model"] == "number-judge"
    assert "sk-sim-secret" not in str(submission.config)
    benchmark.refresh_from_db()
    assert [row.submission.id for row in boards.board(benchmark, "standard")] == [submission.id]
    result = results.first()
    assert result.prediction["components"]["DB"]["value"] == 1.0 and any(m["role"] == "tool" for m in result.transcript)
