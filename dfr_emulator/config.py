"""Emulator settings: every knob in one dataclass, plus a manual clock for tests.

`EmulatorConfig` is what `dfr emulator` flags map onto one to one, and what
`Emulator.configure(**knobs)` / `POST /_emulator/configure` change while the
server runs. Every fault knob is off by default, so a bare `EmulatorConfig()`
is a well-behaved API whose runs go PENDING -> PROCESSING -> SUCCEEDED.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The two spellings of the running status: the SDK's and the seed page's.
STATUS_SPELLINGS = ("PROCESSING", "IN_PROGRESS")

#: Fields fixed when the emulator is built; `configure` refuses to change them.
#: `legacy` is one of them: a run keeps the shape of the mode it was made in.
FIXED_FIELDS = frozenset({"port", "clock", "legacy", "file_port"})

_RATE_FIELDS = (
    "failure_rate",
    "post_5xx_after_create_rate",
    "fail_rate",
    "ambiguous_post_rate",
    "reset_rate",
    "hang_rate",
    "garbage_rate",
    "missing_fields_rate",
    "unknown_status_rate",
    "evaluation_fail_rate",
    "ambiguous_evaluation_post_rate",
    "evaluation_5xx_before_create_rate",
    "evaluation_5xx_after_create_rate",
    "spec_fail_rate",
    "spec_ambiguous_create_rate",
    "spec_ambiguous_update_rate",
    "spec_5xx_before_create_rate",
    "spec_5xx_after_create_rate",
    "spec_5xx_before_update_rate",
    "spec_5xx_after_update_rate",
)
_SECONDS_FIELDS = (
    "pending_seconds",
    "processing_seconds",
    "latency",
    "hang_seconds",
    "download_url_ttl",
    "zip_build_seconds",
    "evaluation_pending_seconds",
    "evaluation_processing_seconds",
    "spec_processing_seconds",
)
_COUNT_FIELDS = (
    "ambiguous_posts",
    "fail_next",
    "page_size",
    "zip_build_polls",
    "truncated_downloads",
    "truncate_after_bytes",
    "wrong_size_downloads",
    "expired_urls",
    "evaluation_fail_next",
    "ambiguous_evaluation_posts",
    "spec_fail_next",
    "spec_ambiguous_creates",
    "spec_ambiguous_updates",
)


@dataclass(frozen=True)
class EmulatorConfig:
    """Every setting of the emulator. Rates are shares in [0, 1]; seconds are floats.

    Server:
      port: TCP port on 127.0.0.1; 0 picks a free one (see `Emulator.base_url`).
      legacy: answer as the old reference page describes the API instead of as the
        official SDK (pydataframer 0.19.2) does: its 11 create fields and 12 models,
        `{"id"}` as the create answer, `runtime_params` with `enable_revisions`,
        runs with `started_at` and, when FAILED, `error`/`failure_reason`, specs with
        `latest_version` and numbered versions, IN_PROGRESS for running runs.
        Fixed when the emulator is built (like `port`).
      page_size: when > 0, `GET /runs/` and `GET /specs/` answer pages of this many
        items, Django REST style: `{"count", "next", "previous", "results"}`, with
        `?page=N` (1-based) and `next` the absolute URL of the next page or null;
        a page past the end is 404 `{"detail": "Invalid page."}`. 0 (default): one
        plain JSON array, as the SDK expects.
      api_key: when set, only `Authorization: Bearer <api_key>` is accepted (else 403);
        when None, any non-empty bearer token is accepted. A missing header is 401.
      log_requests: write one line per request to stderr (never headers, so never the key).
      user_email: `created_by_email` of every run.

    Runs and specs:
      pending_seconds: how long a new run stays PENDING.
      processing_seconds: how long it then stays PROCESSING before its outcome.
      time_scale: lifecycle seconds per clock second (10.0 makes runs finish 10x faster).
      clock: a monotonic clock in seconds driving the lifecycle (default
        `time.monotonic`); pass a `ManualClock` to move time only by hand.
      status_spelling: "PROCESSING" (SDK) or "IN_PROGRESS" (seed page) for running
        runs; None (default): the mode's own (IN_PROGRESS when `legacy`).
      accept_any_spec: any UUID `spec_id` is a SUCCEEDED spec with versions 1..10.
      fail_rate: share of new runs that end FAILED instead of SUCCEEDED.
      fail_next: the next N runs created end FAILED (counts down).

    Faults (all deterministic for a given `seed` and request order):
      seed: seeds every random decision below.
      latency: seconds of delay before every API request is looked at (so every
        answer, 429s and drops included, comes that much later).
      failure_rate: share of API requests answered 500/502/503 without acting.
      post_5xx_after_create_rate: share of create-run POSTs that create the run
        and then answer 500/502/503 anyway.
      rate_limit: admitted requests per second over a sliding 1 s window (whole
        requests, at least 1); the rest get 429 without being acted on. Refused
        requests do not count against the window. None or 0 means no limit.
        Real time, not the lifecycle clock.
      retry_after: send `Retry-After` (whole seconds, at least 1) with each 429.
      ambiguous_post_rate: share of create-run POSTs that create the run and then
        drop the connection without any answer.
      ambiguous_posts: the next N create-run POSTs do the same (counts down).
      reset_rate: share of API requests whose connection is dropped, unanswered,
        before anything is done.
      hang_rate: share of API requests that are carried out and then answered only
        after `hang_seconds` (longer than the client's read timeout).
      hang_seconds: how long a hung answer waits (bounded, so the thread ends).
      garbage_rate: share of successful answers replaced by 200 with a non-JSON body.
      missing_fields_rate: share of run objects (create answers and list items
        included) that lose a few fields, `status` or `id` among the candidates.
        It only ever removes keys: what is left is still what the SDK describes.
      unknown_status_rate: share of run objects (create answers included, when they
        carry a status) whose `status` is replaced by `unknown_status_value`.
      unknown_status_value: the made-up status those runs show.

    Generated files and evaluations (see `files`, `downloads`, `evaluations`):
      file_port: TCP port of the file host, the second listener on 127.0.0.1 that
        serves presigned URLs (0: a free one). Fixed when the emulator is built.
      download_url_ttl: lifecycle seconds a presigned URL stays valid (403 after).
      zip_build_polls / zip_build_seconds: the ZIP of a run's files answers 202 to
        this many requests, and for at least this many lifecycle seconds, before 200.
      truncated_downloads: the next N file-host downloads stop after
        `truncate_after_bytes` bytes (half the file when it is not larger) and
        close the connection, `Content-Length` announcing the whole (counts down).
      wrong_size_downloads: the next N downloads serve bytes that differ from the
        announced `size_bytes` (counts down).
      expired_urls: the next N presigned URLs handed out are already expired:
        403 from their first use on (counts down).
      download_latency: real seconds the file host waits before each download's
        body, so that overlapping downloads show in its `max_in_flight` counter.
      customer_hosted: the company runs its own data plane: file answers carry a
        data-plane pointer instead of a `download_url` (501 to a client that does
        not send `X-Data-Plane-Follow`), evaluations made meanwhile keep their
        results there (`content_location`), and the SDK's token, grant and
        gateway calls work (the gateway is on the file host).
      evaluation_pending_seconds / evaluation_processing_seconds: an evaluation's
        PENDING and PROCESSING phases. evaluation_fail_rate / evaluation_fail_next:
        evaluations that end FAILED. evaluation_gap: the largest gap (percentage
        points) between requested and evaluated distributions; None: one per run.
      ambiguous_evaluation_post_rate / ambiguous_evaluation_posts: evaluation POSTs
        that create the evaluation, then drop the connection (a lost answer).
        evaluation_5xx_before_create_rate: answered 500/502/503 without acting;
        evaluation_5xx_after_create_rate: created, then answered 500/502/503.

    Specs made through the API (`POST /specs/`, `PUT /specs/{id}/`, see `specs`):
      spec_processing_seconds: how long a new spec stays PROCESSING (lifecycle
        seconds) before it is SUCCEEDED (version 1 generated) or FAILED (`error`).
      spec_fail_rate / spec_fail_next / spec_fail_pattern: a new spec ends FAILED
        by chance, for the next N creates (counts down), or when its name matches
        the regular expression (`re.search`).
      spec_ambiguous_create_rate / spec_ambiguous_creates, and the same for
        updates: the write takes effect (spec stored, version appended), then the
        connection drops without an answer, as `ambiguous_post_rate` does for runs.
      spec_5xx_before_create_rate / spec_5xx_before_update_rate: answered
        500/502/503 without acting. spec_5xx_after_create_rate /
        spec_5xx_after_update_rate: carried out, then answered 500/502/503.
    """

    port: int = 0
    legacy: bool = False
    page_size: int = 0
    api_key: str | None = None
    log_requests: bool = False
    user_email: str = "emulator@dataframer.local"

    pending_seconds: float = 2.0
    processing_seconds: float = 5.0
    time_scale: float = 1.0
    clock: Callable[[], float] | None = field(default=None, compare=False)
    status_spelling: str | None = None
    accept_any_spec: bool = False
    fail_rate: float = 0.0
    fail_next: int = 0

    seed: int = 0
    latency: float = 0.0
    failure_rate: float = 0.0
    post_5xx_after_create_rate: float = 0.0
    rate_limit: float | None = None
    retry_after: bool = True
    ambiguous_post_rate: float = 0.0
    ambiguous_posts: int = 0
    reset_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 10.0
    garbage_rate: float = 0.0
    missing_fields_rate: float = 0.0
    unknown_status_rate: float = 0.0
    unknown_status_value: str = "QUEUED"

    file_port: int = field(default=0, metadata={"help": "port of the file host (0: any free)"})
    download_url_ttl: float = field(
        default=3600.0, metadata={"help": "seconds a presigned download URL stays valid"}
    )
    zip_build_polls: int = field(
        default=1, metadata={"help": "202 answers the ZIP of a run's files gives before 200"}
    )
    zip_build_seconds: float = field(
        default=0.0, metadata={"help": "seconds a ZIP of a run's files takes to build, at least"}
    )
    truncated_downloads: int = field(
        default=0, metadata={"help": "the next N downloads stop after --truncate-after-bytes"}
    )
    truncate_after_bytes: int = field(
        default=65536, metadata={"help": "bytes a truncated download sends before it closes"}
    )
    wrong_size_downloads: int = field(
        default=0, metadata={"help": "the next N downloads serve other bytes than size_bytes"}
    )
    expired_urls: int = field(
        default=0, metadata={"help": "the next N presigned URLs are expired (403) from first use"}
    )
    download_latency: float = field(
        default=0.0,
        metadata={"help": "real seconds the file host waits before each download's body"},
    )
    customer_hosted: bool = field(
        default=False,
        metadata={"help": "answer file downloads and evaluation results with data-plane pointers"},
    )
    evaluation_pending_seconds: float = field(
        default=1.0, metadata={"help": "seconds a new evaluation stays PENDING"}
    )
    evaluation_processing_seconds: float = field(
        default=4.0, metadata={"help": "seconds an evaluation then stays PROCESSING"}
    )
    evaluation_fail_rate: float = field(
        default=0.0, metadata={"help": "share of new evaluations that end FAILED"}
    )
    evaluation_fail_next: int = field(
        default=0, metadata={"help": "the next N evaluations created end FAILED"}
    )
    evaluation_gap: float | None = field(
        default=None,
        metadata={"help": "largest requested-vs-evaluated gap in points (default: per run)"},
    )
    ambiguous_evaluation_posts: int = field(
        default=0, metadata={"help": "the next N evaluation POSTs create it, then drop the answer"}
    )
    ambiguous_evaluation_post_rate: float = field(
        default=0.0, metadata={"help": "share of evaluation POSTs that create it, then drop"}
    )
    evaluation_5xx_before_create_rate: float = field(
        default=0.0, metadata={"help": "share of evaluation POSTs answered 5xx without acting"}
    )
    evaluation_5xx_after_create_rate: float = field(
        default=0.0, metadata={"help": "share of evaluation POSTs that create it, then 5xx"}
    )

    spec_processing_seconds: float = field(
        default=3.0,
        metadata={"help": "seconds a new spec stays PROCESSING before SUCCEEDED or FAILED"},
    )
    spec_fail_rate: float = field(
        default=0.0, metadata={"help": "share of new specs that end FAILED (with an error)"}
    )
    spec_fail_next: int = field(
        default=0, metadata={"help": "the next N new specs end FAILED (counts down)"}
    )
    spec_fail_pattern: str | None = field(
        default=None,
        metadata={"help": "new specs whose name matches this regular expression end FAILED"},
    )
    spec_ambiguous_create_rate: float = field(
        default=0.0,
        metadata={"help": "share of spec creates that take effect, then drop the connection"},
    )
    spec_ambiguous_creates: int = field(
        default=0,
        metadata={"help": "the next N spec creates take effect, then drop the connection"},
    )
    spec_ambiguous_update_rate: float = field(
        default=0.0,
        metadata={"help": "share of spec updates that take effect, then drop the connection"},
    )
    spec_ambiguous_updates: int = field(
        default=0,
        metadata={"help": "the next N spec updates take effect, then drop the connection"},
    )
    spec_5xx_before_create_rate: float = field(
        default=0.0, metadata={"help": "share of spec creates answered 5xx without acting"}
    )
    spec_5xx_after_create_rate: float = field(
        default=0.0, metadata={"help": "share of spec creates that take effect, then answer 5xx"}
    )
    spec_5xx_before_update_rate: float = field(
        default=0.0, metadata={"help": "share of spec updates answered 5xx without acting"}
    )
    spec_5xx_after_update_rate: float = field(
        default=0.0, metadata={"help": "share of spec updates that take effect, then answer 5xx"}
    )

    def __post_init__(self) -> None:
        # Fail at construction, so a bad flag or configure() body is refused whole.
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must be non-empty when set")
        for name in _RATE_FIELDS:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in _SECONDS_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        for name in _COUNT_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, not {getattr(self, name)}")
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, not {self.time_scale}")
        if self.rate_limit is not None and self.rate_limit < 0:
            raise ValueError(f"rate_limit must be >= 0, not {self.rate_limit}")
        if self.status_spelling is not None and self.status_spelling not in STATUS_SPELLINGS:
            raise ValueError(f"status_spelling must be one of {', '.join(STATUS_SPELLINGS)}")
        if not self.unknown_status_value:
            raise ValueError("unknown_status_value must be non-empty")
        if not 0 <= self.file_port <= 65535:
            raise ValueError(f"file_port must be 0..65535, not {self.file_port}")
        if self.evaluation_gap is not None and not 0 <= self.evaluation_gap <= 100:
            raise ValueError(f"evaluation_gap must be between 0 and 100, not {self.evaluation_gap}")
        if self.spec_fail_pattern is not None:
            try:
                re.compile(self.spec_fail_pattern)
            except re.error as exc:
                raise ValueError(f"spec_fail_pattern is not a regular expression: {exc}") from None

    @property
    def running_status(self) -> str:
        """How a running run's status is spelled: `status_spelling`, else the mode's."""
        if self.status_spelling is not None:
            return self.status_spelling
        return "IN_PROGRESS" if self.legacy else "PROCESSING"

    def replace(self, knobs: Mapping[str, Any]) -> EmulatorConfig:
        """A copy with `knobs` changed; ValueError for unknown or fixed names, bad values."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(knobs) - names)
        if unknown:
            raise ValueError(f"unknown emulator setting(s): {', '.join(unknown)}")
        fixed = sorted(set(knobs) & FIXED_FIELDS)
        if fixed:
            raise ValueError(f"cannot change while running: {', '.join(fixed)}")
        try:
            return dataclasses.replace(self, **knobs)
        except TypeError as exc:  # pragma: no cover - names were checked above
            raise ValueError(str(exc)) from exc

    def knobs(self) -> dict[str, Any]:
        """The settings as JSON-friendly values (the clock is left out)."""
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "clock"
        }


