"""`LocalServer`: the threaded HTTP server both of the emulator's listeners are
(the API in `server`, the file host in `fileserver`). Stdlib only.

It binds 127.0.0.1 only (it is a local test bench), never looks its own name
up, serves each connection on a daemon thread (a hung or idle keep-alive
connection never blocks exit), and keeps the open connections so that a stop
can end them all, idle ones too.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HOST", "LocalHandler", "LocalServer"]

#: The only address the emulator ever binds.
HOST = "127.0.0.1"


class LocalHandler(BaseHTTPRequestHandler):
    """What both listeners' handlers share: HTTP/1.1 keep-alive, no Python version
    in `Server`, answers sent without delay."""

    protocol_version = "HTTP/1.1"  # keep-alive
    sys_version = ""
    # An idle keep-alive connection gives its thread back after this long.
    timeout = 60.0

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle and
        # delayed ACKs add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    # Room for bursts of new connections from parallel clients.
    request_queue_size = 128

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self._conn_lock = threading.Lock()
        self._open: set[socket.socket] = set()
        super().__init__((HOST, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can
        # take seconds on a badly configured machine; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        self.server_name = HOST
        self.server_port = self.socket.getsockname()[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        with self._conn_lock:
            self._open.add(conn)
        return conn, address

    def forget(self, request: Any) -> None:
        """`request`'s connection is closing: no longer one to end at stop."""
        with self._conn_lock:
            self._open.discard(request)

    def shutdown_request(self, request: Any) -> None:
        self.forget(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive ones too) so it ends."""
        with self._conn_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):  # closed meanwhile by its own thread
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (after a timeout, mid-download) is routine, not an error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)
