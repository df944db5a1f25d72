"""The state model: what dfr remembers about the runs it submitted.

Pure values, no I/O: `State` (format version, serial, lineage, one `RunRecord`
per manifest name and the spending policy in force, a `PolicyRecord`) and
`Intent` (the write-ahead note of a create POST whose run id is not known yet).
The fields are the internal contract of docs/architecture.md;
`reconciler.state.statefile` turns them into the JSON document and back, and
the backends persist them.

There is deliberately no field that could hold the API key: a state file is
shared (committed, uploaded as a CI artefact), so the key must not be storable.

Records are frozen dataclasses; change one with `dataclasses.replace` or
`RunRecord.evolve` (which also stamps `updated_at`). The dict-valued fields
(`spec`, `labels`, ...) are plain dicts for convenience: treat them as read-only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: The state file format this dfr writes (and the newest it reads).
#: 2: records gained `used` (what the API reports it ran with).
#: 3: records gained optional `outputs` (the lock of the data a pull wrote) and
#:    `evaluation` (the run's evaluation: status and distribution gaps),
#:    and the document optional `specs` (the specs dfr made or adopted, by name).
FORMAT_VERSION = 3

# Run statuses as the API reports them (IN_PROGRESS is stored as PROCESSING).
PENDING = "PENDING"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"

#: Statuses after which a run never changes again.
TERMINAL: frozenset[str] = frozenset({SUCCEEDED, FAILED, CANCELED})
#: Every status this dfr knows; anything else is kept verbatim.
KNOWN_STATUSES: frozenset[str] = frozenset({PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELED})

# Drift markers.
DRIFT_NOT_FOUND = "not_found"

_STATUS_ALIASES = {"IN_PROGRESS": PROCESSING}


def normalize_status(status: str | None) -> str | None:
    """The status as stored: `IN_PROGRESS` becomes `PROCESSING`; unknown strings are kept.

    Unknown strings are kept as they are (not mapped to an error) so that a new
    status the API introduces is shown to the user rather than lost.
    """
    if status is None:
        return None
    return _STATUS_ALIASES.get(status, status)


def is_terminal(status: str | None) -> bool:
    """True when a run in this status will never change again."""
    return normalize_status(status) in TERMINAL


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a `Z`, millisecond precision."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_lineage() -> str:
    """A fresh lineage: the identity of a newly created state."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Intent:
    """Write-ahead record of a create POST: persisted *before* the POST is sent.

    If dfr dies before the run id is recorded, the next apply finds this intent
    and looks the run up instead of paying for a second one.
    """

    id: str
    body: dict[str, Any]
    at: str
    # The run this submission replaces: canceled once the successor is recorded,
    # also when the successor is only found (adopted) after a lost answer.
    replaces: str | None = None

    @classmethod
    def new(
        cls, body: Mapping[str, Any], *, at: str | None = None, replaces: str | None = None
    ) -> Intent:
        """An intent with a fresh local uuid4, stamped now unless `at` is given."""
        return cls(
            id=str(uuid.uuid4()),
            body=dict(body),
            at=at if at is not None else utc_now(),
            replaces=replaces,
        )


@dataclass(frozen=True)
class OutputFile:
    """One file a pull wrote: where (relative to the outputs folder, '/'
    separators), how many bytes and their sha256 (hex), and the API's file id."""

    path: str
    size: int
    sha256: str
    file_id: str


@dataclass(frozen=True)
class OutputsRecord:
    """The lock of a run's data: every file `dfr pull` wrote into `path` (the
    manifest's `outputs.path`, relative to the project root), as written.

    `run_id` is the run the files came from: after a replace the folder still
    holds the old run's data until the next pull, and this says so.
    """

    path: str
    files: tuple[OutputFile, ...]
    pulled_at: str
    run_id: str | None = None
    # The manifest's `outputs.files` globs the files were selected with (() = all):
    # changing them changes which files belong in the folder.
    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # One order (by path) whatever the caller gave: equal locks compare equal.
        ordered = tuple(sorted(self.files, key=lambda f: f.path))
        if ordered != self.files:
            object.__setattr__(self, "files", ordered)

    def by_path(self) -> dict[str, OutputFile]:
        """The files keyed by their relative path."""
        return {f.path: f for f in self.files}


@dataclass(frozen=True)
class EvaluationRecord:
    """The evaluation of a run (format 3): what dfr started or found, and its result.

    `intent` is the write-ahead note of an evaluation POST (`Intent`; its body is
    the request body): made durable before the POST, so that a lost answer is
    looked up (the run's evaluations created after `intent.at`), never sent
    blindly again. `max_gap` is the largest difference, in percentage points,
    between a property's requested and evaluated distribution, `worst_property`
    the property it is on, and `gaps` each property's largest one.
    """

    at: str  # when this record was last written (ISO-8601 UTC)
    run_id: str | None = None  # the run evaluated
    id: str | None = None  # None while only the intent is known
    status: str | None = None  # PENDING, PROCESSING, SUCCEEDED, FAILED
    model: str | None = None  # the evaluation model asked for (None: the API's default)
    intent: Intent | None = None
    max_gap: float | None = None
    worst_property: str | None = None
    gaps: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # a FAILED evaluation's error_message, or why the POST was refused

    @property
    def is_final(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)


