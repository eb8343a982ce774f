"""Client for OpenAI-compatible chat-completions endpoints: model listing through the ``openai`` SDK, chat
calls (the worker's hot path) posted straight through the guarded connections under it.

Every fault an endpoint can show ends as an ``EndpointError`` with a stable ``code`` and a message a
user understands, with the endpoint's secrets redacted from it. Transient faults (connection refused,
timeouts, 429, 5xx, malformed bodies) are retried with exponential backoff, honouring ``Retry-After``,
within one time budget per call. Connections go through ``evaluation.netguard``: only to addresses the
``AddressPolicy`` allows, checked at connect time, no redirects, replies read at most to a byte limit.
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import httpx2
import openai

from evaluation.errors import CodedError
from evaluation.netguard import (UNRESTRICTED, AddressPolicy, AddressRefused, CompressedReply, GuardedPool, GuardedTransport, Reply,
                                 ReplyTooLarge, call_deadline)

# Replies longer than this are cut: a misbehaving endpoint must not blow up a worker's memory or the DB.
MAX_REPLY_CHARS = 200_000
# Bytes read of any one reply (an error body included) before the read stops and the reply is refused.
MAX_BODY_BYTES = 10 * MAX_REPLY_CHARS
MAX_RETRY_AFTER_SECONDS = 60.0
# Characters of an endpoint's error body quoted in a message.
QUOTED_BODY_CHARS = 300
REDACTED = "[redacted]"

T = TypeVar("T")


class EndpointError(CodedError):
    """An endpoint fault that survived the retries.

    Codes: ``connection`` (refused / DNS / reset), ``timeout`` (no answer in time: a stalled endpoint),
    ``rate_limited``, ``server_error`` (5xx), ``auth`` (401/403), ``not_found`` (404: wrong base URL or
    model), ``bad_request`` (other 4xx), ``redirect`` (3xx: redirects are not followed),
    ``bad_response`` (a body that is not a chat completion, or one over the size limit),
    ``model_not_listed`` and ``address_refused`` (the host resolves to an address the policy refuses).
    ``redirect``, ``auth``, ``not_found`` and ``address_refused`` will not change from one request to
    the next.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(code, message)
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.code in {"connection", "timeout", "rate_limited", "server_error", "bad_response"}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True)
class EndpointConfig:
    base_url: str
    model: str
    api_key: str = ""
    # Seconds one connect, read or write may wait.
    timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    # Generation parameters sent with every request (temperature, max_tokens, top_p, seed, ...).
    params: dict[str, Any] = field(default_factory=dict)
    # Seconds one call may take across all its attempts and backoffs; None: twice ``timeout``, so a
    # hanging endpoint costs about two timeouts per call, not one per attempt.
    deadline: float | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    # Where connections may go. Unrestricted for trusted endpoints; the service passes its SSRF policy.
    address_policy: AddressPolicy = UNRESTRICTED

    @property
    def call_budget(self) -> float:
        return self.deadline if self.deadline is not None else 2 * self.timeout


@dataclass
class ChatResult:
    message: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str = ""

    @property
    def content(self) -> str:
        return self.message.get("content") or ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return self.message.get("tool_calls") or []


def secret_forms(secret: str) -> list[str]:
    """The ways an endpoint may echo ``secret`` back: as is, URL- or JSON-escaped, or inside base64.

    Base64 text of a longer string holding the secret depends on where the secret starts modulo 3, so
    the characters that encode only the secret are taken for each of the three alignments.
    """
    if len(secret) < 4:  # too short to tell from ordinary text; keys are far longer
        return []
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    raw = secret.encode()
    for offset in range(3):
        first = -(-offset * 8 // 6)  # first character made of secret bits only
        last = (offset + len(raw)) * 8 // 6  # one past the last such character
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * offset + raw).decode()
            forms.add(text[first:last])
    return sorted(forms, key=len, reverse=True)  # longest first: a form may contain a shorter one


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        for form in secret_forms(secret):
            text = text.replace(form, REDACTED)
    return text


