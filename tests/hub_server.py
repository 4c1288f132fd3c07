"""A local stand-in for the Hugging Face hub's upload API, so push tests run without the network.

It answers the requests ``huggingface_hub``'s ``create_repo``, ``create_branch`` and ``create_commit``
send (``/api/repos/create``, ``/api/models/<repo>/branch/<name>``, ``/api/validate-yaml``,
``.../preupload/<rev>``, ``.../commit/<rev>``), takes every file as a regular (non-LFS) upload and
keeps the committed files per repo and branch. The README's metadata is checked as the hub's
client library parses it (``huggingface_hub.ModelCard``: YAML, ``model-index``) and must name the
library and the task. Unknown requests get 404 and are recorded, so a test sees what it missed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_REPO = r"(?P<repo>[^/]+/[^/]+)"


class FakeHub:
    """The server, its URL, and what was pushed: ``repos[repo_id]`` and ``files[(repo_id, branch)][path]``."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, Any]] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.unknown: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, reply = hub.handle(self.path.split("?")[0], body)
                self._reply(status, reply)

            def do_GET(self) -> None:
                hub.unknown.append(f"GET {self.path}")
                self._reply(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One POST: (status, JSON reply)."""
        if path == "/api/repos/create":
            req = json.loads(body)
            repo = f"{req.get('organization') or 'me'}/{req['name']}" if "/" not in req["name"] else req["name"]
            self.repos.setdefault(repo, {"private": req.get("private")})
            self.files.setdefault((repo, "main"), {})
            return 200, {"url": f"{self.url}/{repo}", "name": repo}
        if path == "/api/validate-yaml":
            return self._validate_card(json.loads(body)["content"])
        if m := re.fullmatch(rf"/api/models/{_REPO}/branch/(?P<branch>[^/]+)", path):
            self.files.setdefault((m["repo"], m["branch"]), dict(self.files.get((m["repo"], "main"), {})))
            return 200, {}
        if m := re.fullmatch(rf"/api/models/{_REPO}/preupload/(?P<rev>[^/]+)", path):
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                                   for f in files]}
        if m := re.fullmatch(rf"/api/models/{_REPO}/commit/(?P<rev>[^/]+)", path):
            stored = self.files.setdefault((m["repo"], m["rev"]), {})
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    stored[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            oid = hashlib.sha1(body).hexdigest()
            return 200, {"commitUrl": f"{self.url}/{m['repo']}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}
        self.unknown.append(f"POST {path}")
        return 404, {"error": f"unknown endpoint {path}"}

    @staticmethod
    def _validate_card(content: str) -> tuple[int, dict[str, Any]]:
        """``/api/validate-yaml``: 400 with the errors when the card's metadata is malformed or incomplete."""
        from huggingface_hub import ModelCard

        try:
            data = ModelCard(content).data.to_dict()
        except Exception as e:  # any parse failure is the client's error, reported as the hub does
            return 400, {"errors": [{"message": str(e)}]}
        missing = [k for k in ("library_name", "pipeline_tag", "license") if not data.get(k)]
        if missing:
            return 400, {"errors": [{"message": f"missing metadata: {missing}"}]}
        return 200, {"warnings": []}
