"""Submission lifecycle: claim, run, persist idempotently, resume, cancel, fail clearly, score, reap."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.base import BenchmarkData, Instance, ScenarioInfo, SplitData
from evaluation.errors import CodedError
from leaderboard.models import InstanceResult, ModelEntry, Score, Submission
from leaderboard.submissions import create_submission
from worker import lifecycle
from worker.scoring import evaluator_for, finalize
from tests.fault_server import completion
from tests.toy_family import ToyEvaluator


def make_submission(benchmark, base_url: str, model_id: str = "adder", **kwargs) -> Submission:
    model = ModelEntry.objects.create(name=f"model {model_id}", base_url=base_url, model_id=model_id)
    return create_submission(model=model, benchmark=benchmark, enqueue=False, **kwargs)


def run_all(submission: Submission) -> Submission:
    assert Submission.objects.claim(submission.id, "test")
    lifecycle.run_batch(submission.id, submission.pending_work())
    finalize(submission.id)
    submission.refresh_from_db()
    return submission


@pytest.mark.django_db
def test_full_run_scores_and_snapshot(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, trials=2)
    assert submission.progress_total == 10 * 2 * 2  # instances x scenarios x trials
    assert submission.config["dataset"]["sha256"] == toy_benchmark.splits.get(name="test").sha256
    assert submission.config["prompt_version"] == "toy-1"
    submission = run_all(submission)
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    assert submission.progress_done == 40 and submission.error_count == 0
    assert InstanceResult.objects.filter(submission=submission).count() == 40
    scores = {(s.scenario, s.metric): s.value for s in Score.objects.filter(submission=submission)}
    assert scores[("plain", "accuracy")] == 1.0 and scores[("shouted", "accuracy")] == 1.0
    assert scores[("overall", "accuracy")] == 1.0
    assert submission.prompt_tokens > 0 and submission.latency_p95_ms is not None


@pytest.mark.django_db
def test_claim_is_exclusive(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url)
    assert Submission.objects.claim(submission.id, "a") is True
    assert Submission.objects.claim(submission.id, "b") is False


@pytest.mark.django_db
def test_rerunning_a_batch_duplicates_nothing(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"])
    Submission.objects.claim(submission.id, "test")
    keys = submission.pending_work()
    assert lifecycle.run_batch(submission.id, keys[:6]) == 6
    assert lifecycle.run_batch(submission.id, keys[:6]) == 0  # a redelivered batch
    assert submission.pending_work() == keys[6:]
    lifecycle.run_batch(submission.id, keys)
    submission.refresh_from_db()
    assert submission.progress_done == len(keys) == InstanceResult.objects.filter(submission=submission).count()


@pytest.mark.django_db
def test_wrong_answers_and_drilldown_flag(toy_benchmark):
    from evaluation.baselines.server import PolicyServer
    from tests.toy_family import AddingPolicy

    server = PolicyServer(AddingPolicy(wrong_every=2)).start_background()
    try:
        submission = run_all(make_submission(toy_benchmark, server.base_url, scenarios=["plain"]))
    finally:
        server.stop()
    assert Score.objects.get(submission=submission, scenario="plain", metric="accuracy").value == 0.5
    assert InstanceResult.objects.filter(submission=submission, correct=False).count() == 5


@pytest.mark.django_db
def test_some_endpoint_errors_count_as_wrong_and_are_explained(toy_benchmark, fault_server):
    server = fault_server(lambda n, r: (500, {}, b"boom") if r["messages"][0]["content"].startswith("What is 3 ") else (200, {}, completion("The answer is 0")))
    submission = make_submission(toy_benchmark, server.base_url, model_id="fault-model", scenarios=["plain"])
    submission.model.generation_params = {}
    submission = run_all(submission)
    assert submission.status == Submission.Status.FINISHED
    assert submission.error_count == 1 and submission.progress_done == 10
    assert "1 of 10 evaluations failed" in submission.error_message and "server_error" in submission.error_message
    accuracy = Score.objects.get(submission=submission, scenario="plain", metric="accuracy")
    assert accuracy.n == 10  # the failed instance stays in the denominator
    assert accuracy.value == pytest.approx(0.1)  # only q0 (0 + 0) is right


@pytest.mark.django_db
def test_every_instance_failing_fails_the_submission(toy_benchmark, fault_server, monkeypatch):
    monkeypatch.setattr(lifecycle, "MAX_CONSECUTIVE_ENDPOINT_ERRORS", 1000)
    server = fault_server(lambda n, r: (200, {}, b"<html>not an API</html>"))
    submission = run_all(make_submission(toy_benchmark, server.base_url, model_id="fault-model", scenarios=["plain"]))
    assert submission.status == Submission.Status.FAILED
    assert submission.error_code == "bad_response"
    assert submission.error_message.startswith("All 10 evaluations failed: bad_response ×10")


@pytest.mark.django_db
def test_dead_endpoint_stops_the_batch_and_resume_finishes(toy_benchmark, fault_server, monkeypatch):
    monkeypatch.setattr(lifecycle, "MAX_CONSECUTIVE_ENDPOINT_ERRORS", 3)
    state = {"down": False}

    def respond(n, request):
        if n == 4:
            state["down"] = True
        if state["down"]:
            return 503, {}, b"down"
        return 200, {}, completion("The answer is 0")

    server = fault_server(respond)
    submission = make_submission(toy_benchmark, server.base_url, model_id="fault-model", scenarios=["plain"], concurrency=1)
    submission.model.generation_params = {}
    from evaluation import client as client_module

    monkeypatch.setattr(client_module.time, "sleep", lambda s: None)
    submission = run_all(submission)
    assert submission.status == Submission.Status.FAILED
    assert submission.error_code == "endpoint_server_error"
    assert "3 errors of the endpoint in a row" in submission.error_message and "re-run" in submission.error_message
    # Four successes, then two errors recorded before the third in a row tripped the breaker.
    assert InstanceResult.objects.filter(submission=submission, error_code="").count() == 4
    assert submission.progress_done == 6 and submission.error_count == 2
    done_before = set(InstanceResult.objects.filter(submission=submission, error_code="").values_list("id", flat=True))

    state["down"] = False
    server.respond = lambda n, r: (200, {}, completion("The answer is 0"))
    assert submission.requeue()
    submission.refresh_from_db()
    assert (submission.status, submission.progress_done, submission.error_count) == ("queued", 4, 0)
    submission = run_all(submission)
    assert submission.status == Submission.Status.FINISHED and submission.error_count == 0
    results = InstanceResult.objects.filter(submission=submission)
    assert results.count() == 10 and done_before <= set(results.values_list("id", flat=True))


@pytest.mark.django_db
def test_cancel_stops_new_work(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url)
    Submission.objects.claim(submission.id, "test")
    assert submission.cancel()
    assert lifecycle.run_batch(submission.id, submission.pending_work()) == 0
    submission.refresh_from_db()
    assert submission.status == Submission.Status.CANCELLED


@pytest.mark.django_db
def test_preflight_reports_unreachable_and_unlisted_model(toy_benchmark, fault_server):
    unreachable = make_submission(toy_benchmark, "http://127.0.0.1:9/v1")
    with pytest.raises(CodedError) as info:
        lifecycle.preflight(unreachable)
    assert info.value.code == "endpoint_unreachable" and "cannot connect" in info.value.message

    server = fault_server(lambda n, r: (200, {}, completion()), models=("something-else",))
    unlisted = make_submission(toy_benchmark, server.base_url, model_id="adder")
    with pytest.raises(CodedError) as info:
        lifecycle.preflight(unlisted)
    assert info.value.code == "model_not_listed" and "something-else" in info.value.message


@pytest.mark.django_db
def test_reaper_resumes_stale_submissions_and_keeps_their_results(toy_benchmark, adder_endpoint, dispatched):
    stale = make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"])
    alive = make_submission(toy_benchmark, adder_endpoint.base_url)
    for submission in (stale, alive):
        Submission.objects.claim(submission.id, "test")
        Submission.objects.mark_dispatched(submission.id)
    keys = stale.pending_work()
    lifecycle.run_batch(stale.id, keys[:4])  # then its worker dies
    Submission.objects.filter(id=stale.id).update(heartbeat_at=timezone.now() - timedelta(hours=2))

    reaped = lifecycle.reap(heartbeat_timeout=600, dispatch_timeout=600)
    assert (reaped.resumed, reaped.failed) == ([stale.id], [])
    assert dispatched == [stale.id]
    stale.refresh_from_db()
    assert (stale.status, stale.auto_resumes, stale.progress_done) == ("queued", 1, 4)
    assert Submission.objects.get(id=alive.id).status == Submission.Status.RUNNING

    # The re-sent start message takes the same path: only the pending work runs, nothing twice.
    assert lifecycle.run_submission(stale.id, lifecycle.run_inline()).startswith("dispatched 6 items")
    stale.refresh_from_db()
    assert stale.status == Submission.Status.FINISHED
    assert InstanceResult.objects.filter(submission=stale).count() == stale.progress_total == 10


@pytest.mark.django_db
def test_reaper_gives_up_on_a_submission_whose_workers_keep_dying(toy_benchmark, adder_endpoint, dispatched):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url)
    Submission.objects.claim(submission.id, "test")
    Submission.objects.filter(id=submission.id).update(heartbeat_at=timezone.now() - timedelta(hours=2),
                                                       auto_resumes=lifecycle.MAX_AUTO_RESUMES)
    assert lifecycle.reap(heartbeat_timeout=600).failed == [submission.id]
    submission.refresh_from_db()
    assert submission.status == Submission.Status.FAILED and submission.error_code == "heartbeat_lost"
    assert "automatic resumes" in submission.error_message and dispatched == []


@pytest.mark.django_db
def test_reaper_dispatches_queued_submissions_the_broker_never_took(toy_benchmark, adder_endpoint, dispatched):
    lost = make_submission(toy_benchmark, adder_endpoint.base_url)
    Submission.objects.mark_dispatch_failed(lost.id, "the job queue is unreachable")
    fresh = make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"])
    Submission.objects.filter(id=lost.id).update(created_at=timezone.now() - timedelta(minutes=10))
    lost.refresh_from_db()
    assert lost.error_code == "queue_unreachable" and "dispatched automatically" in lost.error_message

    assert lifecycle.reap(dispatch_timeout=120).redispatched == [lost.id]
    assert dispatched == [lost.id]  # the fresh one is younger than the bound
    lost.refresh_from_db()
    assert lost.dispatched_at is not None and lost.error_code == ""
    assert Submission.objects.get(id=fresh.id).dispatched_at is None


@pytest.mark.django_db
def test_a_hanging_endpoint_trips_the_breaker_after_a_few_timeouts(toy_benchmark, fault_server, monkeypatch, settings):
    settings.ACTBOARD_ENDPOINT_TIMEOUT = 0.3
    server = fault_server(lambda n, r: (0, {"sleep": "3"}, b""))  # hangs past the client's timeout
    submission = make_submission(toy_benchmark, server.base_url, model_id="fault-model", scenarios=["plain"], concurrency=1)
    submission.model.generation_params = {}
    monkeypatch.setattr("evaluation.client.time.sleep", lambda s: None)
    submission = run_all(submission)
    codes = list(InstanceResult.objects.filter(submission=submission).values_list("error_code", flat=True))
    assert submission.status == Submission.Status.FAILED and submission.error_code == "endpoint_timeout", codes
    assert f"{lifecycle.MAX_CONSECUTIVE_TIMEOUTS} timeouts of the endpoint in a row" in submission.error_message


@pytest.mark.django_db
def test_max_instances_makes_a_partial_run(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, max_instances=3)
    assert submission.progress_total == 6
    assert run_all(submission).status == Submission.Status.FINISHED


@pytest.mark.django_db
def test_an_active_submission_is_not_queued_twice(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url)
    assert submission.requeue() is False  # queued
    Submission.objects.claim(submission.id, "test")
    assert submission.requeue() is False  # running: its batches are out
    assert Submission.objects.get(id=submission.id).status == Submission.Status.RUNNING


@pytest.mark.django_db
def test_secrets_in_an_evaluator_config_are_stored_encrypted(toy_benchmark, adder_endpoint):
    config = {"user_endpoint": {"base_url": "https://sim.example.com/v1", "model": "sim", "api_key": "sk-simulator-secret"}, "max_turns": 3}
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, evaluator_config=config)
    stored = Submission.objects.values_list("config", flat=True).get(id=submission.id)
    assert "sk-simulator-secret" not in str(stored)
    assert stored["evaluator_config"]["user_endpoint"]["api_key_encrypted"]
    assert evaluator_for(Submission.objects.get(id=submission.id)).config == config


@pytest.mark.parametrize("code", sorted(lifecycle.FAULTS_OF_EVERY_ITEM))
def test_faults_every_item_would_meet_trip_the_breaker_at_once(code):
    from evaluation.base import Outcome

    breaker = lifecycle.Breaker()
    assert breaker.record(Outcome(error_code=code, error="the endpoint refused the API key"))
    assert breaker.code() == f"endpoint_{code}" and breaker.message().startswith("Stopped at the first error of the endpoint")


def test_a_failing_simulator_is_reported_as_the_benchmark_s_not_the_model_s():
    from evaluation.base import Outcome

    breaker = lifecycle.Breaker()
    tripped = [breaker.record(Outcome(error_code=lifecycle.SIMULATOR_ERROR, error="user simulator: HTTP 503"))
               for _ in range(lifecycle.MAX_CONSECUTIVE_ENDPOINT_ERRORS)]
    assert tripped == [False] * (lifecycle.MAX_CONSECUTIVE_ENDPOINT_ERRORS - 1) + [True]
    assert breaker.code() == "simulator_error" and "user simulator or judge" in breaker.message()



class NextClickPolicy:
    model_id = "next-click"

    def reply(self, messages, tools, params):
        return {"content": json.dumps({"rationale": "I search.", "action": {"type": "click", "name": "nav_bar.search_button",
                                                                         "click_type": "search"}})}


def shopping_benchmark(instances: int) -> BenchmarkData:
    """A next-action benchmark whose pages are over the prompt's budget, so the prompt holds a shrunk page."""
    rows = []
    for i in range(instances):
        page = "".join(f'<div class="row"><a name="search_results.item_{n}.product_detail">Item {n} of page {i}</a></div>'
                       for n in range(400))
        rows.append(Instance(key=f"s{i}#1", input={
            "session_id": f"s{i}", "user_id": "u", "step": 1, "url": "https://shop.example/",
            "persona": {"survey": {"age": "30-39"}, "interview": "I buy <b>quickly</b>."},
            "history": [{"type": "click", "click_type": "search", "name": "nav_bar.search_input", "text": "",
                         "rationale": "I look for socks."}],
            "observation": f'<html><body><input name="nav_bar.search_input"/>{page}</body></html>'},
            reference={"session_id": f"s{i}", "type": "click", "name": "nav_bar.search_button", "text": "", "click_type": "search"}))
    return BenchmarkData(slug="shop", name="Shop", kind="next_action", version="1", license="CC0", description="",
                         scenarios=[ScenarioInfo(s, s) for s in ("full", "no_persona", "no_rationale")],
                         splits=[SplitData("test", rows)])