def _quoted_body(reply: Reply, secrets: Iterable[str]) -> str:
    """The start of an error body, secrets redacted before the cut so no part of one survives it.

    The window redacted runs a margin (longer than any form of a secret) past the cut, so a secret that
    the window's end splits lies past the cut; as redacting shortens the text, the window grows until the
    redacted text still reaches past the margin."""
    secrets = list(secrets)
    wanted = QUOTED_BODY_CHARS + 2 * max((len(s) for s in secrets), default=0) + 8
    text = reply.body.decode("utf-8", "replace")  # read to the size limit at most
    window = wanted
    while True:
        quoted = redact(text[:window], secrets)
        if len(quoted) >= wanted or window >= len(text):
            return quoted[:QUOTED_BODY_CHARS]
        window += wanted - len(quoted)


def _status_error(reply: Reply, secrets: Iterable[str]) -> EndpointError:
    """The error of a reply that is not a success."""
    status = reply.status
    if 300 <= status < 400:
        location = reply.header("location")[:200]
        target = f" to {location}" if location else ""
        return EndpointError("redirect", f"the endpoint answered with a redirect (HTTP {status}){target}; redirects are "
                             "not followed: use the final URL as the base URL", status=status)
    if status in (401, 403):
        return EndpointError("auth", f"the endpoint refused the API key (HTTP {status})", status=status)
    body = _quoted_body(reply, secrets)
    if status == 429:
        return EndpointError("rate_limited", f"the endpoint is rate limiting requests (HTTP 429) {body}".strip(), status=status)
    if status >= 500:
        return EndpointError("server_error", f"the endpoint failed with HTTP {status}: {body}".strip(), status=status)
    if status == 404:
        return EndpointError("not_found", f"HTTP 404 at the endpoint: check the base URL and model id. {body}".strip(), status=status)
    return EndpointError("bad_request", f"the endpoint rejected the request (HTTP {status}): {body}".strip(), status=status)


