"""The evaluation engine: bounded concurrency, error capture, cancellation; the baseline HTTP server."""

from __future__ import annotations

import threading
import time

import httpx

from evaluation.base import Instance, Outcome
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.runner import WorkItem, run_items
from tests.toy_family import AddingPolicy, ToyEvaluator


class SlowEvaluator(ToyEvaluator):
    def __init__(self, fail_keys=(), crash_keys=()):
        super().__init__()
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.fail_keys, self.crash_keys = set(fail_keys), set(crash_keys)

    def run(self, client, instance, scenario, trial):
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.02)
            if instance.key in self.fail_keys:
                raise EndpointError("timeout", "the endpoint did not answer within 1 s")
            if instance.key in self.crash_keys:
                raise KeyError("bug")
            return Outcome(prediction={"ok": True}, metrics={"accuracy": 1.0})
        finally:
            with self.lock:
                self.in_flight -= 1


def items(n: int) -> list[WorkItem]:
    return [WorkItem(Instance(id=i, key=f"k{i}", input={}, reference={}), "plain", 0) for i in range(n)]


def test_concurrency_is_bounded_and_every_item_reported():
    evaluator = SlowEvaluator()
    seen = []
    done = run_items(evaluator, None, items(40), concurrency=5, on_outcomes=lambda done: seen.extend(item.instance.key for item, _ in done))
    assert done == 40 and sorted(seen) == sorted(f"k{i}" for i in range(40))
    assert evaluator.max_in_flight == 5


def test_endpoint_errors_and_bugs_become_recorded_errors():
    evaluator = SlowEvaluator(fail_keys={"k1"}, crash_keys={"k2"})
    outcomes = {}
    run_items(evaluator, None, items(4), concurrency=2, on_outcomes=lambda done: outcomes.update((item.instance.key, o) for item, o in done))
    assert outcomes["k1"].error_code == "timeout" and "within 1 s" in outcomes["k1"].error
    assert outcomes["k2"].error_code == "internal" and "KeyError" in outcomes["k2"].error
    assert outcomes["k0"].error_code == "" and outcomes["k3"].metrics == {"accuracy": 1.0}


def test_should_stop_prevents_new_work():
    evaluator = SlowEvaluator()
    seen = []
    run_items(evaluator, None, items(50), concurrency=2, on_outcomes=lambda done: seen.extend(i for i, _ in done), should_stop=lambda: len(seen) >= 6)
    assert 6 <= len(seen) <= 8


def test_policy_server_speaks_the_openai_protocol():
    server = PolicyServer(AddingPolicy()).start_background()
    try:
        client = EndpointClient(EndpointConfig(base_url=server.base_url, model="adder"))
        assert client.list_models() == ["adder"]
        result = client.chat([{"role": "user", "content": "What is 2 + 3?"}])
        assert result.content == "The answer is 5." and result.prompt_tokens > 0
        missing = httpx.post(server.base_url + "/chat/completions", json={"model": "nope", "messages": []})
        assert missing.status_code == 404 and "not served here" in missing.json()["error"]["message"]
        bad = httpx.post(server.base_url + "/chat/completions", content=b"{", headers={"Content-Type": "application/json"})
        assert bad.status_code == 400
    finally:
        server.stop()


def test_outcomes_completing_close_together_are_handed_over_together():
    calls: list[list[str]] = []
    done = run_items(SlowEvaluator(), None, items(40), concurrency=8, gather_seconds=0.5,
                     on_outcomes=lambda done: calls.append([item.instance.key for item, _ in done]))
    # Eight items finish every 20 ms: a half-second gathering time hands them over in a few calls.
    assert done == 40 and sorted(sum(calls, [])) == sorted(f"k{i}" for i in range(40))
    assert len(calls) <= 3
    ungathered: list[int] = []
    run_items(SlowEvaluator(), None, items(40), concurrency=8, on_outcomes=lambda done: ungathered.append(len(done)))
    assert sum(ungathered) == 40 and len(ungathered) > len(calls)