@pytest.mark.django_db
def test_next_action_transcripts_store_the_prompt_by_reference_and_the_drilldown_rebuilds_it(client):
    from django.template.loader import render_to_string

    from evaluation.baselines.server import PolicyServer
    from evaluation.next_action.prompt import build_messages
    from leaderboard.importing import import_benchmark
    from leaderboard.templatetags.board_tags import chat

    benchmark = import_benchmark(shopping_benchmark(3))
    server = PolicyServer(NextClickPolicy()).start_background()
    try:
        submission = run_all(make_submission(benchmark, server.base_url, NextClickPolicy.model_id,
                                             evaluator_config={"observation_chars": 5_000}))
    finally:
        server.stop()
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    results = list(InstanceResult.objects.filter(submission=submission).select_related("instance"))
    assert len(results) == 9 and all(r.correct for r in results)
    html = client.get(f"/s/{submission.id}/").content.decode()
    for result in results:
        prompt, reply = result.transcript  # what rebuilds the prompt, and the reply as it came
        assert prompt == {"role": "prompt", "prompt_version": "opera-next-action/1", "instance": result.instance.key,
                          "scenario": result.scenario, "observation_chars": 5_000}
        assert reply == {"role": "assistant", "content": NextClickPolicy().reply([], None, {})["content"]}
        # The drill-down shows the messages the endpoint was sent, as it showed them when they were stored.
        sent = build_messages(result.instance.input, result.scenario, observation_chars=5_000)
        assert "omitted" in sent[1]["content"]  # the page was shrunk to the budget
        assert render_to_string("leaderboard/_chat.html", {"messages": chat([*sent, reply])}) in html


