"""The file host: a second HTTP listener on 127.0.0.1 that serves presigned URLs.

It stands in for the object store a real `download_url` points at (S3 and
the like): another host than the API, reached with no credentials at all.
The URL itself is the permission: `Presigner.issue` hands out one per
answer, valid for `download_url_ttl` lifecycle seconds. A request that
carries an `Authorization` header is refused (400, as S3 refuses a second
auth mechanism) and counted, and one that carries the API key anywhere in
its headers is counted apart: tests assert both counts stay 0.

    GET|HEAD /dataframer-outputs/runs/{run}/{path}?X-Amz-Expires=..&X-Amz-Signature={token}

Answers: 200 with the bytes (`Content-Length`, `Content-Type`, `ETag`),
206 for a `Range: bytes=a-b` request, 412 `PreconditionFailed` when an
`If-Match` names another ETag (as S3), 403 `AccessDenied` once expired or
when the path does not match the signature, 404 `NoSuchKey` when the run or
file has gone since. Errors are S3-style XML. Faults: `truncated_downloads`
(close after `truncate_after_bytes`), `wrong_size_downloads` (bytes that
differ from what the API announced), `expired_urls` (born expired).

`POST /gateway/...` is the customer's data-plane gateway (see `dataplane`);
it takes a data-plane token, never the API key.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from dfr_emulator.httpserver import HOST, LocalHandler, LocalServer

BUCKET = "dataframer-outputs"
#: Gateway request bodies above this are refused (they are a few hundred bytes).
MAX_BODY = 1 << 20
#: Bytes a wrong-size download adds after the real content.
WRONG_SIZE_EXTRA = b"\n# trailing bytes the API did not announce\n"
#: How many downloads' sizes the host's stats keep (the latest).
SIZES_KEPT = 1000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: What separates the words of a header value (the key shows up as one of them).
_TOKENS = re.compile(r"[\s,;=:&?/\"']+")


@dataclass
class Ticket:
    """One presigned URL: what it opens and until when (lifecycle seconds)."""

    token: str
    key: str  # the object path after the bucket
    run_id: str
    file_id: str | None  # None: the run's ZIP
    filename: str
    content_type: str
    expires_t: float


class Presigner:
    """Issues and checks presigned URLs. Thread-safe."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._tickets: dict[str, Ticket] = {}
        self.base_url = ""  # set when the file host is bound

    def issue(
        self,
        key: str,
        *,
        run_id: str,
        file_id: str | None,
        filename: str,
        content_type: str,
        ttl: float,
        expired: bool = False,
    ) -> str:
        """A URL for `key`; `expired`: born expired (the `expired_urls` fault)."""
        token = secrets.token_hex(16)
        now = self._now()
        ticket = Ticket(token, key, run_id, file_id, filename, content_type, now + ttl)
        if expired:
            ticket.expires_t = now - 1.0
        with self._lock:
            self._tickets[token] = ticket
        query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={int(ttl)}&X-Amz-Signature={token}"
        return f"{self.base_url}/{BUCKET}/{quote(key)}?{query}"

    def check(self, path: str, query: str) -> tuple[Ticket | None, str]:
        """The ticket a request may use, or None and the S3 error code why not."""
        token = (parse_qs(query).get("X-Amz-Signature") or [""])[-1]
        with self._lock:
            ticket = self._tickets.get(token)
        if ticket is None or path != f"/{BUCKET}/{quote(ticket.key)}":
            return None, "SignatureDoesNotMatch"
        if self._now() >= ticket.expires_t:
            return None, "Expired"
        return ticket, ""


class FileHostStats:
    """What the file host saw. Thread-safe; `snapshot()` is JSON-friendly."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._counts: collections.Counter[str] = collections.Counter()
            self._responses: collections.Counter[str] = collections.Counter()
            self._injected: collections.Counter[str] = collections.Counter()
            # Each download's body size in the order asked: the last SIZES_KEPT, so that
            # a long-running emulator's memory stays flat.
            self._sizes: collections.deque[int] = collections.deque(maxlen=SIZES_KEPT)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count a download while its body is being sent (`max_in_flight`: the most
        at once, which shows how many downloads a client runs side by side)."""
        with self._lock:
            self._counts["in_flight"] += 1
            self._counts["max_in_flight"] = max(
                self._counts["max_in_flight"], self._counts["in_flight"]
            )
        try:
            yield
        finally:
            with self._lock:
                self._counts["in_flight"] -= 1

    def served(self, size: int) -> None:
        with self._lock:
            self._sizes.append(size)

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[str(status)] += 1

    def injected(self, fault: str) -> None:
        with self._lock:
            self._injected[fault] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts = self._counts
            return {
                "requests": counts["requests"],
                "downloads": counts["downloads"],
                "downloads_completed": counts["completed"],
                "max_in_flight": counts["max_in_flight"],
                "bytes_sent": counts["bytes_sent"],
                "gateway_requests": counts["gateway"],
                "authorization_headers": counts["authorization"],
                "api_key_seen": counts["api_key"],
                "responses": dict(self._responses),
                "injected": dict(self._injected),
                "download_sizes": list(self._sizes),
            }


@dataclass(frozen=True)
class FileHostHooks:
    """What the file host needs of the emulator (so it imports nothing of it)."""

    presigner: Presigner
    #: The bytes a ticket opens, or None when its run or file is gone.
    resolve: Callable[[Ticket], bytes | None]
    #: Use up one of a count-down knob (`truncated_downloads`, ...).
    take: Callable[[str], bool]
    #: The current `truncate_after_bytes` and `api_key` settings.
    settings: Callable[[], tuple[int, str | None]]
    #: POST /gateway/...: (path, headers, body) -> (status, JSON payload).
    gateway: Callable[[str, dict[str, str], bytes], tuple[int, Any]] | None = None
    #: Real seconds to wait before a download's body (`download_latency`).
    latency: Callable[[], float] = lambda: 0.0


