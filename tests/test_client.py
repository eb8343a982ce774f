"""The endpoint client against real HTTP servers that misbehave in every way DESIGN §3 lists."""

from __future__ import annotations

import json
import socket

import pytest

from evaluation.client import MAX_REPLY_CHARS, EndpointClient, EndpointConfig, EndpointError
from tests.fault_server import completion


def make_client(base_url: str, **kwargs) -> tuple[EndpointClient, list[float]]:
    sleeps: list[float] = []
    config = EndpointConfig(base_url=base_url, model="fault-model", timeout=kwargs.pop("timeout", 5), max_retries=kwargs.pop("max_retries", 3), **kwargs)
    return EndpointClient(config, sleep=sleeps.append), sleeps


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ok_records_tokens_latency_and_sends_params(fault_server):
    seen = {}

    def respond(n, request):
        seen.update(request)
        return 200, {}, completion("hello")

    server = fault_server(respond)
    client, _ = make_client(server.base_url, params={"temperature": 0.0, "max_tokens": 32})
    result = client.chat([{"role": "user", "content": "hi"}])
    assert result.content == "hello"
    assert (result.prompt_tokens, result.completion_tokens, server.calls) == (7, 3, 1)
    assert result.latency_ms > 0
    assert seen["temperature"] == 0.0 and seen["max_tokens"] == 32 and seen["model"] == "fault-model"


def test_connection_refused_is_retried_then_reported():
    client, sleeps = make_client(f"http://127.0.0.1:{free_port()}/v1", max_retries=2)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "connection"
    assert len(sleeps) == 2
    assert "cannot connect" in info.value.message and "after 3 attempts" in info.value.message


def test_backoff_grows_exponentially(fault_server):
    server = fault_server(lambda n, r: (503, {}, b'{"error": "busy"}'))
    client, sleeps = make_client(server.base_url, max_retries=4, backoff_base=1.0, backoff_max=100)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "server_error" and info.value.status == 503
    assert server.calls == 5
    # jittered between 50% and 100% of 1, 2, 4, 8 seconds
    for attempt, delay in enumerate(sleeps):
        assert 0.5 * 2**attempt <= delay <= 2**attempt


def test_429_honours_retry_after_then_succeeds(fault_server):
    server = fault_server(lambda n, r: (429, {"Retry-After": "3"}, b'{"error": "slow down"}') if n < 2 else (200, {}, completion("fine")))
    client, sleeps = make_client(server.base_url)
    result = client.chat([{"role": "user", "content": "hi"}])
    assert result.content == "fine" and server.calls == 3
    assert sleeps == [3.0, 3.0]


def test_5xx_then_success(fault_server):
    server = fault_server(lambda n, r: (500, {}, b"oops") if n == 0 else (200, {}, completion("ok")))
    client, sleeps = make_client(server.base_url)
    assert client.chat([{"role": "user", "content": "x"}]).content == "ok"
    assert server.calls == 2 and len(sleeps) == 1


def test_timeout(fault_server):
    server = fault_server(lambda n, r: (0, {"sleep": "3"}, b""))
    client, _ = make_client(server.base_url, timeout=0.5, max_retries=1)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "timeout"
    assert "did not answer within 0.5 s" in info.value.message
    assert server.calls == 2


@pytest.mark.parametrize(
    "body",
    [b"this is not json", b'{"choices": []}', b'{"choices": [{"message": "text"}]}', b'{"choices": [{"message": {"content": 5}}]}', b"[1, 2]"],
)
def test_malformed_bodies_are_bad_response(fault_server, body):
    server = fault_server(lambda n, r: (200, {}, body))
    client, _ = make_client(server.base_url, max_retries=1)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "bad_response"
    assert server.calls == 2


def test_huge_body_is_cut_or_refused(fault_server):
    long_reply = "x" * (MAX_REPLY_CHARS * 3)
    server = fault_server(lambda n, r: (200, {}, completion(long_reply)))
    client, _ = make_client(server.base_url)
    assert len(client.chat([{"role": "user", "content": "hi"}]).content) == MAX_REPLY_CHARS

    gigantic = fault_server(lambda n, r: (200, {}, completion("y" * (MAX_REPLY_CHARS * 11))))
    client, _ = make_client(gigantic.base_url, max_retries=0)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "bad_response" and "over the limit" in info.value.message


def test_invalid_tool_calls_are_kept_raw_for_the_runner(fault_server):
    calls = [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{not json"}}, "garbage"]
    server = fault_server(lambda n, r: (200, {}, completion("", tool_calls=calls)))
    client, _ = make_client(server.base_url)
    result = client.chat([{"role": "user", "content": "hi"}], tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}])
    assert result.tool_calls == [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{not json"}}]


def test_auth_and_not_found_are_not_retried(fault_server):
    server = fault_server(lambda n, r: (401, {}, b'{"error": "bad key"}'))
    client, sleeps = make_client(server.base_url)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "auth" and server.calls == 1 and sleeps == []


def test_check_lists_model(fault_server):
    server = fault_server(lambda n, r: (200, {}, completion()), models=("other-a", "other-b"))
    client, _ = make_client(server.base_url)
    with pytest.raises(EndpointError) as info:
        client.check()
    assert info.value.code == "model_not_listed"
    assert "does not list model 'fault-model'" in info.value.message and "other-a" in info.value.message


def test_api_key_is_sent_as_bearer(fault_server):
    server = fault_server(lambda n, r: (200, {}, completion()))
    seen = {}
    original = server.RequestHandlerClass.do_POST

    def spy(handler):
        seen["auth"] = handler.headers.get("Authorization")
        original(handler)

    server.RequestHandlerClass.do_POST = spy
    try:
        client, _ = make_client(server.base_url, api_key="sk-secret")
        client.chat([{"role": "user", "content": json.dumps({"a": 1})}])
    finally:
        server.RequestHandlerClass.do_POST = original
    assert seen["auth"] == "Bearer sk-secret"
