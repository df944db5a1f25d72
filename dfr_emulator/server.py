"""The HTTP side of the emulator: a threaded HTTP/1.1 server on 127.0.0.1.

`Emulator` owns the server thread and exposes the control API tests use;
`_Handler` turns bytes on a connection into a `Request` for `EmulatorApp`
and carries out its `Reply`: answer, answer late (hang), or drop the
connection without a word (reset, ambiguous create). Stdlib only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from dfr_emulator.app import EmulatorApp, Reply, Request
from dfr_emulator.config import EmulatorConfig
from dfr_emulator.httpserver import HOST, LocalHandler, LocalServer

#: Bodies above this are refused (413); real create bodies are a few hundred bytes.
MAX_BODY = 1 << 20


class _BadRequest(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _HTTPServer(LocalServer):
    def __init__(self, port: int, app: EmulatorApp, stopping: threading.Event) -> None:
        self.app = app
        self.stopping = stopping
        self._aborting: set[socket.socket] = set()
        super().__init__(port, _Handler)

    def abort_on_close(self, conn: socket.socket) -> None:
        """Close `conn` with a TCP reset instead of an orderly shutdown."""
        with self._conn_lock:
            self._aborting.add(conn)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            abort = request in self._aborting
            self._aborting.discard(request)
        if not abort:
            super().shutdown_request(request)
            return
        self.forget(request)
        # SO_LINGER 0 makes close() send RST: the client sees a reset
        # connection, not a clean end of stream. OSError: already gone.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.close()

    def serve_until(self, stopping: threading.Event) -> None:
        """Accept and dispatch connections until `stopping` is set.

        Instead of `serve_forever`, whose `shutdown()` waits out a poll
        interval: `wake()` makes a stop take effect at once.
        """
        self.timeout = 1.0  # handle_request() returns at least this often
        while not stopping.is_set():
            self.handle_request()

    def handle_timeout(self) -> None:
        pass  # no request within `timeout`: just look at the stop flag again

    def wake(self) -> None:
        """Unblock `serve_until` with a throwaway connection."""
        with (
            contextlib.suppress(OSError),
            socket.create_connection((HOST, self.server_port), timeout=1.0),
        ):
            pass


class _Handler(LocalHandler):
    server_version = "dataframer-emulator"
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _BadRequest as bad:
            self.close_connection = True
            self._send(Reply.json(bad.status, {"detail": bad.detail}))
            return
        request = Request(
            method=self.command,
            target=self.path,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
            client_host=str(self.client_address[0]),
            server_host=f"{HOST}:{self.server.server_port}",
        )
        try:
            reply = self.server.app.handle(request)
        except Exception:  # noqa: BLE001 - the one catch-all: a bug becomes a 500 answer
            print(
                f"dfr emulator: unexpected error answering {self.command} {self.path}",
                file=sys.stderr,
            )
            traceback.print_exc(file=sys.stderr)
            reply = Reply.json(500, {"detail": "Internal server error (emulator bug)"})
        if reply.delay > 0:
            # A hung answer: the client times out first. stop() cuts it short.
            self.server.stopping.wait(reply.delay)
        if reply.drop:
            self.close_connection = True
            self.server.abort_on_close(self.connection)
            return
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if self.server.stopping.is_set():
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def _read_body(self) -> bytes:
        # Always read the whole body, even for a request we refuse: an unread
        # body would be parsed as the next request on this keep-alive connection.
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
        except ValueError:
            raise _BadRequest(400, "Invalid Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "Invalid Content-Length")
        if length > MAX_BODY:
            raise _BadRequest(413, "Request body too large")
        return self.rfile.read(length)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "Invalid chunked body") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY:
                raise _BadRequest(413, "Request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after each chunk

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status are ever logged, never headers:
        # the bearer token must not reach a log.
        if self.server.app.config.log_requests:
            super().log_message(format, *args)


class Emulator:
    """A local Dataframer API for tests, benchmarks and the quickstart.

    >>> with Emulator(EmulatorConfig(pending_seconds=0)) as emu:
    ...     url = emu.base_url   # http://127.0.0.1:PORT

    Keyword overrides are applied to `config`: `Emulator(pending_seconds=0)`.
    Runs, specs and counters live in memory for the life of the object; a
    stopped emulator may be started again (on a new port if `port` is 0) and
    still knows its runs.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        base = config if config is not None else EmulatorConfig()
        initial = dataclasses.replace(base, **overrides) if overrides else base
        self._stopping = threading.Event()
        self._app = EmulatorApp(initial, self._stopping)
        self._lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = initial.port

    # ----- lifecycle -------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1 and serve in a daemon thread; return the base URL."""
        with self._lock:
            if self._server is None:
                self._stopping.clear()
                server = _HTTPServer(self._port, self._app, self._stopping)
                thread = threading.Thread(
                    target=server.serve_until,
                    args=(self._stopping,),
                    name=f"dfr-emulator-{server.server_port}",
                    daemon=True,
                )
                thread.start()
                self._server, self._thread = server, thread
                self._app.outputs.start(self._app.config.file_port)
            return f"http://{HOST}:{self._server.server_port}"

    def stop(self) -> None:
        """Stop serving, cut short hung answers, close connections. Idempotent."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self._app.outputs.stop()
        self._stopping.set()
        server.wake()
        if thread is not None:
            thread.join(timeout=5.0)
        server.server_close()
        server.close_connections()

    def serve_forever(self) -> None:
        """Serve in the foreground until `stop()` (from a signal handler, say).

        Prints nothing. On Ctrl-C the server is stopped cleanly and the
        KeyboardInterrupt re-raised, so the CLI can exit 130.
        """
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.stop()
            raise
        self.stop()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        with self._lock:
            return self._server is not None

    @property
    def port(self) -> int:
        with self._lock:
            if self._server is None:
                raise RuntimeError("the emulator is not running")
            return self._server.server_port

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    # ----- control API for tests --------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        """The current settings (count-down knobs show what is left)."""
        return self._app.config

    def configure(self, **knobs: Any) -> EmulatorConfig:
        """Change settings while running, e.g. `configure(failure_rate=0)`."""
        return self._app.configure(knobs)

    def runs(self) -> list[dict[str, Any]]:
        """Every run as `GET /runs/{id}/` shows it (no faults), newest first."""
        return self._app.runs()

    def specs(self) -> list[dict[str, Any]]:
        """Every spec as `GET /specs/{id}/?include_versions=true` shows it (no faults),
        oldest first. Also `GET /_emulator/specs`."""
        return self._app.specs.all()

    def spec(self, spec_id: str) -> dict[str, Any] | None:
        """One spec with its versions, as `GET` shows it without faults, or None if unknown."""
        found = self._app.specs.get(spec_id)
        return None if found is None else self._app.specs.render(found, include_versions=True)

    def edit_spec(self, spec_id: str, content_yaml: str) -> None:
        """A new version of a SUCCEEDED spec, as an edit in the web app makes it (no
        request, no counter: behind dfr's back, even while an answer is being sent)."""
        self._app.specs.update(spec_id, content_yaml)

    def run(self, run_id: str) -> dict[str, Any] | None:
        """One run as `GET` shows it without faults, or None if unknown."""
        return self._app.store.get(run_id, self._app.config.running_status)

    def force_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        """Pin a run's status to any string (KeyError if unknown).

        Terminal statuses get a `completed_at`; FAILED shows `reason`.
        Progress freezes where it was.
        """
        self._app.force_status(run_id, status, reason)

    def set_outcome(self, run_id: str, status: str, reason: str | None = None) -> None:
        """How a run will end (SUCCEEDED or FAILED), keeping its current phase."""
        self._app.store.set_outcome(run_id, status, reason)

    def forget(self, run_id: str) -> None:
        """Drop a run without a DELETE: the API answers 404 for it from now on."""
        self._app.forget(run_id)

    def rewrite(self, kind: str, change: Callable[[Any], Any] | None) -> None:
        """Answer every successful JSON answer of route `kind` (`runs.get`,
        `files.download`, `evaluations.get`, ...) as `change(payload)` makes it:
        a hostile or broken API for tests. None takes the rewrite away."""
        if change is None:
            self._app.rewrites.pop(kind, None)
        else:
            self._app.rewrites[kind] = change

    def advance(self, seconds: float) -> None:
        """Move the lifecycle clock forward (works with any clock)."""
        self._app.timeline.advance(seconds)

    def stats(self) -> dict[str, Any]:
        """Counters: requests per route kind, responses per status, injected
        faults, runs created/canceled/deleted/forgotten, specs created/updated/deleted.
        Also `GET /_emulator/stats`."""
        return self._app.stats_snapshot()

    def reset_stats(self) -> None:
        self._app.stats.reset()
        self._app.outputs.file_host.stats.reset()

    # ----- generated files and evaluations (issue 16) -------------------------

    @property
    def file_base_url(self) -> str:
        """`http://127.0.0.1:PORT` of the file host, the second listener (presigned URLs)."""
        return f"http://{HOST}:{self._app.outputs.file_host.port}"

    def file_host_stats(self) -> dict[str, Any]:
        """What the file host saw: `requests`, `downloads`, `bytes_sent`,
        `authorization_headers` and `api_key_seen` (both 0 when no client sent
        credentials there), `responses`, `injected`. Also `stats()["file_host"]`."""
        return self._app.outputs.file_host.stats.snapshot()

    def evaluations(self) -> list[dict[str, Any]]:
        """Every evaluation as `GET /evaluations/{id}/` shows it, newest first."""
        return self._app.outputs.rendered()

    def run_files(self, run_id: str) -> dict[str, bytes]:
        """A SUCCEEDED run's files, path -> bytes, as the file host serves them."""
        found = self._app.store.output(run_id)
        if found is None or found[1] is None:
            raise KeyError(f"run {run_id} has no generated files")
        output = found[1]
        return {file.path: output.content(file) for file in output.files()}
