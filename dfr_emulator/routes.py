"""The emulated API's routes: which endpoint a request's method and path name.

Every path the emulator answers is here once, with the route kind
`app.EmulatorApp` dispatches on; a path known under another method is a 405.
"""

from __future__ import annotations

import re

__all__ = ["ADMIN_PREFIX", "API_PREFIX", "route"]

API_PREFIX = "/api/dataframer"
ADMIN_PREFIX = "/_emulator"

# (method, pattern, route kind). Trailing slashes are optional on every path.
_ID = r"(?P<id>[^/]+)"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), kind)
    for method, pattern, kind in (
        ("POST", rf"^{API_PREFIX}/runs/?$", "runs.create"),
        ("GET", rf"^{API_PREFIX}/runs/?$", "runs.list"),
        ("GET", rf"^{API_PREFIX}/runs/{_ID}/?$", "runs.get"),
        ("DELETE", rf"^{API_PREFIX}/runs/{_ID}/?$", "runs.delete"),
        ("POST", rf"^{API_PREFIX}/runs/{_ID}/cancel/?$", "runs.cancel"),
        ("GET", rf"^{API_PREFIX}/specs/?$", "specs.list"),
        ("POST", rf"^{API_PREFIX}/specs/?$", "specs.create"),
        ("GET", rf"^{API_PREFIX}/specs/{_ID}/?$", "specs.get"),
        (
            "GET",
            rf"^{API_PREFIX}/runs/{_ID}/files/(?P<file_id>[^/]+)/download/?$",
            "files.download",
        ),
        ("GET", rf"^{API_PREFIX}/runs/{_ID}/files/download/?$", "files.download_all"),
        ("GET", rf"^{API_PREFIX}/runs/{_ID}/evaluations/?$", "runs.evaluations"),
        ("POST", rf"^{API_PREFIX}/evaluations/?$", "evaluations.create"),
        ("GET", rf"^{API_PREFIX}/evaluations/{_ID}/?$", "evaluations.get"),
        ("POST", r"^/api/data-plane/token/?$", "dataplane.token"),
        ("POST", r"^/api/data-plane/grants/?$", "dataplane.grants"),
        ("PUT", rf"^{API_PREFIX}/specs/{_ID}/?$", "specs.update"),
        ("DELETE", rf"^{API_PREFIX}/specs/{_ID}/?$", "specs.delete"),
    )
)


def route(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route kind for a request, e.g. ("runs.get", {"id": ...})."""
    allowed: list[str] = []
    for route_method, pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match is None:
            continue
        if route_method == method:
            return kind, match.groupdict()
        allowed.append(route_method)
    if allowed:
        return "method_not_allowed", {"allow": ", ".join(sorted(set(allowed)))}
    return "unknown", {}
