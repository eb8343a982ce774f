"""NextActionEvaluator against real HTTP endpoints: a bundled baseline behind PolicyServer."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from datasets.opera.bundle import load_bundled
from evaluation.base import Instance, ResultRow
from evaluation.baselines import BASELINES
from evaluation.baselines.next_action import MajorityPolicy, RetrievalPolicy, page_names
from evaluation.baselines.server import PolicyServer
from evaluation.client import EndpointClient, EndpointConfig, EndpointError
from evaluation.next_action.evaluator import NextActionEvaluator
from evaluation.next_action.parser import parse_reply
from evaluation.next_action.prompt import build_messages
from evaluation.registry import get_evaluator_class, load_object


def bundled_instances() -> list[Instance]:
    split = next(s for s in load_bundled().splits if s.name == "test")
    return [Instance(id=n, key=r.key, input=r.input, reference=r.reference) for n, r in enumerate(split.instances[:40])]


@pytest.fixture(scope="module")
def majority_server() -> Iterator[PolicyServer]:
    server = PolicyServer(MajorityPolicy()).start_background()
    yield server
    server.stop()


class CannedPolicy:
    model_id = "canned"

    def __init__(self, content: str) -> None:
        self.content = content

    def reply(self, messages: list[dict[str, Any]], tools: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"content": self.content}


def test_registry_and_schema() -> None:
    assert get_evaluator_class("next_action") is NextActionEvaluator
    assert NextActionEvaluator.headline_metric().name == "exact_match"
    assert NextActionEvaluator.scenarios == ("full", "no_persona", "no_rationale")
    assert not next(m for m in NextActionEvaluator.metrics if m.name == "parse_error_rate").higher_is_better
    for name in ("opera-majority", "opera-retrieval"):
        assert load_object(BASELINES[name].policy)().model_id == name  # type: ignore[operator]


def test_run_and_score_against_a_served_baseline(majority_server: PolicyServer) -> None:
    evaluator = NextActionEvaluator({"observation_chars": 6_000, "bootstrap": 200})
    config = EndpointConfig(base_url=majority_server.base_url, model="opera-majority", params={"temperature": 0})
    rows = []
    with EndpointClient(config) as client:
        for scenario in evaluator.scenarios:
            for instance in bundled_instances():
                outcome = evaluator.run(client, instance, scenario, trial=0)
                assert outcome.prediction["parse_error"] == ""
                assert outcome.metrics["exact_match"] in (0.0, 1.0)
                prompt, reply = outcome.transcript  # the prompt is stored as what rebuilds it
                assert reply["role"] == "assistant" and json.loads(reply["content"])["action"]
                sent = evaluator.rebuild_prompt(instance.input, prompt)
                assert sent == build_messages(instance.input, scenario, observation_chars=6_000)
                assert len(sent[1]["content"]) < 6_000 + 8_000  # page budget + persona and history
                assert outcome.prompt_tokens > 0 and outcome.completion_tokens > 0 and outcome.latency_ms > 0
                rows.append(ResultRow(instance, 0, outcome.prediction, outcome.metrics))
    scores = {s.metric: s for s in evaluator.score("full", rows[:40])}
    assert set(scores) == {m.name for m in evaluator.metrics}
    em = scores["exact_match"]
    assert em.n == 40 and em.value == pytest.approx(sum(r.metrics["exact_match"] for r in rows[:40]) / 40)
    assert em.ci_low <= em.value <= em.ci_high
    assert scores["parse_error_rate"].value == 0.0


def test_errored_and_unparsable_rows_count_as_wrong(fault_free_rows: list[ResultRow]) -> None:
    evaluator = NextActionEvaluator({"bootstrap": 0})
    rows = [ResultRow(r.instance, r.trial, r.prediction, r.metrics, error_code="timeout" if i % 2 else "")
            for i, r in enumerate(fault_free_rows)]
    scores = {s.metric: s for s in evaluator.score("full", rows)}
    assert scores["exact_match"].n == len(rows)
    assert scores["exact_match"].value <= 0.5
    assert scores["parse_error_rate"].value == pytest.approx(0.5)


@pytest.fixture
def fault_free_rows() -> list[ResultRow]:
    return [ResultRow(i, 0, dict(i.reference, parse_error=""), {}) for i in bundled_instances()[:10]]


def test_unparsable_reply_and_endpoint_errors() -> None:
    instance = bundled_instances()[0]
    server = PolicyServer(CannedPolicy("I'd probably click on something nice.")).start_background()
    try:
        with EndpointClient(EndpointConfig(base_url=server.base_url, model="canned")) as client:
            outcome = NextActionEvaluator().run(client, instance, "full", trial=0)
        assert outcome.prediction["type"] == "invalid" and outcome.metrics == {"exact_match": 0.0, "parse_error": 1.0}
        config = EndpointConfig(base_url=server.base_url, model="not-served", max_retries=0)
        with EndpointClient(config) as client, pytest.raises(EndpointError) as info:
            NextActionEvaluator().run(client, instance, "full", trial=0)
        assert info.value.code == "not_found"
    finally:
        server.stop()


@pytest.mark.parametrize("policy_class", [MajorityPolicy, RetrievalPolicy])
def test_baselines_answer_valid_json_with_names_from_the_page(policy_class: type) -> None:
    policy = policy_class()
    kinds = set()
    for instance in bundled_instances():
        messages = build_messages(instance.input, "no_persona", observation_chars=4_000)
        content = policy.reply(messages, None, {})["content"]
        body = json.loads(content)
        assert set(body) == {"rationale", "action"}
        parsed = parse_reply(content)
        assert parsed["parse_error"] == ""
        kinds.add(parsed["type"])
        if parsed["type"] in ("click", "input"):
            assert parsed["name"] in page_names(messages[1]["content"])
    assert "click" in kinds


def test_retrieval_reads_persona_and_rationales_when_the_prompt_shows_them() -> None:
    policy = RetrievalPolicy()
    instances = bundled_instances()

    def actions(scenario: str) -> list[dict[str, Any]]:
        return [json.loads(policy.reply(build_messages(i.input, scenario, observation_chars=4_000), None, {})["content"])["action"]
                for i in instances]

    full, no_persona, no_rationale = actions("full"), actions("no_persona"), actions("no_rationale")
    assert any(a != b for a, b in zip(full, no_persona))
    # A history without any rationale reads the same under full and no_rationale.
    without = [n for n, i in enumerate(instances) if not any(h.get("rationale") for h in i.input["history"])]
    assert without and all(full[n] == no_rationale[n] for n in without)


def test_retrieval_without_persona_or_rationales_in_its_train_split() -> None:
    train = next(s for s in load_bundled().splits if s.name == "train").instances[:200]
    bare = [replace(r, input={**r.input, "persona": {}, "history": [
        {k: v for k, v in h.items() if k != "rationale"} for h in r.input["history"]]}) for r in train]
    policy = RetrievalPolicy(bare)
    instance = bundled_instances()[1]
    body = json.loads(policy.reply(build_messages(instance.input, "full", observation_chars=4_000), None, {})["content"])
    assert body["action"]["type"] in ("click", "input", "terminate")


class SchemaEndpoint(ThreadingHTTPServer):
    """A chat endpoint that either enforces ``response_format`` (answers a reply that fits it) or, like a
    server without structured outputs, rejects it with a 400; it counts the requests it gets."""

    def __init__(self, supports_schema: bool) -> None:
        self.supports_schema = supports_schema
        self.requests: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _SchemaHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _SchemaHandler(BaseHTTPRequestHandler):
    server: SchemaEndpoint

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)
        if "response_format" in request and not self.server.supports_schema:
            status, body = 400, {"error": {"message": "Unrecognized request argument supplied: response_format"}}
        else:
            content = ('{"rationale": "compare", "action": {"type": "terminate"}}' if "response_format" in request
                       else "I would leave now.")
            body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        payload = json.dumps(body).encode()
        self.send_response(status if "error" in body else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.mark.parametrize("supports_schema", [True, False])
def test_structured_output_and_its_fallback(supports_schema: bool) -> None:
    server = SchemaEndpoint(supports_schema)
    instances = bundled_instances()[:5]
    evaluator = NextActionEvaluator({"structured_output": True, "observation_chars": 4_000})
    assert evaluator.snapshot()["structured_output"] is True  # recorded in the submission's config snapshot
    try:
        with EndpointClient(EndpointConfig(base_url=server.base_url, model="m", max_retries=0)) as client:
            outcomes = [evaluator.run(client, instance, "full", trial=0) for instance in instances]
    finally:
        server.shutdown()
    with_schema = [r for r in server.requests if "response_format" in r]
    if supports_schema:
        assert len(server.requests) == len(with_schema) == 5
        assert with_schema[0]["response_format"]["json_schema"]["schema"]["required"] == ["rationale", "action"]
        assert all(o.prediction["type"] == "terminate" and o.prediction["structured_output"] for o in outcomes)
    else:
        # Rejected once, then plain prompting for this and every later item: six requests for five items.
        assert len(with_schema) == 1 and len(server.requests) == 6
        assert all(o.prediction["parse_error"] and o.prediction["structured_output"] is False for o in outcomes)


def test_endpoint_errors_other_than_the_schema_are_not_swallowed() -> None:
    from evaluation.next_action.evaluator import rejects_response_format

    assert rejects_response_format(EndpointError("bad_request", "unknown field 'response_format'", status=400))
    assert not rejects_response_format(EndpointError("bad_request", "context length exceeded", status=400))
    assert not rejects_response_format(EndpointError("server_error", "response_format failed", status=500))


def test_trials_widen_nothing_they_do_not_add(fault_free_rows: list[ResultRow]) -> None:
    evaluator = NextActionEvaluator({"bootstrap": 300})
    one = {s.metric: s for s in evaluator.score("full", fault_free_rows)}
    three = {s.metric: s for s in evaluator.score("full", [replace(r, trial=t) for t in range(3) for r in fault_free_rows])}
    assert three["exact_match"].n == 3 * one["exact_match"].n
    # Identical trials resampled with their session give the same interval as one trial.
    assert (three["exact_match"].ci_low, three["exact_match"].ci_high) == pytest.approx((one["exact_match"].ci_low, one["exact_match"].ci_high))


def test_a_prompt_of_another_prompt_version_is_not_rebuilt_as_if_it_were_this_one() -> None:
    instance = bundled_instances()[0]
    entry = {"role": "prompt", "prompt_version": "opera-next-action/0", "instance": instance.key, "scenario": "full",
             "observation_chars": 6_000}
    [note] = NextActionEvaluator.rebuild_prompt(instance.input, entry)
    assert note["role"] == "note" and "opera-next-action/0" in note["content"]