class RecordingPolicy(NextClickPolicy):
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def reply(self, messages, tools, params):
        self.prompts.append(messages[-1]["content"])
        return super().reply(messages, tools, params)


@pytest.mark.django_db
def test_prompt_parts_are_prepared_at_import_and_runs_use_them():
    from evaluation.baselines.server import PolicyServer
    from evaluation.next_action.evaluator import NextActionEvaluator
    from leaderboard.importing import import_benchmark
    from leaderboard.models import TaskInstance

    benchmark = import_benchmark(shopping_benchmark(2))
    rows = list(TaskInstance.objects.filter(split__benchmark=benchmark).order_by("id"))
    assert all(row.prepared == NextActionEvaluator.prepare(row.input) and row.prepared["observation"] for row in rows)
    # A run reads the stored parts rather than shrinking the page again: a marker put in them reaches the endpoint,
    # at the budget they were prepared for only.
    rows[0].prepared = {**rows[0].prepared, "observation": '<a name="marker">stored</a>'}
    rows[0].save()
    policy = RecordingPolicy()
    server = PolicyServer(policy).start_background()
    try:
        for budget, marked in ((None, 3), (5_000, 0)):
            policy.prompts.clear()
            config = {"observation_chars": budget} if budget else {}
            submission = run_all(make_submission(benchmark, server.base_url, policy.model_id, evaluator_config=config))
            assert submission.status == Submission.Status.FINISHED, submission.error_message
            assert len(policy.prompts) == 6 and sum('name="marker"' in p for p in policy.prompts) == marked
    finally:
        server.stop()
    # Importing the unchanged split again stores the parts anew where they went stale (a new prompt version).
    TaskInstance.objects.filter(split__benchmark=benchmark).update(prepared={"prompt_version": "opera-next-action/0"})
    import_benchmark(shopping_benchmark(2))
    assert all(row.prepared == NextActionEvaluator.prepare(row.input)
               for row in TaskInstance.objects.filter(split__benchmark=benchmark))