def _retry_after(reply: Reply) -> float | None:
    value = reply.header("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None


def _sleep(seconds: float) -> None:
    time.sleep(seconds)  # looked up at call time, so a test's patch of time.sleep takes effect


class EndpointClient:
    """Calls one model on one endpoint. Thread-safe: one instance is shared by a worker's threads."""

    def __init__(self, config: EndpointConfig, *, sleep: Callable[[float], None] = _sleep):
        self.config = config
        self._sleep = sleep
        self._secrets = [config.api_key] if config.api_key else []
        self._pool = GuardedPool(config.address_policy, timeout=config.timeout, connect_timeout=min(config.timeout, 10.0),
                                 max_body_bytes=config.max_body_bytes)
        self._client = openai.OpenAI(
            base_url=config.base_url.rstrip("/"),
            api_key=config.api_key or "not-needed",
            timeout=config.timeout,
            max_retries=0,  # retries are ours: within the call's time budget, and counted in the message
            # No redirects followed, no proxy or credentials taken from the environment.
            http_client=httpx2.Client(transport=GuardedTransport(self._pool), follow_redirects=False, trust_env=False),
        )
        self._chat_url = f"{self._client.base_url}chat/completions"  # the SDK's base URL ends with "/"
        self._headers = {"Authorization": f"Bearer {self._client.api_key}", "Content-Type": "application/json",
                         "Accept": "application/json"}

    def close(self) -> None:
        self._client.close()  # and the pool under it

    def __enter__(self) -> "EndpointClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ---------------------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        return self._with_retries(self._list_models_once)

    def check(self) -> None:
        """Raise ``EndpointError`` unless the endpoint answers and lists the configured model."""
        models = self.list_models()
        if models and self.config.model not in models:
            shown = ", ".join(models[:10]) + (" ..." if len(models) > 10 else "")
            message = f"the endpoint does not list model '{self.config.model}' (it lists: {shown})"
            raise EndpointError("model_not_listed", redact(message, self._secrets))

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **params: Any) -> ChatResult:
        started = time.perf_counter()
        result = self._with_retries(lambda: self._chat_once(messages, tools, params))
        result.latency_ms = (time.perf_counter() - started) * 1000.0
        return result

    # -- internals -----------------------------------------------------------------------------------

    def _with_retries(self, call: Callable[[], T]) -> T:
        budget = self.config.call_budget
        with call_deadline(budget) as deadline:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return self._translate(call)
                except EndpointError as err:
                    if not err.retryable:
                        raise self._final(err, attempt) from None
                    delay = err.retry_after if err.retry_after is not None else min(
                        self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1)
                    ) * (0.5 + random.random() / 2)
                    out_of_time = time.monotonic() + delay >= deadline
                    if out_of_time or attempt > self.config.max_retries:
                        reason = f"the time budget of {budget:g} s per call ran out" if out_of_time else ""
                        raise self._final(err, attempt, reason) from None
                    self._sleep(delay)

    def _final(self, err: EndpointError, attempts: int, reason: str = "") -> EndpointError:
        notes = [f"after {attempts} attempts"] if attempts > 1 else []
        notes += [reason] if reason else []
        if notes:
            err.message = f"{err.message} ({'; '.join(notes)})"
        err.message = redact(err.message, self._secrets)
        return err

    def _translate(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except openai.APIStatusError as exc:
            raise self._refused(Reply(exc.response.status_code, list(exc.response.headers.items()), exc.response.content)) from None
        except openai.APIConnectionError as exc:  # the SDK's wrapper of what the connection raised (model listing)
            raise self._fault(exc.__cause__ or exc) from None
        except (OSError, http.client.HTTPException, AddressRefused, ReplyTooLarge, CompressedReply) as exc:
            raise self._fault(exc) from None
        except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as exc:
            raise EndpointError("bad_response", f"the endpoint's reply is not a valid chat completion: {exc}") from None

    def _fault(self, exc: BaseException) -> EndpointError:
        """The error of an exchange that got no reply, or one that was refused while it came in."""
        if isinstance(exc, TimeoutError):
            return EndpointError("timeout", f"the endpoint did not answer within {self.config.timeout:g} s")
        if isinstance(exc, AddressRefused):
            return EndpointError("address_refused", str(exc))
        if isinstance(exc, (ReplyTooLarge, CompressedReply)):
            return EndpointError("bad_response", str(exc))
        if isinstance(exc, http.client.RemoteDisconnected):
            return EndpointError("connection", f"the endpoint at {self.config.base_url} closed the connection without a reply")
        if isinstance(exc, http.client.HTTPException):
            # What the endpoint sent stands in the exception (a status line of up to 64K characters): quoted short.
            quoted = " ".join(str(exc).split())[:QUOTED_BODY_CHARS]
            return EndpointError("bad_response", f"the endpoint's reply is not valid HTTP ({type(exc).__name__}: {quoted})")
        return EndpointError("connection", f"cannot connect to {self.config.base_url}: {exc}")

    def _refused(self, reply: Reply) -> EndpointError:
        err = _status_error(reply, self._secrets)
        err.retry_after = _retry_after(reply)
        return err

    def _list_models_once(self) -> list[str]:
        page = self._client.models.list()
        return [m.id for m in page.data]

    def _chat_once(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> ChatResult:
        request: dict[str, Any] = {"model": self.config.model, "messages": messages, **self.config.params, **params}
        if tools:
            request["tools"] = tools
        # Straight through the guarded connections, not the SDK: per call, its request options, idempotency key
        # and retry bookkeeping, and httpx's models under it, cost more CPU than the HTTP exchange itself.
        reply = self._pool.request("POST", self._chat_url, self._headers, json.dumps(request).encode())
        if not 200 <= reply.status < 300:
            raise self._refused(reply)
        return parse_completion(json.loads(reply.body))


def parse_completion(body: Any) -> ChatResult:
    """Turn a chat-completions JSON body into a ``ChatResult``; raise ``ValueError`` if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list) or not body["choices"]:
        raise ValueError("no 'choices' in the reply")
    choice = body["choices"][0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ValueError("the first choice has no 'message'")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("'content' is not a string")
    out: dict[str, Any] = {"role": "assistant", "content": (content or "")[:MAX_REPLY_CHARS]}
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError("'tool_calls' is not a list")
    if calls:
        out["tool_calls"] = [
            {
                "id": str(c.get("id") or f"call_{i}"),
                "type": "function",
                "function": {
                    "name": str((c.get("function") or {}).get("name") or ""),
                    # Kept as the raw string: malformed arguments are the agent runner's to report.
                    "arguments": str((c.get("function") or {}).get("arguments") or "")[:MAX_REPLY_CHARS],
                },
            }
            for i, c in enumerate(calls)
            if isinstance(c, dict)
        ]
    usage = body.get("usage") or {}
    return ChatResult(
        message=out,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        latency_ms=0.0,
        finish_reason=str(choice.get("finish_reason") or ""),
    )
