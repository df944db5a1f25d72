"""`PooledHttp`: the one shape of dfr's HTTP clients (the API's and the file host's).

Each owns one `httpx.Client` with a bounded connection pool, shared by every
thread that uses it, that never follows a redirect itself, and is closed by
`close()` or by leaving a `with` block. They share one TLS context (the
certificate store is read once per process: about 15 ms a client saved).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from types import TracebackType
from typing import TypeVar

import httpx

__all__ = ["PooledHttp"]

_Owner = TypeVar("_Owner", bound="PooledHttp")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR),
    made once and shared: an SSLContext may serve many clients and threads."""
    return httpx.create_ssl_context()


class PooledHttp:
    """Owner of one pooled `httpx.Client` (`self._http`): at most `pool_size`
    connections open at once, keep-alive connections reused."""

    def __init__(
        self,
        *,
        headers: Mapping[str, str],
        timeout: httpx.Timeout,
        pool_size: int,
        transport: httpx.BaseTransport | None,
        base_url: str = "",
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers=dict(headers),
            timeout=timeout,
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            transport=transport,
            verify=tls_context() if transport is None else True,
            # A redirect is never followed by httpx: the API reports it (a POST
            # must not be replayed elsewhere, and a moved API means the base URL
            # needs fixing); the file host checks each hop itself.
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
