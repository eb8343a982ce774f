"""A submission's concurrency is a cap across its lanes: a real Celery worker with several processes runs
the lanes side by side, and the endpoint never has more calls in flight than the submission's owner set."""

from __future__ import annotations

import json
import threading
import time

import pytest

from evaluation.baselines.server import PolicyServer
from leaderboard.baselines import register
from leaderboard.models import InstanceResult, Submission
from tests.integration.conftest import wait_for
from tests.integration.test_worker import finished, load, submit

pytestmark = [pytest.mark.integration]


class InFlightCounter:
    """Answers a fixed action after ``latency`` seconds and records the most requests it held at once."""

    model_id = "in-flight-counter"
    reply_text = json.dumps({"rationale": "", "action": {"type": "click", "name": "nav_bar.search_input", "click_type": "search"}})

    def __init__(self, latency: float):
        self.latency = latency
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.calls = 0

    def reply(self, messages, tools, params):
        with self.lock:
            self.in_flight += 1
            self.calls += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(self.latency)  # in the handler's thread: every open request is one in flight
            return {"content": self.reply_text}
        finally:
            with self.lock:
                self.in_flight -= 1


def test_lanes_in_several_worker_processes_never_exceed_the_submission_s_concurrency(celery_worker_factory):
    benchmark = load("opera")
    counter = InFlightCounter(latency=0.2)
    server = PolicyServer(counter).start_background()
    try:
        # Four processes, batches of 20: before lanes, four batches at 16 each had 64 calls in flight.
        celery_worker_factory("lanes", concurrency=4)
        model = register(server.base_url, InFlightCounter.model_id, "counts calls in flight")
        submission = submit(model, benchmark, max_instances=40, concurrency=16)
        wait_for(lambda: finished(submission), 240, "the submission to finish")
    finally:
        server.stop()
    assert submission.status == Submission.Status.FINISHED, submission.error_message
    total = 40 * len(submission.scenarios)
    keys = list(InstanceResult.objects.filter(submission=submission).values_list("instance_id", "scenario", "trial"))
    assert len(keys) == len(set(keys)) == total == submission.progress_done  # every item stored exactly once
    assert counter.calls == total
    # Two lanes of 8 ran side by side (more than one lane's share at once), and never more than 16 in all.
    assert 8 < counter.peak <= 16, counter.peak
