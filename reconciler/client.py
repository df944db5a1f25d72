"""The Dataframer API client: the only module that talks to the network.

One `httpx.Client` (one transport seam: tests hand in `httpx.MockTransport`,
acceptance tests a real emulator on 127.0.0.1) is shared by every thread of
`apply`. Answers become typed, frozen `Run` and `Spec` values, parsed
tolerantly; failures become the `APIError` classes of `reconciler.errors`:

    APIError
    ├── AuthError          401/403: the key in DATAFRAMER_API_KEY was refused
    ├── NotFoundError      404 for a run or spec (or a wrong base URL)
    ├── RequestRejected    other 4xx, with the API's own message
    ├── APIUnavailable     retries exhausted: 5xx, 429, connection errors
    ├── BadAnswer          a body that is not the JSON we expect
    │   └── CreateAnswerUnreadable   (also an OutcomeUnknown, see below)
    └── OutcomeUnknown     a create-run POST whose outcome we cannot know

Retry rules. Reads (GET) and the idempotent writes (cancel, delete) are
retried on connection errors, timeouts, 5xx and 429, with exponential backoff
and full jitter, honouring `Retry-After`; after `max_retries` retries they raise
`APIUnavailable`.

Creating a run costs money and the API has no idempotency key, so a create is
retried only when the server certainly did not act on it:

- the connection was never made (ConnectError, ConnectTimeout, PoolTimeout):
  no byte of the request left this process;
- 429: a rate-limit refusal is given instead of processing the request.

Anything else after the request may have reached the server (a read timeout,
a reset, a protocol error, any 5xx, a 2xx whose id we cannot read) raises
`OutcomeUnknown`: the run may exist, and the caller must look for it before
it submits again. This is the rule the whole project rests on.

The API key lives only in the Authorization header of the `httpx.Client`;
every message this module builds is scrubbed of it as well, in case a server
echoes it back.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from reconciler import __version__
from reconciler.errors import (
    APIUnavailable,
    AuthError,
    BadAnswer,
    NotFoundError,
    OutcomeUnknown,
    RequestRejected,
    UsageError,
)
from reconciler.ratelimit import Pacer

__all__ = [
    "DEFAULT_BASE_URL",
    "TERMINAL_STATUSES",
    "ClientStats",
    "CreateAnswerUnreadable",
    "DataframerClient",
    "GeneratedFile",
    "Run",
    "Spec",
    "SpecVersion",
    "client_from_env",
    "normalize_status",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://df-api.dataframer.ai"
RUNS_PATH = "/api/dataframer/runs/"
SPECS_PATH = "/api/dataframer/specs/"

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})

# The seed page says IN_PROGRESS, the SDK says PROCESSING: one name inside dfr.
_STATUS_ALIASES = {"IN_PROGRESS": "PROCESSING", "CANCELLED": "CANCELED"}

# Connection errors raised before any byte of the request was written: the
# only transport errors after which a create may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors of our own making (bad URL scheme, unsendable header): retrying cannot help.
_LOCAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)

_EXCERPT_CHARS = 80
#: A list longer than this many pages is taken for a loop.
_MAX_PAGES = 10_000
_MESSAGE_CHARS = 300
#: Shorter keys are refused: no real key is, and they cannot be scrubbed from text.
MIN_KEY_CHARS = 8
#: Keys this long are scrubbed wherever they appear, even glued to other text.
LONG_KEY_CHARS = 16


class CreateAnswerUnreadable(BadAnswer, OutcomeUnknown):
    """A create answered 2xx but without a readable id: the run probably exists.

    It is a `BadAnswer` (the answer is malformed) and an `OutcomeUnknown` (a
    run was probably created and must be looked for before submitting again),
    so a caller that handles either one does the safe thing.
    """


# --------------------------------------------------------------------------
# Tolerant parsing helpers


def normalize_status(value: object) -> str | None:
    """One spelling per status: IN_PROGRESS -> PROCESSING; unknown strings kept."""
    if not isinstance(value, str) or not value.strip():
        return None
    upper = value.strip().upper()
    upper = _STATUS_ALIASES.get(upper, upper)
    if upper in {"PENDING", "PROCESSING", *TERMINAL_STATUSES}:
        return upper
    return value


_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) else None


def _as_str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _as_dict(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class GeneratedFile:
    """One output file of a finished run."""

    id: str | None = None
    path: str | None = None
    file_type: str | None = None
    size_bytes: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> GeneratedFile:
        if not isinstance(data, dict):
            return cls(path=_as_str(data))
        known = {"id", "path", "file_type", "size_bytes"}
        return cls(
            id=_as_str(data.get("id")),
            path=_as_str(data.get("path")),
            file_type=_as_str(data.get("file_type")),
            size_bytes=_as_int(data.get("size_bytes")),
            extra={k: v for k, v in data.items() if k not in known},
        )


# The run model (the SDK's RunRetrieveResponse) has no failure reason: a FAILED
# run says only how many samples failed. Fields not named here land in `extra`.
_RUN_KNOWN = {
    "id",
    "status",
    "spec_id",
    "spec_name",
    "spec_version",
    "created_at",
    "completed_at",
    "created_by_email",
    "dataset_id",
    "dataset_name",
    "dataset_type",
    "samples_completed",
    "samples_failed",
    "total_cost",
    "generated_files",
    "runtime_params",
}


@dataclass(frozen=True)
class Run:
    """A generation run as the API reports it. Every field but `id` may be None.

    `id` is "" only for a list entry that came without one. `status` is
    normalised (IN_PROGRESS -> PROCESSING, unknown strings kept as sent);
    `raw_status` is the spelling the API used. `extra` holds the fields this
    version of dfr does not know; `raw` the whole object as received.
    """

    id: str
    status: str | None = None
    raw_status: str | None = None
    spec_id: str | None = None
    spec_name: str | None = None
    spec_version: int | None = None
    created_at: str | None = None
    completed_at: str | None = None
    created_by_email: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    dataset_type: str | None = None
    samples_completed: int | None = None
    samples_failed: int | None = None
    total_cost: float | None = None
    generated_files: tuple[GeneratedFile, ...] = ()
    runtime_params: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, fallback_id: str = "") -> Run:
        status = normalize_status(data.get("status"))
        files = data.get("generated_files")
        return cls(
            id=_as_str(data.get("id")) or fallback_id,
            status=status,
            raw_status=_as_str(data.get("status")),
            spec_id=_as_str(data.get("spec_id")),
            spec_name=_as_str(data.get("spec_name")),
            spec_version=_as_int(data.get("spec_version")),
            created_at=_as_str(data.get("created_at")),
            completed_at=_as_str(data.get("completed_at")),
            created_by_email=_as_str(data.get("created_by_email")),
            dataset_id=_as_str(data.get("dataset_id")),
            dataset_name=_as_str(data.get("dataset_name")),
            dataset_type=_as_str(data.get("dataset_type")),
            samples_completed=_as_int(data.get("samples_completed")),
            samples_failed=_as_int(data.get("samples_failed")),
            total_cost=_as_float(data.get("total_cost")),
            generated_files=(
                tuple(GeneratedFile.from_json(f) for f in files) if isinstance(files, list) else ()
            ),
            runtime_params=_as_dict(data.get("runtime_params")),
            extra={k: v for k, v in data.items() if k not in _RUN_KNOWN},
            raw=dict(data),
        )


@dataclass(frozen=True)
class SpecVersion:
    """One entry of a spec's `versions`.

    The current API gives each entry only `content_yaml`, `content_location` and
    `created_at`: no number, no status (version N is the Nth entry by
    `created_at`). The old page's API numbered them (`version`) and gave a
    status; both are read when present.
    """

    version: int | None = None
    id: str | None = None
    status: str | None = None
    created_at: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: object) -> SpecVersion:
        if not isinstance(data, dict):
            return cls(version=_as_int(data))
        known = {"version", "version_number", "id", "status", "created_at"}
        version = data.get("version", data.get("version_number"))
        return cls(
            version=_as_int(version),
            id=_as_str(data.get("id")),
            status=normalize_status(data.get("status")),
            created_at=_as_str(data.get("created_at")),
            extra={k: v for k, v in data.items() if k not in known},
        )


_SPEC_KNOWN = {
    "id",
    "status",
    "name",
    "description",
    "dataset_id",
    "dataset_name",
    "created_at",
    "updated_at",
    "latest_version",
    "versions",
    "error",
    "content_yaml",
    "content_unavailable_reason",
}


@dataclass(frozen=True)
class Spec:
    """A spec (PROCESSING, SUCCEEDED or FAILED); runs need a SUCCEEDED one.

    `versions` is None unless the API sent a list (ask with include_versions).
    """

    id: str
    name: str | None = None
    status: str | None = None
    raw_status: str | None = None
    description: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    latest_version: int | None = None  # the old page's API only
    versions: tuple[SpecVersion, ...] | None = None
    error: str | None = None  # why a FAILED spec failed
    # Set when `content_yaml` is null because the spec's YAML lives in the
    # customer's own cloud: the spec is still ready.
    content_unavailable_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def version_numbers(self) -> dict[int, str | None] | None:
        """Version number -> its status (None when not given); None when unknown.

        Numbered entries (the old page's API) say so themselves. Entries without
        numbers are counted: version N is the Nth by `created_at`, so N entries
        make versions 1..N whatever their order. `latest_version` alone makes
        1..latest. No list at all, or an empty list, determines nothing.
        """
        if self.versions:
            numbered = {v.version: v.status for v in self.versions if isinstance(v.version, int)}
            if len(numbered) == len(self.versions):
                return numbered
            return dict.fromkeys(range(1, len(self.versions) + 1))
        if self.latest_version is not None and self.latest_version > 0:
            return dict.fromkeys(range(1, self.latest_version + 1))
        return None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, fallback_id: str = "") -> Spec:
        versions = data.get("versions")
        return cls(
            id=_as_str(data.get("id")) or fallback_id,
            status=normalize_status(data.get("status")),
            raw_status=_as_str(data.get("status")),
            name=_as_str(data.get("name")),
            description=_as_str(data.get("description")),
            dataset_id=_as_str(data.get("dataset_id")),
            dataset_name=_as_str(data.get("dataset_name")),
            created_at=_as_str(data.get("created_at")),
            updated_at=_as_str(data.get("updated_at")),
            latest_version=_as_int(data.get("latest_version")),
            versions=(
                tuple(SpecVersion.from_json(v) for v in versions)
                if isinstance(versions, list)
                else None
            ),
            error=_as_str(data.get("error")),
            content_unavailable_reason=_as_str(data.get("content_unavailable_reason")),
            extra={k: v for k, v in data.items() if k not in _SPEC_KNOWN},
            raw=dict(data),
        )


@dataclass(frozen=True)
class ClientStats:
    """Counters of one client since it was made (for benchmarks and tests)."""

    requests: Mapping[str, int]  # requests sent, by HTTP method
    retries: int  # requests sent again after a failure
    rate_limited: int  # 429 answers seen
    server_errors: int  # 5xx answers seen
    transport_errors: int  # connection errors and timeouts
    waited_seconds: float  # time spent in backoff and pacing, summed over threads

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total_requests": self.total_requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "server_errors": self.server_errors,
            "transport_errors": self.transport_errors,
            "waited_seconds": self.waited_seconds,
        }


# --------------------------------------------------------------------------
# The client


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DataframerClient:
    """Thread-safe client of the Dataframer runs and specs API."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        allow_insecure_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        user_agent: str = f"dfr/{__version__}",
        max_requests_per_second: float | None = None,
        adaptive_rate: bool = False,
        learn_rate: bool = False,
        rate_burst: float | None = None,
        pool_size: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        api_key = (api_key or "").strip()
        if not api_key:
            raise UsageError(
                "DATAFRAMER_API_KEY is empty or not set: export it with your Dataframer API key"
            )
        if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            # Never echo the key: say what is wrong with it, not what it is.
            raise UsageError(
                "DATAFRAMER_API_KEY holds spaces, control or non-ASCII characters;"
                " check that it was copied whole and alone"
            )
        if len(api_key) < MIN_KEY_CHARS:
            # A placeholder or a cut-off paste; and a key that short could not be
            # scrubbed from messages without mangling ordinary words.
            raise UsageError(
                f"DATAFRAMER_API_KEY is shorter than {MIN_KEY_CHARS} characters, so it is not"
                " a Dataframer API key; check that it was copied whole"
            )
        # Settings may come from flags: refuse bad ones as usage errors, not tracebacks.
        if max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, not {max_retries}")
        if max_requests_per_second is not None and not max_requests_per_second > 0:
            raise UsageError(
                f"the request rate limit must be above 0 per second, not {max_requests_per_second}"
            )
        if pool_size < 1:
            raise UsageError(f"the connection pool size must be 1 or more, not {pool_size}")
        self.base_url = self._check_base_url(base_url, allow_insecure_http)
        self._api_key = api_key
        self._key_pattern = _key_pattern(api_key)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._timeout = timeout
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # jitter, not crypto
        self._pacer = Pacer(
            max_requests_per_second=max_requests_per_second,
            adaptive=adaptive_rate,
            learn=learn_rate,
            burst=rate_burst,
            clock=clock,
            sleep=sleep,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._retries = 0
        self._rate_limited = 0
        self._server_errors = 0
        self._transport_errors = 0
        self._backoff_seconds = 0.0
        # One pool for every thread of apply: keep-alive connections are reused
        # and at most `pool_size` are open at once.
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
            transport=transport,
            # A redirect is reported, not followed: a POST must not be replayed
            # elsewhere, and a moved API means the base URL needs fixing.
            follow_redirects=False,
        )

    @staticmethod
    def _check_base_url(base_url: str, allow_insecure_http: bool) -> str:
        try:
            url = httpx.URL((base_url or "").strip())
        except httpx.InvalidURL as exc:
            raise UsageError(f"the API URL {base_url!r} is not a valid URL ({exc})") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise UsageError(
                f"the API URL {base_url!r} must start with https:// and name a host"
                f" (for example {DEFAULT_BASE_URL})"
            )
        if url.userinfo:
            raise UsageError(
                "the API URL must not carry a user name or password;"
                " put the key in DATAFRAMER_API_KEY"
            )
        if url.scheme == "http" and not allow_insecure_http and not _is_loopback(url.host):
            raise UsageError(
                f"refusing plain http:// to {url.host}: the key in DATAFRAMER_API_KEY would"
                " cross the network unencrypted; use https:// (plain http is allowed only"
                " to localhost, or when insecure HTTP is explicitly allowed)"
            )
        return str(url).rstrip("/")

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DataframerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DataframerClient(base_url={self.base_url!r})"

    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                requests=dict(self._requests),
                retries=self._retries,
                rate_limited=self._rate_limited,
                server_errors=self._server_errors,
                transport_errors=self._transport_errors,
                waited_seconds=self._backoff_seconds + self._pacer.waited_seconds,
            )

    # -- the API -----------------------------------------------------------

    def create_run(self, body: Mapping[str, Any]) -> Run:
        """Submit a run; return it as answered (the current API answers the whole run,
        the old page's only `{"id"}`). Never sent twice unless surely refused."""
        response, _ = self._send("POST", RUNS_PATH, json_body=dict(body), idempotent=False)
        if response.status_code == 404:
            # On create a 404 is about the body (the spec), not the URL.
            self._reject(response, "POST", RUNS_PATH)
        self._raise_for_status(response, "POST", RUNS_PATH, what=None)
        try:
            data = response.json()
        except ValueError:
            data = None
        run_id = _as_str(data.get("id")) if isinstance(data, dict) else None
        if not run_id:
            raise CreateAnswerUnreadable(
                self._redact(
                    f"POST {RUNS_PATH}: the API answered {self._status_text(response)} without"
                    f" a run id ({self._excerpt(response)}); the run was probably created,"
                    " and dfr will look for it before submitting again"
                ),
                status_code=response.status_code,
            )
        assert isinstance(data, dict)
        return Run.from_json(data, fallback_id=run_id)

    def get_run(self, run_id: str) -> Run:
        path = self._item_path(RUNS_PATH, run_id, "run")
        data = self._get_object(path, what=f"run {run_id}")
        return Run.from_json(data, fallback_id=run_id)

    def list_runs(self) -> list[Run]:
        return [Run.from_json(item) for item in self._get_list(RUNS_PATH)]

    def cancel_run(self, run_id: str) -> None:
        path = self._item_path(RUNS_PATH, run_id, "run") + "cancel/"
        # Cancelling twice asks for the same end state: safe to retry.
        response, _ = self._send("POST", path, idempotent=True)
        self._raise_for_status(response, "POST", path, what=f"run {run_id}")

    def delete_run(self, run_id: str) -> None:
        path = self._item_path(RUNS_PATH, run_id, "run")
        response, earlier_attempt_lost = self._send("DELETE", path, idempotent=True)
        if response.status_code == 404 and earlier_attempt_lost:
            # An earlier attempt whose answer was lost may have deleted it:
            # the run is gone, which is what was asked.
            return
        self._raise_for_status(response, "DELETE", path, what=f"run {run_id}")

    def get_spec(self, spec_id: str, include_versions: bool = False) -> Spec:
        path = self._item_path(SPECS_PATH, spec_id, "spec")
        params = {"include_versions": "true"} if include_versions else None
        data = self._get_object(path, what=f"spec {spec_id}", params=params)
        return Spec.from_json(data, fallback_id=spec_id)

    def list_specs(self) -> list[Spec]:
        return [Spec.from_json(item) for item in self._get_list(SPECS_PATH)]

    # -- plumbing ----------------------------------------------------------

    @staticmethod
    def _item_path(collection: str, item_id: str, kind: str) -> str:
        if not isinstance(item_id, str) or not item_id.strip():
            raise UsageError(f"a {kind} id is needed, got {item_id!r}")
        # Quote everything: an id is one path segment, never "../" or "?x".
        return f"{collection}{quote(item_id.strip(), safe='')}/"

    def _get_object(
        self, path: str, *, what: str, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any]:
        response, _ = self._send("GET", path, params=params, idempotent=True)
        self._raise_for_status(response, "GET", path, what=what)
        data = self._json(response, "GET", path)
        if not isinstance(data, dict):
            raise BadAnswer(
                self._redact(
                    f"GET {path}: expected a JSON object, got {type(data).__name__}"
                    f" ({self._excerpt(response)})"
                ),
                status_code=response.status_code,
            )
        return data

    def _get_list(self, path: str) -> list[Mapping[str, Any]]:
        """Every item of a list: a plain JSON array (the SDK's shape), or pages of
        `{"results": [...], "next": URL}` followed to the end."""
        items: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        page: str | None = path
        while page is not None:
            if page in seen or len(seen) >= _MAX_PAGES:
                raise BadAnswer(
                    self._redact(f"GET {path}: the list's pages do not end (at {page})")
                )
            seen.add(page)
            response, _ = self._send("GET", page, idempotent=True)
            self._raise_for_status(response, "GET", page, what=None)
            data = self._json(response, "GET", page)
            following = None
            if isinstance(data, dict) and isinstance(data.get("results"), list):
                following = self._next_page(data.get("next"), path, response)
                data = data["results"]
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise BadAnswer(
                    self._redact(
                        f"GET {page}: expected a JSON array of objects ({self._excerpt(response)})"
                    ),
                    status_code=response.status_code,
                )
            items.extend(data)
            page = following
        return items

    def _next_page(self, link: object, path: str, response: httpx.Response) -> str | None:
        """The next page's path and query, from a `next` link; None at the end.

        Only a link to this API (same scheme, host and port as the base URL) is
        followed: the key goes with every request, and must never go elsewhere.
        """
        if link is None or link == "":
            return None
        base = httpx.URL(self.base_url)
        try:
            url = base.join(link) if isinstance(link, str) else None
        except httpx.InvalidURL:
            url = None
        if url is None or (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise BadAnswer(
                self._redact(
                    f"GET {path}: the list's next page is not on this API"
                    f" ({self._excerpt(response)})"
                ),
                status_code=response.status_code,
            )
        # The client joins paths to the base URL: drop the base's own path prefix.
        prefix = base.path.rstrip("/")
        route = url.path
        if prefix and route.startswith(prefix + "/"):
            route = route[len(prefix) :]
        query = url.query.decode("ascii", "replace")
        return route + (f"?{query}" if query else "")

    def _json(self, response: httpx.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise BadAnswer(
                self._redact(
                    f"{method} {path}: the API answered {self._status_text(response)}"
                    f" with a body that is not JSON ({self._excerpt(response)})"
                ),
                status_code=response.status_code,
            ) from None

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[httpx.Response, bool]:
        """Send with the retry rules; return the first answer that is not retried.

        The answer returned is never a 429 or 5xx (those are retried or raised)
        but may be any other status, for the caller to map. The flag says
        whether an earlier attempt may have reached the server unseen.
        """
        attempt = 0
        lost_answer = False  # an attempt may have reached the server unseen
        while True:
            attempt += 1
            self._pacer.acquire()
            sent_at = self._clock()
            with self._lock:
                self._requests[method] = self._requests.get(method, 0) + 1
            retry_after: float | None = None
            status_code: int | None = None
            try:
                response = self._http.request(method, path, json=json_body, params=params)
            except _LOCAL as exc:
                raise APIUnavailable(
                    self._redact(f"{method} {path}: could not send the request ({exc})")
                ) from None
            except httpx.TransportError as exc:
                with self._lock:
                    self._transport_errors += 1
                failure = self._redact(self._describe(exc))
                if not isinstance(exc, _NOT_SENT):
                    if not idempotent:
                        raise self._outcome_unknown(method, path, failure, None) from None
                    lost_answer = True
            else:
                status_code = response.status_code
                log.debug("%s %s -> %s (attempt %d)", method, path, status_code, attempt)
                if status_code != 429 and status_code < 500:
                    self._pacer.on_success()
                    return response, lost_answer
                failure = self._redact(self._status_text(response))
                retry_after = self._retry_after(response)
                if status_code == 429:
                    with self._lock:
                        self._rate_limited += 1
                    self._pacer.on_rate_limited(sent_at)
                else:
                    with self._lock:
                        self._server_errors += 1
                    if not idempotent:
                        # A 5xx may come after the run was created (a crash
                        # while answering, a gateway timing out on a slow app).
                        raise self._outcome_unknown(method, path, failure, status_code)
                    lost_answer = True

            if attempt > self._max_retries:
                # For a create, only refusals were retried: nothing was made.
                tail = "" if idempotent else "; no run was created"
                raise APIUnavailable(
                    self._redact(f"{method} {path}: {failure} after {attempt} attempts{tail}"),
                    status_code=status_code,
                )
            delay = self._backoff(attempt, retry_after)
            if status_code == 429:
                # The limit is the account's, not this thread's: hold every thread.
                self._pacer.pause_for(delay)
            with self._lock:
                self._retries += 1
                self._backoff_seconds += delay
            log.info(
                "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
                method,
                path,
                failure,
                delay,
                attempt + 1,
                self._max_retries + 1,
            )
            if delay > 0:
                self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(self._backoff_max, max(0.0, retry_after))
        # Full jitter (AWS architecture blog): uniform in [0, capped exponential].
        ceiling = min(self._backoff_max, self._backoff_base * 2.0 ** (attempt - 1))
        return self._rng.uniform(0.0, ceiling)

    @staticmethod
    def _retry_after(response: httpx.Response) -> float | None:
        """Seconds from `Retry-After` (delta-seconds or HTTP-date), or None."""
        value = response.headers.get("Retry-After", "").strip()
        if not value:
            return None
        seconds = _as_float(value)
        if seconds is not None:
            return max(0.0, seconds)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        # Measure against the server's own clock when it sends one, so that
        # our clock's skew does not stretch or cut the wait.
        now = time.time()
        date = response.headers.get("Date")
        if date:
            try:
                server_now = email.utils.parsedate_to_datetime(date)
                if server_now.tzinfo is not None:
                    now = server_now.timestamp()
            except (TypeError, ValueError, IndexError):
                pass
        return max(0.0, when.timestamp() - now)

    def _raise_for_status(
        self, response: httpx.Response, method: str, path: str, *, what: str | None
    ) -> None:
        code = response.status_code
        if 200 <= code < 300:
            return
        status = self._status_text(response)
        if code in (401, 403):
            raise AuthError(
                self._redact(
                    f"the API refused the key in DATAFRAMER_API_KEY ({status} for {method} {path})"
                ),
                status_code=code,
            )
        if code == 404:
            if what is not None:
                message = f"{what} was not found ({status} for {method} {path})"
            else:
                message = (
                    f"{method} {path}: {status}; check the API URL"
                    f" ({self.base_url}, from --api-url or DATAFRAMER_BASE_URL)"
                )
            raise NotFoundError(self._redact(message), status_code=code)
        if 300 <= code < 400:
            location = response.headers.get("Location", "?")
            raise BadAnswer(
                self._redact(
                    f"{method} {path}: the API answered {status}, a redirect to"
                    f" {_one_line(location, _EXCERPT_CHARS)}; check the API URL ({self.base_url})"
                ),
                status_code=code,
            )
        if 400 <= code < 500:
            self._reject(response, method, path)
        raise BadAnswer(
            self._redact(f"{method} {path}: unexpected answer {status}"), status_code=code
        )

    def _reject(self, response: httpx.Response, method: str, path: str) -> NoReturn:
        detail = _api_message(response)
        message = f"{method} {path} was rejected ({self._status_text(response)})"
        if detail:
            message += f": {detail}"
        raise RequestRejected(self._redact(message), status_code=response.status_code)

    def _outcome_unknown(
        self, method: str, path: str, failure: str, status_code: int | None
    ) -> OutcomeUnknown:
        return OutcomeUnknown(
            self._redact(
                f"{method} {path}: {failure}; the run may or may not have been created,"
                " and dfr will look for it before submitting again"
            ),
            status_code=status_code,
        )

    def _describe(self, exc: httpx.TransportError) -> str:
        detail = _one_line(str(exc), _EXCERPT_CHARS) or type(exc).__name__
        host = self._http.base_url.netloc.decode("ascii", "replace")
        if isinstance(exc, httpx.ConnectTimeout):
            return f"could not connect to {host} (timed out)"
        if isinstance(exc, httpx.ConnectError):
            return f"could not connect to {host} ({detail})"
        if isinstance(exc, httpx.PoolTimeout):
            return "timed out waiting for a free connection"
        if isinstance(exc, httpx.ReadTimeout):
            return f"no answer within {self._timeout:g} s (read timeout)"
        if isinstance(exc, httpx.WriteTimeout):
            return "timed out while sending the request"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"the server broke the connection ({detail})"
        return f"connection error ({detail})"

    @staticmethod
    def _status_text(response: httpx.Response) -> str:
        reason = response.reason_phrase
        return f"{response.status_code} {reason}".strip()

    def _excerpt(self, response: httpx.Response) -> str:
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            text = response.content[:_EXCERPT_CHARS].decode("ascii", "replace")
        if not text.strip():
            return "empty body"
        return "body starts " + repr(_one_line(self._redact(text[:1000]), _EXCERPT_CHARS))

    def _redact(self, text: str) -> str:
        """`text` with every occurrence of the key as a whole token replaced by `***`."""
        return self._key_pattern.sub("***", text)


def _key_pattern(key: str) -> re.Pattern[str]:
    """Where `key` stands in a text as a token of its own.

    Not inside a word ("look" stays "look" whatever the key), but after any
    non-alphanumeric character and after a percent-escape (`%3Dkey` in a
    URL). A key of LONG_KEY_CHARS or more is no ordinary word: it is replaced
    wherever it stands, glued to other text or not.
    """
    escaped = re.escape(key)
    if len(key) >= LONG_KEY_CHARS:
        return re.compile(escaped)
    before = r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))" if key[0].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if key[-1].isalnum() else ""
    return re.compile(before + escaped + after)


