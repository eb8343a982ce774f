"""A small OpenAI-compatible chat-completions server around a ``ChatPolicy``.

The bundled baselines are served through it as real HTTP endpoints, so they are evaluated exactly like a
submitted model: same client, same retries, same parsing. It implements ``GET /v1/models`` and
``POST /v1/chat/completions`` (non-streaming, with ``tools`` / ``tool_calls``), and can add a fixed latency
per request, which the harness-overhead benchmark uses as its reference endpoint.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol


class ChatPolicy(Protocol):
    """Answers one chat-completions request with an assistant message.

    The message is a dict with ``content`` (str or None) and optionally ``tool_calls`` in the OpenAI
    format (``[{"id", "type": "function", "function": {"name", "arguments": <json string>}}]``).
    """

    model_id: str

    def reply(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, params: dict[str, Any]) -> dict[str, Any]: ...


def estimate_tokens(text: str) -> int:
    # About four characters a token for English text; baselines have no tokenizer of their own.
    return max(1, len(text) // 4) if text else 0


class _Handler(BaseHTTPRequestHandler):
    server: "PolicyServer"
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": "invalid_request_error"}})

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": "actboard"} for name in self.server.policies]})
        elif path in ("", "/health"):
            self._send_json(200, {"status": "ok", "models": list(self.server.policies)})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            messages = request["messages"]
            if not isinstance(messages, list):
                raise ValueError("'messages' must be a list")
        except (ValueError, KeyError) as exc:
            self._error(400, f"bad request: {exc}")
            return
        policies = self.server.policies
        policy = policies.get(request.get("model"))
        if policy is None:
            self._error(404, f"model '{request.get('model')}' is not served here (served: {', '.join(policies)})")
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        params = {k: v for k, v in request.items() if k not in ("messages", "tools", "model")}
        message = policy.reply(messages, request.get("tools"), params)
        prompt_text = "".join(str(m.get("content") or "") for m in messages)
        completion_text = (message.get("content") or "") + json.dumps(message.get("tool_calls") or "")
        self._send_json(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": policy.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": message.get("content"), **({"tool_calls": message["tool_calls"]} if message.get("tool_calls") else {})},
                        "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": estimate_tokens(prompt_text),
                    "completion_tokens": estimate_tokens(completion_text),
                    "total_tokens": estimate_tokens(prompt_text) + estimate_tokens(completion_text),
                },
            },
        )


class PolicyServer(ThreadingHTTPServer):
    """Serves one or more policies; the request's ``model`` field picks the policy."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, *policies: ChatPolicy, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        if not policies:
            raise ValueError("a PolicyServer needs at least one policy")
        super().__init__((host, port), _Handler)
        self.policies = {p.model_id: p for p in policies}
        self.latency = latency

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start_background(self) -> "PolicyServer":
        threading.Thread(target=self.serve_forever, name="policy-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def tool_call(name: str, arguments: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    """Build one OpenAI-format tool call, for policies that act through tools."""
    return {"id": call_id or f"call_{uuid.uuid4().hex[:12]}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
