"""Client for OpenAI-compatible chat-completions endpoints, built on the ``openai`` SDK.

Every fault an endpoint can show ends as an ``EndpointError`` with a stable ``code`` and a message a
user understands; transient faults (connection refused, timeouts, 429, 5xx, malformed bodies) are retried
a bounded number of times with exponential backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
import openai

# Replies longer than this are cut: a misbehaving endpoint must not blow up a worker's memory or the DB.
MAX_REPLY_CHARS = 200_000
MAX_RETRY_AFTER_SECONDS = 60.0


class EndpointError(Exception):
    """An endpoint fault that survived the retries.

    Codes: ``connection`` (refused / DNS / reset), ``timeout``, ``rate_limited``, ``server_error`` (5xx),
    ``auth`` (401/403), ``not_found`` (404: wrong base URL or model), ``bad_request`` (other 4xx),
    ``bad_response`` (a body that is not a chat completion).
    """

    def __init__(self, code: str, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1

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
    timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    # Generation parameters sent with every request (temperature, max_tokens, top_p, seed, ...).
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


@dataclass
class ChatResult:
    message: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    attempts: int
    finish_reason: str = ""

    @property
    def content(self) -> str:
        return self.message.get("content") or ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return self.message.get("tool_calls") or []


def _status_error(exc: openai.APIStatusError) -> EndpointError:
    status = exc.status_code
    body = (exc.response.text or "")[:300] if exc.response is not None else ""
    if status == 429:
        return EndpointError("rate_limited", f"the endpoint is rate limiting requests (HTTP 429) {body}".strip(), status=status)
    if status >= 500:
        return EndpointError("server_error", f"the endpoint failed with HTTP {status}: {body}".strip(), status=status)
    if status in (401, 403):
        return EndpointError("auth", f"the endpoint refused the API key (HTTP {status})", status=status)
    if status == 404:
        return EndpointError("not_found", f"HTTP 404 at the endpoint: check the base URL and model id. {body}".strip(), status=status)
    return EndpointError("bad_request", f"the endpoint rejected the request (HTTP {status}): {body}".strip(), status=status)


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return None


class EndpointClient:
    """Calls one model on one endpoint. Thread-safe: one instance is shared by a worker's threads."""

    def __init__(self, config: EndpointConfig, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._sleep = sleep
        self._client = openai.OpenAI(
            base_url=config.base_url.rstrip("/"),
            api_key=config.api_key or "not-needed",
            timeout=httpx.Timeout(config.timeout, connect=min(config.timeout, 10.0)),
            max_retries=0,  # retries are ours: bounded, counted and mapped to error codes
        )

    def close(self) -> None:
        self._client.close()

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
            raise EndpointError("model_not_listed", f"the endpoint does not list model '{self.config.model}' (it lists: {shown})")

    def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **params: Any) -> ChatResult:
        started = time.perf_counter()
        result, attempts = self._with_retries(lambda: self._chat_once(messages, tools, params), count_attempts=True)
        result.latency_ms = (time.perf_counter() - started) * 1000.0
        result.attempts = attempts
        return result

    # -- internals -----------------------------------------------------------------------------------

    def _with_retries(self, call: Callable[[], Any], count_attempts: bool = False) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                value = self._translate(call)
                return (value, attempt) if count_attempts else value
            except EndpointError as err:
                err.attempts = attempt
                if not err.retryable or attempt > self.config.max_retries:
                    if attempt > 1:
                        err.message = f"{err.message} (after {attempt} attempts)"
                    raise
                delay = err.retry_after if err.retry_after is not None else min(
                    self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1)
                ) * (0.5 + random.random() / 2)
                self._sleep(delay)

    def _translate(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except openai.APITimeoutError:
            raise EndpointError("timeout", f"the endpoint did not answer within {self.config.timeout:g} s") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise EndpointError("connection", f"cannot connect to {self.config.base_url}: {cause}") from None
        except openai.APIStatusError as exc:
            err = _status_error(exc)
            err.retry_after = _retry_after(exc)
            raise err from None
        except (json.JSONDecodeError, openai.APIResponseValidationError, ValueError, TypeError, AttributeError) as exc:
            raise EndpointError("bad_response", f"the endpoint's reply is not a valid chat completion: {exc}") from None

    def _list_models_once(self) -> list[str]:
        page = self._client.models.list()
        return [m.id for m in page.data]

    def _chat_once(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> ChatResult:
        request: dict[str, Any] = {"model": self.config.model, "messages": messages, **self.config.params, **params}
        if tools:
            request["tools"] = tools
        raw = self._client.chat.completions.with_raw_response.create(**request)
        text = raw.http_response.text
        if len(text) > 10 * MAX_REPLY_CHARS:
            raise EndpointError("bad_response", f"the endpoint's reply is {len(text):,} characters long, over the limit")
        body = json.loads(text)
        return parse_completion(body)


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
        attempts=1,
        finish_reason=str(choice.get("finish_reason") or ""),
    )
