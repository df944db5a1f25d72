"""A stand-in for GitHub or GitLab on 127.0.0.1: git over smart HTTP, and a comments API.

Git goes through the real `git http-backend` (CGI) on bare repositories under a
folder, so clones, fetches, `ls-remote` and pushes are the real protocol with the
real atomic ref updates; in front of it sit what a forge adds and what a test
needs to break:

- tokens: HTTP Basic (any user name) or `Authorization: Bearer`/`PRIVATE-TOKEN` for
  the API; each token reads, or reads and writes. An unknown token (an expired one)
  is 401, a read-only token pushing is 403, as on the forges.
- faults: `fail("read"|"write", n, status)` answers the next n git requests of that
  kind with `status` (502 by default) without touching the repository.
- the pull-request comments (GitHub: /api/github/repos/O/R/issues/N/comments and
  .../issues/comments/ID) and merge-request notes (GitLab: /api/v4/projects/ID/
  merge_requests/IID/notes[/ID]) that the recipes read and write, kept in memory.

The server thread ends with the context manager; every request it serves is bounded
by git's own, so nothing here outlives a test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


@dataclass
class Comment:
    id: int
    body: str


@dataclass
class ForgeState:
    root: Path
    tokens: dict[str, str] = field(default_factory=dict)  # token -> "read" | "write"
    #: kind -> what the next requests of that kind get: None (served) or a status.
    faults: dict[str, list[int | None]] = field(default_factory=lambda: {"read": [], "write": []})
    comments: dict[str, list[Comment]] = field(default_factory=dict)  # thread -> comments
    git_requests: list[tuple[str, str]] = field(default_factory=list)  # (kind, path)
    api_requests: list[tuple[str, str, int]] = field(default_factory=list)
    next_id: int = 1000
    api_status: int | None = None  # every API request gets this status (a token refused)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Forge:
    """Bare repositories served over HTTP on 127.0.0.1, with tokens, faults and comments."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.state = ForgeState(root=root)
        self._server = _Server((HOST, 0), _Handler)
        self._server.forge = self.state
        self.port = self._server.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Forge:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- set-up

    def create_repo(self, path: str) -> Path:
        """An empty bare repository at `path` (e.g. "acme/data" or "acme/data.git")."""
        repo = self.state.root / (path if path.endswith(".git") else path + ".git")
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(repo)], check=True, timeout=30
        )
        # Pushes over HTTP need this (REMOTE_USER is set only for valid tokens).
        subprocess.run(
            ["git", "-C", str(repo), "config", "http.receivepack", "true"], check=True, timeout=30
        )
        return repo

    def token(self, token: str, access: str = "write") -> str:
        self.state.tokens[token] = access
        return token

    def revoke(self, token: str) -> None:
        """The token expires: every later request with it is 401."""
        self.state.tokens.pop(token, None)

    def fail(self, kind: str, count: int = 1, status: int = 502, *, skip: int = 0) -> None:
        """Serve the next `skip` git requests of `kind` ("read": fetch, clone, ls-remote;
        "write": push), then answer `count` with `status` without acting on them.

        A git command is several requests: `ls-remote` is 2 (the advertisement, then
        ls-refs), a fetch 3 (with the pack), a push 2."""
        with self.state.lock:
            self.state.faults[kind] = [None] * skip + [status] * count

    def refuse_api(self, status: int | None = 401) -> None:
        """The comments API answers every request with `status` (None: serves again;
        200: an object where a list of comments is expected)."""
        self.state.api_status = status

    def comments(self, thread: str) -> list[Comment]:
        """The comments of a pull request ("github:O/R#N") or merge request ("gitlab:ID!IID")."""
        return list(self.state.comments.get(thread, []))

    def git(self, repo: Path, *args: str) -> str:
        """Run git in a bare repository of the forge (as its admin would)."""
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=30
        )
        return done.stdout


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    forge: ForgeState


