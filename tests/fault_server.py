"""An OpenAI-compatible endpoint that misbehaves on purpose, for the faults a real server won't show."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Responder = Callable[[int, dict], tuple[int, dict[str, str], bytes]]


def completion(content: str = "ok", tool_calls: list | None = None) -> bytes:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return json.dumps({
        "id": "x", "object": "chat.completion", "model": "fault-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }).encode()


class FaultServer(ThreadingHTTPServer):
    """``respond(n, request_json)`` decides the n-th (0-based) chat request's status, headers and body."""

    daemon_threads = True

    def __init__(self, respond: Responder, models: tuple[str, ...] = ("fault-model",)):
        self.respond = respond
        self.models = models
        self.calls = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **headers}
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self._reply(200, {}, json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.models]}).encode())

    def do_POST(self) -> None:  # noqa: N802
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.server.lock:
            n = self.server.calls
            self.server.calls += 1
        status, headers, body = self.server.respond(n, request)
        if status == 0:  # hang: the client's timeout must fire
            time.sleep(float(headers.get("sleep", "5")))
            return
        self._reply(status, headers, body)