@pytest.mark.django_db
def test_a_batch_loads_its_instances_a_chunk_at_a_time(toy_benchmark, adder_endpoint):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    submission = make_submission(toy_benchmark, adder_endpoint.base_url)
    keys = [*submission.pending_work(), (10**9, "plain", 0)]  # an instance deleted meanwhile is skipped
    with CaptureQueriesContext(connection) as queries:
        items = lifecycle._work_items(keys, chunk=4, evaluator=ToyEvaluator())
        first = next(items)
        assert len(queries) == 2  # only the first chunk's instances (and then their inputs) before the first call
    rest = list(items)
    assert [(first.instance.id, first.scenario, first.trial)] + [(i.instance.id, i.scenario, i.trial) for i in rest] == keys[:-1]
    assert all(item.instance.input for item in [first, *rest])


@pytest.mark.django_db
def test_inputs_that_no_run_reads_are_not_loaded():
    from evaluation.next_action.evaluator import NextActionEvaluator
    from leaderboard.importing import import_benchmark
    from leaderboard.models import TaskInstance

    benchmark = import_benchmark(shopping_benchmark(3))
    keys = [(row.id, "full", 0) for row in TaskInstance.objects.filter(split__benchmark=benchmark)]
    # At the budget the prompt parts were prepared for, a run reads them alone; at another, it reads the input.
    prepared = list(lifecycle._work_items(keys, chunk=10, evaluator=NextActionEvaluator()))
    assert len(prepared) == 3 and all(item.instance.input == {} and item.instance.prepared for item in prepared)
    rebuilt = list(lifecycle._work_items(keys, chunk=10, evaluator=NextActionEvaluator({"observation_chars": 5_000})))
    assert all(item.instance.input["observation"].startswith("<html>") for item in rebuilt)


