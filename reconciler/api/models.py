"""The API's values: runs and specs as frozen dataclasses, parsed tolerantly.

An answer's fields are read with the tolerant parsers below: a field of the
wrong type becomes None rather than an error, a number is accepted as a clean
string too, and the fields this version of dfr does not know are kept in
`extra` (the whole object in `raw`). Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

__all__ = [
    "TERMINAL_STATUSES",
    "ClientStats",
    "GeneratedFile",
    "Run",
    "Spec",
    "SpecVersion",
    "normalize_status",
]

TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})

# The seed page says IN_PROGRESS, the SDK says PROCESSING: one name inside dfr.
_STATUS_ALIASES = {"IN_PROGRESS": "PROCESSING", "CANCELLED": "CANCELED"}


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


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str) and _INT_RE.fullmatch(value.strip()):
        return int(value.strip())
    return None


def as_count(value: object) -> int | None:
    """A count (0 or more) as `as_int` reads it; None for a negative one, which counts nothing."""
    number = as_int(value)
    return number if number is not None and number >= 0 else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
        number = float(value.strip())
    else:
        return None
    return number if math.isfinite(number) else None


def as_str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def as_dict(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


def str_fields(data: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """Each named field of `data` read with `as_str`, by name: a parser's plain fields."""
    return {name: as_str(data.get(name)) for name in names}


def unknown_fields(cls: type, data: Mapping[str, Any], *also: str) -> dict[str, Any]:
    """The fields of `data` that `cls` (a dataclass) has no field for, nor reads as one
    of `also` (another spelling): what lands in its `extra`."""
    known = {f.name for f in fields(cls)}.union(also)
    return {k: v for k, v in data.items() if k not in known}


@dataclass(frozen=True)
class GeneratedFile:
    """One output file of a finished run."""

    id: str | None = None
    path: str | None = None
    file_type: str | None = None
    size_bytes: int | None = None
    # A checksum, when the API gives one (the SDK's `File` has it; a run's
    # `generated_files` so far does not): lower-case hex, else None.
    sha256: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> GeneratedFile:
        if not isinstance(data, dict):
            return cls(path=as_str(data))
        return cls(
            **str_fields(data, "id", "path", "file_type"),
            size_bytes=as_count(data.get("size_bytes")),
            sha256=as_sha256(data.get("sha256")),
            extra=unknown_fields(cls, data),
        )


_SHA256_RE = re.compile(r"[0-9a-f]{64}")


def as_sha256(value: object) -> str | None:
    """A sha256 as lower-case hex (64 digits), or None for anything else."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    return value if _SHA256_RE.fullmatch(value) else None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What a run and a spec both are: an object the API answered with.

    `id` is "" only for a list entry that came without one. `status` is
    normalised (IN_PROGRESS -> PROCESSING, unknown strings kept as sent);
    `raw_status` is the spelling the API used. `extra` holds the fields this
    version of dfr does not know; `raw` the whole object as received.
    """

    id: str
    status: str | None = None
    raw_status: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    # Fields of the API's object read although the class has no field of that name.
    ALSO_KNOWN: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def answer_fields(cls, data: Mapping[str, Any], fallback_id: str) -> dict[str, Any]:
        """This class's fields above, read from `data`."""
        return {
            "id": as_str(data.get("id")) or fallback_id,
            "status": normalize_status(data.get("status")),
            "raw_status": as_str(data.get("status")),
            "extra": unknown_fields(cls, data, *cls.ALSO_KNOWN),
            "raw": dict(data),
        }


@dataclass(frozen=True)
class Run(Answer):
    """A generation run as the API reports it (the SDK's RunRetrieveResponse). Every
    field but `id` may be None. The run model has no failure reason: a FAILED run says
    only how many samples failed."""

    spec_id: str | None = None  # ids may come back in another letter case than sent
    spec_name: str | None = None
    spec_version: int | None = None  # the version it generates from
    created_at: str | None = None  # ISO 8601, as sent
    completed_at: str | None = None  # None until it ends
    created_by_email: str | None = None  # who made it
    dataset_id: str | None = None  # the spec's seed dataset
    dataset_name: str | None = None
    dataset_type: str | None = None
    samples_completed: int | None = None  # so far
    samples_failed: int | None = None
    total_cost: float | None = None  # dollars
    # Not in a list's entries: only a run read by its id has these two.
    generated_files: tuple[GeneratedFile, ...] = ()  # when done
    runtime_params: Mapping[str, Any] | None = None  # the values it used (reconciler.matching)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, fallback_id: str = "") -> Run:
        files = data.get("generated_files")
        return cls(
            **cls.answer_fields(data, fallback_id),
            **str_fields(data, "spec_id", "spec_name", "created_at", "completed_at"),
            **str_fields(data, "created_by_email", "dataset_id", "dataset_name", "dataset_type"),
            spec_version=as_int(data.get("spec_version")),
            samples_completed=as_count(data.get("samples_completed")),
            samples_failed=as_count(data.get("samples_failed")),
            total_cost=as_float(data.get("total_cost")),
            generated_files=(
                tuple(GeneratedFile.from_json(f) for f in files) if isinstance(files, list) else ()
            ),
            runtime_params=as_dict(data.get("runtime_params")),
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
            return cls(version=as_int(data))
        version = data.get("version", data.get("version_number"))
        return cls(
            version=as_int(version),
            **str_fields(data, "id", "created_at"),
            status=normalize_status(data.get("status")),
            extra=unknown_fields(cls, data, "version_number"),
        )


@dataclass(frozen=True)
class Spec(Answer):
    """A spec (PROCESSING, SUCCEEDED or FAILED); runs need a SUCCEEDED one.

    `versions` is None unless the API sent a list (ask with include_versions).
    """

    name: str | None = None
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
    # The content is read by speccontent from `raw`; it is not extra.
    ALSO_KNOWN = ("content_yaml",)

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
            **cls.answer_fields(data, fallback_id),
            **str_fields(data, "name", "description", "dataset_id", "dataset_name", "error"),
            **str_fields(data, "created_at", "updated_at", "content_unavailable_reason"),
            latest_version=as_int(data.get("latest_version")),
            versions=(
                tuple(SpecVersion.from_json(v) for v in versions)
                if isinstance(versions, list)
                else None
            ),
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
