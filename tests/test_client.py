"""The endpoint client against real HTTP servers that misbehave in every way DESIGN §3 lists."""

from __future__ import annotations

import base64
import socket
import threading
import json
import time
from urllib.parse import quote

import pytest

from config.ports import free_port

from evaluation.client import (
    MAX_REPLY_CHARS,
    QUOTED_BODY_CHARS,
    EndpointClient,
    EndpointConfig,
    EndpointError,
    redact,
    secret_forms,
)
from tests.fault_server import completion


def make_client(base_url: str, **kwargs) -> tuple[EndpointClient, list[float]]:
    sleeps: list[float] = []
    config = EndpointConfig(base_url=base_url, model="fault-model", timeout=kwargs.pop("timeout", 5), max_retries=kwargs.pop("max_retries", 3), **kwargs)
    return EndpointClient(config, sleep=sleeps.append), sleeps



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
    client, _ = make_client(server.base_url, timeout=0.5, max_retries=1, deadline=5)
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


KEY = "sk-live-3f9a7c1e5b2d4a6f8e0c"


def echo_everything(n, request, headers):
    """An endpoint that quotes the request back in every form a proxy or framework might."""
    auth = headers["authorization"]
    return json.dumps({
        "b64": base64.b64encode(f"Authorization: {auth}".encode()).decode(),
        "b64url": base64.urlsafe_b64encode(f"x{KEY}".encode()).decode(),
        "url": quote(auth, safe=""),
        "raw": auth,
        "error": f"bad request, headers were {headers}",
    }).encode()


@pytest.mark.parametrize("status, code", [(400, "bad_request"), (422, "bad_request"), (404, "not_found"), (500, "server_error"), (429, "rate_limited")])
def test_an_echoed_api_key_is_redacted_from_the_error(fault_server, status, code):
    holder = {}
    server = fault_server(lambda n, r: (status, {}, echo_everything(n, r, holder["server"].requests[-1].headers)))
    holder["server"] = server
    client, _ = make_client(server.base_url, api_key=KEY, max_retries=1)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    message = info.value.message
    assert info.value.code == code and "[redacted]" in message
    assert "3f9a7c1e5b2d4a6f8e0c" not in message and "sk-live" not in message
    for form in secret_forms(KEY):
        assert form not in message


def test_a_key_cut_by_the_quote_limit_leaves_no_prefix(fault_server):
    padding = "p" * (QUOTED_BODY_CHARS - 75)  # the key straddles the cut
    server = fault_server(lambda n, r: (400, {}, f'{{"error": "{padding}{KEY}"}}'.encode()))
    client, _ = make_client(server.base_url, api_key=KEY)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert "sk-li" not in info.value.message


def test_a_key_past_the_quote_window_stays_out_when_redactions_before_it_shorten_the_text(fault_server):
    # Eight keys redacted before it shorten the quoted text by 144 characters: the last key, which the
    # first window would cut through, would move inside the quote with its prefix.
    padding = "p" * (QUOTED_BODY_CHARS + 50 - len('{"error": "') - 8 * len(KEY))
    server = fault_server(lambda n, r: (400, {}, f'{{"error": "{KEY * 8}{padding}{KEY}"}}'.encode()))
    client, _ = make_client(server.base_url, api_key=KEY)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.message.count("[redacted]") == 9 and "sk-li" not in info.value.message


def test_a_key_echoed_as_a_model_id_is_redacted(fault_server):
    server = fault_server(lambda n, r: (200, {}, completion()), models=(f"Bearer {KEY}",))
    client, _ = make_client(server.base_url, api_key=KEY)
    with pytest.raises(EndpointError) as info:
        client.check()
    assert info.value.code == "model_not_listed" and KEY not in info.value.message and "Bearer [redacted]" in info.value.message


def test_secret_forms_cover_every_base64_alignment():
    for prefix in ("", "a", "ab", "abc", "Authorization: Bearer "):
        encoded = base64.b64encode((prefix + KEY + "!").encode()).decode()
        assert redact(encoded, [KEY]) != encoded
    assert secret_forms("abc") == []  # too short to redact without mangling ordinary text


def test_a_hanging_endpoint_costs_at_most_the_call_budget(fault_server):
    server = fault_server(lambda n, r: (0, {"sleep": "5"}, b""))
    client, sleeps = make_client(server.base_url, timeout=0.5, max_retries=3, backoff_base=0.01)  # budget: 2 × 0.5 s
    started = time.monotonic()
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    elapsed = time.monotonic() - started
    assert info.value.code == "timeout" and "time budget of 1 s per call ran out" in info.value.message
    assert 0.95 <= elapsed < 1.6  # four attempts of 0.5 s each would take 2 s
    assert server.calls == 2 and len(sleeps) == 1


def test_retry_after_beyond_the_budget_gives_up_at_once(fault_server):
    server = fault_server(lambda n, r: (429, {"Retry-After": "30"}, b'{"error": "slow down"}'))
    client, sleeps = make_client(server.base_url, deadline=10)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "rate_limited" and "time budget of 10 s" in info.value.message
    assert server.calls == 1 and sleeps == []


def test_patching_time_sleep_reaches_the_default_sleep(fault_server, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    server = fault_server(lambda n, r: (503, {}, b"busy") if n == 0 else (200, {}, completion("ok")))
    with EndpointClient(EndpointConfig(server.base_url, "fault-model")) as client:
        assert client.chat([{"role": "user", "content": "hi"}]).content == "ok"
    assert len(slept) == 1


def raw_server(reply: bytes) -> str:
    """A TCP server that reads each request whole, answers ``reply`` as it is, then closes (having read
    everything, so that the close is a clean end of stream, not a reset)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
                while len(body) < length:
                    body += conn.recv(65536)
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/v1"


def test_a_reply_that_is_not_http_is_named_and_quoted_short():
    client, _ = make_client(raw_server(b"SSH-2.0-" + b"x" * 60_000 + b"\r\n"), max_retries=0)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "bad_response" and "not valid HTTP (BadStatusLine: SSH-2.0-xxx" in info.value.message
    assert len(info.value.message) < 400 and "\n" not in info.value.message


def test_a_connection_closed_without_a_reply_says_so():
    client, _ = make_client(raw_server(b""), max_retries=0)
    with pytest.raises(EndpointError) as info:
        client.chat([{"role": "user", "content": "hi"}])
    assert info.value.code == "connection" and "closed the connection without a reply" in info.value.message