@pytest.mark.parametrize("items,concurrency,max_lanes,batch_size", [
    (2000, 64, 2, 50), (2000, 16, 2, 50), (2000, 17, 2, 50), (2000, 64, 4, 50), (2000, 100, 3, 50),
    (60, 64, 4, 50), (51, 64, 2, 50), (30, 64, 2, 50), (7, 32, 8, 1), (2000, 7, 2, 50), (1, 1, 2, 50),
])
def test_lanes_share_the_concurrency_and_never_outnumber_batches(items, concurrency, max_lanes, batch_size):
    keys = [(i, "plain", 0) for i in range(items)]
    lanes = lifecycle.plan_lanes(keys, concurrency, batch_size=batch_size, max_lanes=max_lanes)
    assert sum(lane.concurrency for lane in lanes) == concurrency  # the cap, whole: never more, none idle
    # As many lanes as allowed, as there are batches of batch_size, and as shares of at least 8 fit in C.
    assert len(lanes) == max(1, min(max_lanes, -(-items // batch_size), concurrency // lifecycle.MIN_LANE_CONCURRENCY))
    assert len(lanes) == 1 or min(lane.concurrency for lane in lanes) >= lifecycle.MIN_LANE_CONCURRENCY
    assert [key for lane in lanes for part in lane.batches for key in part] == keys  # each key once, in order
    for lane in lanes:
        # Whole rounds at the lane's concurrency, but the lane's last batch.
        assert all(len(part) % lane.concurrency == 0 and len(part) >= batch_size for part in lane.batches[:-1])
    rounds = [sum(map(len, lane.batches)) / lane.concurrency for lane in lanes]
    assert max(rounds) - min(rounds) <= 1  # work follows the shares of calls: the lanes finish together


def test_two_lanes_at_64_run_batches_of_two_rounds_at_32():
    lanes = lifecycle.plan_lanes([(i, "full", 0) for i in range(2000)], 64, batch_size=50, max_lanes=2)
    assert [lane.concurrency for lane in lanes] == [32, 32]
    assert [len(part) for part in lanes[0].batches] == [64] * 15 + [40]


@pytest.mark.django_db
def test_the_worker_sends_one_chain_of_batches_per_lane(toy_benchmark, adder_endpoint, settings):
    from worker import tasks

    settings.ACTBOARD_BATCH_SIZE, settings.ACTBOARD_WORKER_LANES = 3, 2
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, concurrency=20)
    lanes = lifecycle.plan_lanes(submission.pending_work(), 20, batch_size=3, max_lanes=2)
    sent = tasks.lane_chains(submission, lanes)
    evaluator = evaluator_for(submission)
    assert len(sent.tasks) == len(lanes) == 2
    for lane, chain in zip(lanes, sent.tasks):
        run = lifecycle.run_of(submission)
        assert [step.args for step in chain.tasks] == [(submission.id, part, lane.concurrency, run) for part in lane.batches]
        for step, part in zip(chain.tasks, lane.batches):
            assert step.immutable and step.task == "worker.tasks.run_batch"
            soft, hard = lifecycle.batch_time_limits(evaluator, len(part), lane.concurrency)
            assert (step.options["soft_time_limit"], step.options["time_limit"]) == (soft, hard)
    assert sum(lane.concurrency for lane in lanes) == 20


def test_time_limits_leave_the_items_in_flight_time_to_finish(settings):
    settings.ACTBOARD_ENDPOINT_TIMEOUT = 10

    class TwoCalls:
        def calls_per_item(self):
            return 2

    assert lifecycle.batch_time_limits(TwoCalls(), 50, 16) == (4 * 40 + 60, 4 * 40 + 60 + 40 + 60)


@pytest.mark.django_db
def test_a_failing_batch_does_not_cut_its_lane(monkeypatch):
    from celery import chain
    from celery.exceptions import SoftTimeLimitExceeded

    from worker import tasks

    ran: list[int] = []

    def run_batch(submission_id, keys, *, concurrency, run):
        ran.append(keys[0][0])
        if keys[0][0] == 1:
            raise SoftTimeLimitExceeded()
        if keys[0][0] == 2:
            raise RuntimeError("the database went away")
        return len(keys)

    monkeypatch.setattr(lifecycle, "run_batch", run_batch)
    monkeypatch.setattr(tasks, "finalize", lambda submission_id: False)
    result = chain(tasks.run_batch.si(7, [[i, "plain", 0]], 8) for i in range(4)).apply()
    assert ran == [0, 1, 2, 3]  # a chain stops at a task that raises: these do not
    assert result.get() == "stored 1 results"
    assert [tasks.run_batch(7, [[i, "plain", 0]], 8) for i in (1, 2)] == ["time limit: stopped", "error: stopped"]


@pytest.mark.django_db
def test_a_batch_of_an_earlier_run_does_nothing(toy_benchmark, adder_endpoint):
    submission = make_submission(toy_benchmark, adder_endpoint.base_url, scenarios=["plain"])
    Submission.objects.claim(submission.id, "test")
    submission.refresh_from_db()
    earlier, keys = lifecycle.run_of(submission), submission.pending_work()
    # Resumed (its lanes waited too long in the queue): the new run plans all pending work afresh.
    Submission.objects.filter(id=submission.id).update(status=Submission.Status.QUEUED)
    Submission.objects.claim(submission.id, "test")
    submission.refresh_from_db()
    assert lifecycle.run_of(submission) != earlier
    assert lifecycle.run_batch(submission.id, keys, run=earlier) == 0
    assert lifecycle.run_batch(submission.id, keys[:3], run=lifecycle.run_of(submission)) == 3
