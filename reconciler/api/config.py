"""The client's settings that are plain values: the default API, the timeouts,
and the check of a base URL (https, or plain http to a loopback address only).
"""

from __future__ import annotations

import ipaddress

import httpx

from reconciler.errors import UsageError

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "check_base_url",
    "is_loopback",
    "timeouts",
]

DEFAULT_BASE_URL = "https://df-api.dataframer.ai"
#: The path every endpoint is under; the client adds it to the base URL.
API_PATH = "/api/dataframer"
CONNECT_TIMEOUT = 10.0


def timeouts(seconds: float, *, connect: float = CONNECT_TIMEOUT) -> httpx.Timeout:
    """dfr's `httpx.Timeout`: `seconds` to read, write or wait for a pooled
    connection, `connect` (10 s) to connect."""
    return httpx.Timeout(seconds, connect=connect)


DEFAULT_TIMEOUT = timeouts(30.0)


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (v4 or v6, bracketed or not)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str, allow_insecure_http: bool) -> str:
    try:
        url = httpx.URL((base_url or "").strip())
    except httpx.InvalidURL as exc:
        raise UsageError(f"the API URL {base_url!r} is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(
            f"the API URL {base_url!r} must start with https:// and name a host"
            f" (for example {DEFAULT_BASE_URL})"
        )
    path = url.path.rstrip("/")
    if path.endswith((API_PATH, "/api/data-plane")) or f"{API_PATH}/" in path:
        raise UsageError(
            f"the API URL {base_url!r} holds the API's own path: dfr adds {API_PATH}/... to"
            f" it, so every call would miss (a spec or run 'not found'); give the service's"
            f" address alone, e.g. {url.scheme}://{url.netloc.decode('ascii')}"
        )
    if url.userinfo:
        raise UsageError(
            "the API URL must not carry a user name or password; put the key in DATAFRAMER_API_KEY"
        )
    if url.scheme == "http" and not allow_insecure_http and not is_loopback(url.host):
        raise UsageError(
            f"refusing plain http:// to {url.host}: the key in DATAFRAMER_API_KEY would"
            " cross the network unencrypted; use https:// (plain http is allowed only"
            " to localhost, or when insecure HTTP is explicitly allowed)"
        )
    return str(url).rstrip("/")
