"""An OpenAI-compatible endpoint that misbehaves on purpose, for the faults a real server won't show."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A body is bytes (sent with a Content-Length) or an iterable of chunks (sent chunked, as it is produced).
Body = bytes | Iterable[bytes]
Reply = tuple[int, dict[str, str], Body]
Responder = Callable[[int, dict], Reply]


def completion(content: str = "ok", tool_calls: list | None = None) -> bytes:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    return json.dumps({
        "id": "x", "object": "chat.completion", "model": "fault-model",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }).encode()


@dataclass(frozen=True)
class SeenRequest:
    """One request as received; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]


class FaultServer(ThreadingHTTPServer):
    """``respond(n, request_json)`` decides the n-th (0-based) chat request's status, headers and body.

    Status 0 hangs for ``headers["sleep"]`` seconds without answering. ``GET`` lists ``models`` unless
    ``get_reply`` says otherwise. Every request is recorded in ``requests``.
    """

    daemon_threads = True

    def __init__(self, respond: Responder, models: tuple[str, ...] = ("fault-model",), *, host: str = "127.0.0.1",
                 port: int = 0, get_reply: Reply | None = None, tls: ssl.SSLContext | None = None):
        self.respond = respond
        self.models = models
        self.get_reply = get_reply
        self.calls = 0
        self.requests: list[SeenRequest] = []
        self.server_names: list[str | None] = []  # TLS server names (SNI) the clients asked for
        self.lock = threading.Lock()
        super().__init__((host, port), _Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.server_address[0]}:{self.port}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate writes; with Nagle on, the client's delayed ACK adds ~40 ms each.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.requests.append(SeenRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

    def _reply(self, status: int, headers: dict[str, str], body: Body) -> None:
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **headers}.items():
            self.send_header(k, v)
        try:
            if isinstance(body, bytes):
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading: that is the point
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        if self.server.get_reply is not None:
            self._reply(*self.server.get_reply)
            return
        self._reply(200, {}, json.dumps({"object": "list", "data": [{"id": m, "object": "model"} for m in self.server.models]}).encode())

    def do_POST(self) -> None:  # noqa: N802
        self._record()
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with self.server.lock:
            n = self.server.calls
            self.server.calls += 1
        status, headers, body = self.server.respond(n, request)
        if status == 0:  # hang: the client's timeout must fire
            time.sleep(float(headers.get("sleep", "5")))
            return
        self._reply(status, headers, body)
