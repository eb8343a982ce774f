"""A local stand-in for the Hugging Face Hub: the endpoints ``huggingface_hub`` uses to create a dataset
repo, commit small files inline (``upload_folder``) and download a snapshot (``snapshot_download``).

It lets the real client code run offline, against ``http://127.0.0.1:<port>`` given as its endpoint.
Every file is accepted as a "regular" (inline, base64) upload, so no LFS or Xet storage is needed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, bytes]] = {}  # "datasets/org/name" -> files at the head commit
        self.commits: dict[str, str] = {}  # repo -> head commit sha
        self.requests: list[tuple[str, str]] = []
        self.tokens: list[str | None] = []
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        return None

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> str:
        path = unquote(urlsplit(self.path).path)
        self.hub.requests.append((self.command, path))
        self.hub.tokens.append(self.headers.get("Authorization"))
        return path

    def do_POST(self) -> None:
        path = self._record()
        body = self._body()
        hub = self.hub
        if path == "/api/repos/create":
            spec = json.loads(body)
            repo = f"{spec.get('type', 'model')}s/{spec['organization']}/{spec['name']}" if spec.get("organization") else f"{spec.get('type', 'model')}s/{spec['name']}"
            if repo in hub.repos:
                return self._json(409, {"error": "You already created this dataset repo", "url": f"{hub.endpoint}/{repo}"})
            hub.repos[repo] = {}
            hub.commits[repo] = hashlib.sha1(repo.encode()).hexdigest()
            return self._json(200, {"url": f"{hub.endpoint}/{repo}"})
        if path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        match = re.fullmatch(r"/api/(datasets/[^/]+/[^/]+)/(preupload|commit)/([^/]+)", path)
        if not match or match.group(1) not in hub.repos:
            return self._json(404, {"error": "Repository not found"})
        repo, action = match.group(1), match.group(2)
        if action == "preupload":
            files = json.loads(body)["files"]
            return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] != "header":
                return self._json(400, {"error": f"this stand-in supports inline files only, not {item['key']}"})
        hub.commits[repo] = hashlib.sha1(json.dumps(sorted(hub.repos[repo].items(), key=str), default=str).encode()).hexdigest()
        return self._json(200, {"commitUrl": f"{hub.endpoint}/{repo}/commit/{hub.commits[repo]}", "commitOid": hub.commits[repo],
                                "pullRequestUrl": None})

    def _resolve(self, head: bool) -> None:
        path = self._record()
        hub = self.hub
        if match := re.fullmatch(r"/api/(datasets/[^/]+/[^/]+)/revision/([^/]+)", path):
            repo = match.group(1)
            if repo not in hub.repos:
                return self._json(404, {"error": "Repository not found"})
            siblings = [{"rfilename": name} for name in sorted(hub.repos[repo])]
            return self._json(200, {"id": repo.split("/", 1)[1], "sha": hub.commits[repo], "siblings": siblings, "private": False})
        if match := re.fullmatch(r"/api/(datasets/[^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
            files = hub.repos.get(match.group(1), {})
            return self._json(200, [{"type": "file", "path": name, "size": len(data), "oid": _git_blob_oid(data)} for name, data in sorted(files.items())])
        if match := re.fullmatch(r"/(datasets/[^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            repo, name = match.group(1), match.group(3)
            data = hub.repos.get(repo, {}).get(name)
            if data is None:
                return self._send(404, b"", {"X-Error-Code": "EntryNotFound"}, head=head)
            headers = {"X-Repo-Commit": hub.commits[repo], "ETag": f'"{_git_blob_oid(data)}"', "Content-Type": "application/octet-stream"}
            return self._send(200, data, headers, head=head)
        return self._json(404, {"error": f"not emulated: {self.command} {path}"})

    def do_GET(self) -> None:
        self._resolve(head=False)

    def do_HEAD(self) -> None:
        self._resolve(head=True)