def coerce_knobs(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check the JSON types of a `/_emulator/configure` body against the fields.

    JSON has no int/float distinction that dataclasses would enforce, and a
    string "0.5" must not slip into a rate and fail later inside a request.
    """
    # With PEP 563 the annotations are strings such as "float | None".
    types = {f.name: str(f.type) for f in dataclasses.fields(EmulatorConfig)}
    out: dict[str, Any] = {}
    for name, value in raw.items():
        kind = types.get(name)
        if kind is None:
            out[name] = value  # EmulatorConfig.replace names it as unknown
            continue
        if _fits(kind, value):
            out[name] = float(value) if kind.startswith("float") and value is not None else value
        else:
            raise ValueError(f"{name}: expected {kind}, got {type(value).__name__}")
    return out


def _fits(kind: str, value: object) -> bool:
    """Whether a JSON value fits a field annotated `kind` (a string: PEP 563)."""
    if value is None:
        return kind.endswith("| None")
    if isinstance(value, bool):
        return kind == "bool"
    if kind.startswith("float"):
        return isinstance(value, (int, float))
    if kind == "int":
        return isinstance(value, int)
    if kind.startswith("str"):
        return isinstance(value, str)
    return False


class ManualClock:
    """A clock that moves only when told to: `clock.advance(5)`. Thread-safe."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        with self._lock:
            self._now += seconds


def default_clock() -> float:
    return time.monotonic()