def _api_message(response: httpx.Response) -> str:
    """The API's reason for a 4xx, as one readable line.

    Understands FastAPI (`{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`),
    `{"error": ...}` / `{"message": ...}`, and Django REST framework's
    `{"field": ["message"]}`; anything else becomes a short excerpt.
    """
    try:
        data = response.json()
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict):
        for key in ("detail", "error", "errors", "message"):
            if key in data:
                parts.extend(_flatten_detail(data[key]))
                break
        else:
            for key, value in data.items():
                for text in _flatten_detail(value):
                    parts.append(text if key == "non_field_errors" else f"{key}: {text}")
    elif data is not None:
        parts.extend(_flatten_detail(data))
    else:
        # Not JSON (an HTML error page, say): a short excerpt is enough.
        text = response.text if response.content else ""
        if text.strip():
            parts.append(_one_line(text, _EXCERPT_CHARS))
    return _one_line("; ".join(p for p in parts if p), _MESSAGE_CHARS)


def _flatten_detail(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _flatten_detail(item)]
    if isinstance(value, dict):
        msg = value.get("msg", value.get("message"))
        if isinstance(msg, str):
            loc = value.get("loc")
            if isinstance(loc, list):
                # FastAPI prefixes where the field was: body, query, path.
                names = [str(p) for p in loc if p not in ("body", "query", "path")]
                if names:
                    return [f"{'.'.join(names)}: {msg}"]
            return [msg]
        return [f"{k}: {t}" for k, v in value.items() for t in _flatten_detail(v)]
    return [json.dumps(value, default=str)]


def client_from_env(
    api_url: str | None,
    *,
    allow_insecure_http: bool = False,
    environ: Mapping[str, str] | None = None,
    api_key: str | None = None,
    **kw: Any,
) -> DataframerClient:
    """A client for `api_url` (else DATAFRAMER_BASE_URL, else the public API)
    with the key `api_key` (else DATAFRAMER_API_KEY).

    DFR_HTTP_TIMEOUT (seconds) sets the read timeout of every request
    (default 30), for slow networks and for tests that make the API hang.
    """
    env = os.environ if environ is None else environ
    base_url = api_url or env.get("DATAFRAMER_BASE_URL") or DEFAULT_BASE_URL
    raw_timeout = env.get("DFR_HTTP_TIMEOUT", "").strip()
    if raw_timeout and "timeout" not in kw:
        seconds = _as_float(raw_timeout)
        if seconds is None or seconds <= 0:
            raise UsageError(
                f"DFR_HTTP_TIMEOUT={raw_timeout!r}: expected a number of seconds above 0"
            )
        kw["timeout"] = seconds
    return DataframerClient(
        base_url,
        env.get("DATAFRAMER_API_KEY", "") if api_key is None else api_key,
        allow_insecure_http=allow_insecure_http,
        **kw,
    )