class _Server(LocalServer):
    def __init__(self, port: int, hooks: FileHostHooks, stats: FileHostStats) -> None:
        self.hooks = hooks
        self.stats = stats
        super().__init__(port, _Handler)


class FileHost:
    """The second listener. `start()` binds it; `stop()` ends every connection."""

    def __init__(self, hooks: FileHostHooks) -> None:
        self.hooks = hooks
        self.stats = FileHostStats()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int) -> str:
        if self._server is None:
            server = _Server(port, self.hooks, self.stats)
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"dfr-emulator-files-{server.server_port}",
                daemon=True,
            )
            self._thread.start()
            self._server = server
            self.hooks.presigner.base_url = f"http://{HOST}:{server.server_port}"
        return self.hooks.presigner.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the file host is not running")
        return self._server.server_port


def _s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    ).encode()


_REFUSALS = {
    "SignatureDoesNotMatch": (
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
    ),
    "Expired": (403, "AccessDenied", "Request has expired"),
    "PreconditionFailed": (
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold",
    ),
    "NoSuchKey": (404, "NoSuchKey", "The specified key does not exist."),
    "Authorization": (
        400,
        "InvalidArgument",
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
        "Signature query string parameter or the Authorization header should be specified",
    ),
}


class _Handler(LocalHandler):
    server_version = "dataframer-emulator-files"
    server: _Server

    def do_GET(self) -> None:
        self._download(head=False)

    def do_HEAD(self) -> None:
        self._download(head=True)

    def do_POST(self) -> None:
        raw = self.headers.get("Content-Length") or "0"
        length = int(raw) if raw.isdigit() else -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True  # the body, if any, is left unread
            self._send(
                400, _s3_error("InvalidRequest", "Bad Content-Length"), "application/xml", {}
            )
            return
        body = self.rfile.read(length)
        self._look_at_headers(count_authorization=False)
        self.server.stats.count("gateway")
        gateway = self.server.hooks.gateway
        path = urlsplit(self.path).path
        if gateway is None or not path.startswith("/gateway/"):
            self._error("NoSuchKey")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = gateway(path, headers, body)
        self._send(status, json.dumps(payload).encode(), "application/json", {})

    def _look_at_headers(self, *, count_authorization: bool = True) -> bool:
        """Count requests that carry credentials; True if an Authorization header came."""
        stats = self.server.stats
        stats.count("requests")
        _, api_key = self.server.hooks.settings()
        values = [*self.headers.values(), *_TOKENS.split(unquote(self.path))]
        if api_key and any(api_key in _TOKENS.split(value) for value in values):
            stats.count("api_key")
        has_auth = "authorization" in {name.lower() for name in self.headers}
        if has_auth and count_authorization:
            stats.count("authorization")
        return has_auth

    def _download(self, *, head: bool) -> None:
        split = urlsplit(self.path)
        if self._look_at_headers():
            self._error("Authorization", head)
            return
        ticket, refusal = self.server.hooks.presigner.check(split.path, split.query)
        if ticket is None:
            if refusal == "Expired":
                self.server.stats.injected("expired_url_refused")
            self._error(refusal, head)
            return
        data = self.server.hooks.resolve(ticket)
        if data is None:
            self._error("NoSuchKey", head)
            return
        self._serve(ticket, data, head)

    def _serve(self, ticket: Ticket, data: bytes, head: bool) -> None:
        hooks, stats = self.server.hooks, self.server.stats
        headers = {
            "ETag": f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment; filename="{ticket.filename}"',
        }
        wanted_etag = self.headers.get("If-Match")
        if wanted_etag is not None and wanted_etag.strip() not in ("*", headers["ETag"]):
            self._error("PreconditionFailed", head)  # S3: the object is not that one
            return
        if not head and hooks.take("wrong_size_downloads"):
            stats.injected("wrong_size")
            data += WRONG_SIZE_EXTRA
        status = 200
        wanted = _range(self.headers.get("Range"), len(data))
        if isinstance(wanted, str):
            headers["Content-Range"] = f"bytes */{len(data)}"
            self._send(416, b"", "application/xml", headers, head)
            return
        if wanted is not None:
            start, end = wanted
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        cut: int | None = None
        if not head and hooks.take("truncated_downloads"):
            stats.injected("truncated")
            after, _ = hooks.settings()
            cut = min(after, len(data) // 2)
        stats.count("downloads")
        stats.served(len(data))
        with stats.in_flight():
            delay = 0.0 if head else hooks.latency()
            if delay > 0:
                time.sleep(delay)
            self._send(status, data, ticket.content_type, headers, head, cut=cut)

    def _error(self, refusal: str, head: bool = False) -> None:
        status, code, message = _REFUSALS[refusal]
        self._send(status, _s3_error(code, message), "application/xml", {}, head)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str],
        head: bool = False,
        *,
        cut: int | None = None,
    ) -> None:
        self.server.stats.response(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        if cut is not None:
            # Fewer bytes than Content-Length says, then the connection ends.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.server.stats.count("bytes_sent", cut)
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)
        self.server.stats.count("bytes_sent", len(body))
        if 200 <= status < 300:
            self.server.stats.count("completed")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the URL is the credential: it is never logged


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(first, last) byte of a single `Range: bytes=a-b`, "invalid", or None (all)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return "invalid"
    first, last = match.group(1), match.group(2)
    if not first:  # bytes=-N: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return "invalid"
    return start, end