@dataclass(frozen=True)
class RunRecord:
    """Everything dfr knows about the run of one manifest name (see docs/architecture.md)."""

    name: str
    updated_at: str
    run_id: str | None = None
    status: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    intent: Intent | None = None
    submitted_at: str | None = None
    created_at: str | None = None
    completed_at: str | None = None
    attempts: int = 0
    last_error: dict[str, Any] | None = None
    failure_reason: str | None = None
    samples_completed: int | None = None
    samples_failed: int | None = None
    total_cost: float | None = None
    drift: str | None = None
    previous_run_ids: list[str] = field(default_factory=list)
    # What the API reports the run used: `spec_version` and the `runtime_params`
    # fields (a flat mapping like a body). `spec` is what was sent; the two
    # differ where the manifest left a field to the API. Empty until read.
    used: dict[str, Any] = field(default_factory=dict)
    # The manifest file that declared this name (relative to the project root,
    # '/' separators); None when unknown. Decides whether a run missing from the
    # manifests read is an orphan or out of this plan's scope.
    source: str | None = None
    # The API base URL the run belongs to (a run id means nothing elsewhere);
    # None when unknown (states before format 2).
    api: str | None = None
    # The files the last `dfr pull` wrote for this run (format 3); None: never pulled.
    outputs: OutputsRecord | None = None
    # The run's evaluation (format 3): None until one is started or found.
    evaluation: EvaluationRecord | None = None

    def __post_init__(self) -> None:
        # The one normalisation the model owns: IN_PROGRESS is stored as
        # PROCESSING whichever layer built the record.
        normalized = normalize_status(self.status)
        if normalized != self.status:
            object.__setattr__(self, "status", normalized)

    @classmethod
    def new(
        cls,
        name: str,
        *,
        spec: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        now: str | None = None,
        **fields: Any,
    ) -> RunRecord:
        """A record for `name` with no run yet; `now` (default: the clock) stamps `updated_at`."""
        return cls(
            name=name,
            updated_at=now if now is not None else utc_now(),
            spec=dict(spec or {}),
            labels=dict(labels or {}),
            **fields,
        )

    def evolve(self, *, now: str | None = None, **changes: Any) -> RunRecord:
        """A copy with `changes` applied and `updated_at` stamped (now, or `now`)."""
        return dataclasses.replace(
            self, updated_at=now if now is not None else utc_now(), **changes
        )

    @property
    def is_terminal(self) -> bool:
        """True when the recorded status is final (SUCCEEDED, FAILED, CANCELED)."""
        return self.status in TERMINAL

    @property
    def end_note(self) -> str:
        """': <why>' for a FAILED run (see `failure_summary`), '' for any other."""
        return f": {self.failure_summary}" if self.status == FAILED else ""

    @property
    def failure_summary(self) -> str:
        """What is known of why a run failed, as one phrase.

        The current API gives no reason (its run model has no such field), so
        this is what it does say: how many samples failed. A reason recorded
        from an older API is used when present.
        """
        if self.failure_reason:
            return self.failure_reason
        counts = [
            f"{n:,} sample{'' if n == 1 else 's'} {word}"
            for n, word in ((self.samples_completed, "completed"), (self.samples_failed, "failed"))
            if n
        ]
        tail = f" ({', '.join(counts)})" if counts else ""
        return f"the API gives no reason{tail}; see the run in Dataframer"