_API_GITHUB = re.compile(
    r"^/api/github/repos/(?P<repo>[^/]+/[^/]+)/issues/(?:(?P<number>\d+)/comments|comments/(?P<id>\d+))$"
)
_API_GITLAB = re.compile(
    r"^/api/v4/projects/(?P<project>[^/]+)/merge_requests/(?P<iid>\d+)/notes(?:/(?P<id>\d+))?$"
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the tests read the forge's own records

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_PATCH(self) -> None:
        self._route()

    # -- plumbing

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return None
            return decoded.partition(":")[2]
        if header.lower().startswith(("bearer ", "token ")):
            return header.split(None, 1)[1]
        return self.headers.get("PRIVATE-TOKEN")

    def _route(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/api/"):
            self._api(path)
        else:
            self._git(path)

    # -- git

    def _git(self, path: str) -> None:
        forge = self.server.forge
        query = urlsplit(self.path).query
        service = parse_qs(query).get("service", [""])[0] or path.rsplit("/", 1)[-1]
        kind = "write" if service == "git-receive-pack" else "read"
        body = self._body()
        # Authentication first: git asks without credentials, then with them, and only
        # the requests that carry a valid token count for the faults (so a test can say
        # "the second push fails" without counting the challenges).
        token = self._token()
        access = forge.tokens.get(token or "")
        if access is None:
            self._send(
                401,
                b"authentication required\n",
                {"WWW-Authenticate": 'Basic realm="forge"', "Content-Type": "text/plain"},
            )
            return
        with forge.lock:
            forge.git_requests.append((kind, path))
            fault = forge.faults[kind].pop(0) if forge.faults[kind] else None
        if fault is not None:
            extra = {"WWW-Authenticate": 'Basic realm="forge"'} if fault == 401 else {}
            self._send(fault, b"injected fault\n", {"Content-Type": "text/plain", **extra})
            return
        if kind == "write" and access != "write":
            self._send(403, b"this token cannot push\n", {"Content-Type": "text/plain"})
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(forge.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "forge-user",
            "REMOTE_ADDR": HOST,
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "HOME": str(forge.root),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status = 200
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        headers.pop("Content-Length", None)
        self._send(status, payload, headers)

    # -- the comments API

    def _api(self, path: str) -> None:
        forge = self.server.forge
        token = self._token()
        raw = self._body()
        github, gitlab = _API_GITHUB.match(path), _API_GITLAB.match(path)
        status = 404
        try:
            if forge.api_status == 200:
                status = 200  # a proxy's page, an API change: not what the recipe expects
                self._json(200, {"message": "a payload the recipe does not expect"})
            elif forge.tokens.get(token or "") is None or forge.api_status is not None:
                status = forge.api_status or 401
                self._json(status, {"message": "Bad credentials"})
            elif github:
                status = self._github(github, raw)
            elif gitlab:
                status = self._gitlab(gitlab, raw)
            else:
                self._json(404, {"message": "Not Found"})
        finally:
            with forge.lock:
                forge.api_requests.append((self.command, path, status))

    def _page(self, items: list[Comment], query: dict[str, list[str]]) -> list[Comment]:
        per_page = int(query.get("per_page", ["20"])[0])
        page = int(query.get("page", ["1"])[0])
        return items[(page - 1) * per_page : page * per_page]

    def _new_comment(self, thread: str, body: str) -> Comment:
        forge = self.server.forge
        with forge.lock:
            forge.next_id += 1
            comment = Comment(forge.next_id, body)
            forge.comments.setdefault(thread, []).append(comment)
        return comment

    def _find(self, comment_id: int) -> Comment | None:
        for thread in self.server.forge.comments.values():
            for comment in thread:
                if comment.id == comment_id:
                    return comment
        return None

    def _post(self, thread: str, raw: bytes) -> int:
        """A new comment on `thread` from the request body; answers 201 with it."""
        comment = self._new_comment(thread, json.loads(raw)["body"])
        self._json(201, {"id": comment.id, "body": comment.body})
        return 201

    def _edit(self, comment_id: int, raw: bytes) -> bool:
        """The comment's new body from the request; answers 200 with it (False: no such one)."""
        found = self._find(comment_id)
        if found is None:
            return False
        found.body = json.loads(raw)["body"]
        self._json(200, {"id": found.id, "body": found.body})
        return True

    def _github(self, match: re.Match[str], raw: bytes) -> int:
        query = parse_qs(urlsplit(self.path).query)
        if match["number"]:
            thread = f"github:{match['repo']}#{match['number']}"
            if self.command == "GET":
                items = self._page(self.server.forge.comments.get(thread, []), query)
                self._json(200, [{"id": c.id, "body": c.body} for c in items])
                return 200
            if self.command == "POST":
                return self._post(thread, raw)
        elif self.command == "PATCH" and self._edit(int(match["id"]), raw):
            return 200
        self._json(404, {"message": "Not Found"})
        return 404

    def _gitlab(self, match: re.Match[str], raw: bytes) -> int:
        query = parse_qs(urlsplit(self.path).query)
        thread = f"gitlab:{match['project']}!{match['iid']}"
        if match["id"] is None:
            if self.command == "GET":
                items = self._page(self.server.forge.comments.get(thread, []), query)
                self._json(200, [{"id": c.id, "body": c.body, "system": False} for c in items])
                return 200
            if self.command == "POST":
                return self._post(thread, raw)
        elif self.command == "PUT" and self._edit(int(match["id"]), raw):
            return 200
        self._json(404, {"message": "404 Not found"})
        return 404


def iter_lines(text: str) -> Iterator[str]:
    yield from text.splitlines()