def policy_digest(settings: Mapping[str, Any]) -> str:
    """The sha256 (hex) of a policy's settings as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class PolicyRecord:
    """The spending policy in force for a state: dfr.yaml's `policy:` when it was recorded.

    Kept with the state (not only in dfr.yaml) so that another `--config`,
    `DFR_CONFIG` or folder cannot drop or loosen it for the runs this state pays
    for: plan and apply enforce it and refuse another one without `--policy-change`.
    """

    settings: dict[str, Any]  # canonical: only the limits set, lists sorted
    sha256: str  # policy_digest(settings)
    at: str  # when it was recorded
    by: str | None = None  # user@host (pid) of the dfr that recorded it
    source: str | None = None  # the project file it came from, as that command showed it

    @classmethod
    def new(
        cls, settings: Mapping[str, Any], *, by: str | None = None, source: str | None = None
    ) -> PolicyRecord:
        return cls(dict(settings), policy_digest(settings), utc_now(), by, source)


# --------------------------------------------------------------------------- specs
#: What a spec intent was sent for.
SPEC_CREATE = "create"
SPEC_UPDATE = "update"


@dataclass(frozen=True)
class SpecVersionRecord:
    """One version of a spec as dfr saw it: version N is the Nth of the API's list.

    `sha256`: of the version's content normalised by `reconciler.speccontent`
    (None when the API keeps it in the customer's cloud, or it does not parse);
    `by_dfr`: this dfr made it (a create's first version, or an update).
    """

    number: int
    sha256: str | None = None
    at: str | None = None
    by_dfr: bool = False


@dataclass(frozen=True)
class SpecIntent:
    """Write-ahead note of a spec create POST or update PUT, durable BEFORE it is sent.

    `body`: the create body, or `{"content_yaml": ...}` for an update;
    `content_sha256`: an update's normalised content digest, what a lost answer
    is resolved by (compared with the versions' digests).
    """

    id: str
    kind: str  # SPEC_CREATE or SPEC_UPDATE
    body: dict[str, Any]
    at: str
    content_sha256: str | None = None

    @classmethod
    def new(
        cls,
        kind: str,
        body: Mapping[str, Any],
        *,
        at: str | None = None,
        content_sha256: str | None = None,
    ) -> SpecIntent:
        return cls(str(uuid.uuid4()), kind, dict(body), at or utc_now(), content_sha256)


@dataclass(frozen=True)
class SpecRecord:
    """Everything dfr knows about one spec (a `kind: Spec` manifest's, or adopted).

    `body` is the create body dfr sent ({} for a spec adopted with `dfr import
    spec`); `versions` every version made or seen, oldest first; `drift`
    "not_found" when the API answered 404 for it.
    """

    name: str
    updated_at: str
    spec_id: str | None = None
    status: str | None = None
    error: str | None = None
    versions: tuple[SpecVersionRecord, ...] = ()
    intent: SpecIntent | None = None
    body: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    api: str | None = None
    drift: str | None = None

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.versions, key=lambda v: v.number))
        if ordered != self.versions:
            object.__setattr__(self, "versions", ordered)

    @classmethod
    def new(cls, name: str, *, now: str | None = None, **fields: Any) -> SpecRecord:
        return cls(name=name, updated_at=now or utc_now(), **fields)

    def evolve(self, *, now: str | None = None, **changes: Any) -> SpecRecord:
        """A copy with `changes` applied and `updated_at` stamped (now, or `now`)."""
        return dataclasses.replace(self, updated_at=now or utc_now(), **changes)

    @property
    def latest(self) -> SpecVersionRecord | None:
        return self.versions[-1] if self.versions else None

    @property
    def latest_number(self) -> int | None:
        return self.versions[-1].number if self.versions else None


@dataclass(frozen=True)
class State:
    """The recorded state: a versioned, numbered collection of run records.

    `serial` grows by one per change; `lineage` identifies this state across
    its versions (a state with another lineage is a different state, so a saved
    plan or a journal of another lineage must never be applied to it).
    """

    format_version: int
    serial: int
    lineage: str
    runs: dict[str, RunRecord] = field(default_factory=dict)
    # The policy in force (format 2, optional); None: none recorded yet.
    policy: PolicyRecord | None = None
    # The specs dfr made or adopted, by their unique name (format 3, optional).
    specs: dict[str, SpecRecord] = field(default_factory=dict)

    @classmethod
    def empty(cls, lineage: str | None = None) -> State:
        """A state with no runs, serial 0 and (unless given) a fresh uuid4 lineage."""
        return cls(
            format_version=FORMAT_VERSION,
            serial=0,
            lineage=lineage if lineage is not None else new_lineage(),
            runs={},
        )

    def get(self, name: str) -> RunRecord | None:
        """The record of `name`, or None."""
        return self.runs.get(name)

    def names(self) -> list[str]:
        """Recorded names, sorted."""
        return sorted(self.runs)

    def with_record(self, record: RunRecord) -> State:
        """A new state with `record` stored under its name and serial + 1."""
        runs = dict(self.runs)
        runs[record.name] = record
        return dataclasses.replace(self, serial=self.serial + 1, runs=runs)

    def without(self, name: str) -> State:
        """A new state without `name` and serial + 1 (a change even if `name` was absent)."""
        runs = dict(self.runs)
        runs.pop(name, None)
        return dataclasses.replace(self, serial=self.serial + 1, runs=runs)

    def with_spec(self, record: SpecRecord) -> State:
        """A new state with the spec `record` stored under its name and serial + 1."""
        return dataclasses.replace(
            self, serial=self.serial + 1, specs={**self.specs, record.name: record}
        )

    def without_spec(self, name: str) -> State:
        """A new state without the spec `name` and serial + 1."""
        specs = dict(self.specs)
        specs.pop(name, None)
        return dataclasses.replace(self, serial=self.serial + 1, specs=specs)
