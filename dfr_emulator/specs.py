"""Specs: the built-in ones and those made through the API, their versions and lifecycle.

A spec made by `POST /specs/` is PROCESSING for `spec_processing_seconds` of
emulator time, then SUCCEEDED (its generated YAML becomes version 1) or
FAILED (with `error`; no version). As with runs, the status is computed from
the clock when read, never stored as it moves. `PUT /specs/{id}/` appends a
version to a SUCCEEDED spec; earlier ones are kept. A version has no number:
version N is the Nth by `created_at`, and each new one is made strictly later
than the one before, even when the clock has not moved.

`SpecBook` holds the specs (thread-safe, one lock); `SpecApi` answers the spec
routes but the list (which `app` pages): request in, `(status, payload)` out.
Names are unique among all specs (409 on a duplicate), compared exactly.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dfr_emulator import spec_content
from dfr_emulator.seeds import ANY_SPEC_VERSIONS, SEED_SPECS, SPEC_RUNTIME_PARAMS, SeedSpec
from dfr_emulator.store import FAILED, PROCESSING, SUCCEEDED, ApiProblem, Timeline, iso
from dfr_emulator.validation import json_body

if TYPE_CHECKING:
    from dfr_emulator.config import EmulatorConfig
    from dfr_emulator.faults import Dice, Stats
    from dfr_emulator.store import Store

#: Keys of a spec list item (the SDK's SpecListResponseItem).
SPEC_LIST_FIELDS = (
    "id",
    "name",
    "status",
    "description",
    "dataset_id",
    "dataset_name",
    "dataset_type",
    "created_at",
)

#: `content_unavailable_reason` of a spec whose YAML is in the customer's cloud.
IN_DATA_PLANE = "spec_content_in_data_plane"

#: Wall-clock date the seed specs claim they were made on (fixed: stable output).
SEED_EPOCH = datetime(2025, 11, 3, 9, 30, tzinfo=timezone.utc).timestamp()

#: Each new version is at least this much later than the previous one (seconds).
VERSION_GAP = 0.001

#: Why a spec generation fails (picked with the seeded dice).
SPEC_FAILURE_REASONS = (
    "Spec generation model returned an invalid spec after 3 attempts",
    "Seed dataset could not be parsed: 2 files are not valid UTF-8",
    "Upstream model provider rate limit exceeded; spec generation aborted",
    "generation_objectives are too vague to derive any data property",
)

NOT_FOUND: dict[str, Any] = {"detail": "Not found."}


@dataclass(frozen=True)
class Version:
    """One version: its YAML (or a data-plane pointer) and when it was made (wall time)."""

    content_yaml: str | None
    content_location: dict[str, Any] | None
    wall_t: float

    def render(self) -> dict[str, Any]:
        return {
            "content_yaml": self.content_yaml,
            "content_location": self.content_location,
            "created_at": iso(self.wall_t),
        }


@dataclass
class Spec:
    """One spec: `seed` is what never changes (id, name, dataset, ...), the rest moves."""

    seed: SeedSpec
    created_at: float  # wall time
    runtime_params: dict[str, Any]
    outcome: str  # the status once settled
    error: str | None = None
    ready_t: float | None = None  # emulator time it settles; None: settled from the start
    stored: list[Version] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.seed.id

    @property
    def name(self) -> str:
        return self.seed.name

    @classmethod
    def from_seed(cls, seed: SeedSpec, created_at: float) -> Spec:
        spec = cls(seed, created_at, dict(SPEC_RUNTIME_PARAMS), seed.status, seed.error)
        if seed.status == SUCCEEDED:
            for number in range(1, seed.versions + 1):
                # Each version a day after the previous one.
                wall_t = created_at + (number - 1) * 86400.0
                if seed.data_plane:
                    location = seed.content_location(number)
                    spec.stored.append(Version(None, location, wall_t))
                else:
                    spec.stored.append(Version(seed.content_yaml(number), None, wall_t))
        return spec

    def status(self, now: float) -> str:
        if self.ready_t is not None and now < self.ready_t:
            return PROCESSING
        return self.outcome

    def versions(self, now: float) -> list[Version]:
        """The versions a reader sees: none until the spec SUCCEEDED."""
        return list(self.stored) if self.status(now) == SUCCEEDED else []

    def render(self, now: float, *, include_versions: bool, legacy: bool) -> dict[str, Any]:
        """The spec as `GET /specs/{id}/` answers it (the SDK's SpecRetrieveResponse)."""
        if legacy:
            return self._render_legacy(now, include_versions=include_versions)
        status = self.status(now)
        versions = self.versions(now)
        latest = versions[-1] if versions else None
        out: dict[str, Any] = {
            **self._common(status),
            "updated_at": iso(latest.wall_t if latest else self.created_at),
            "created_by_email": self.seed.created_by_email,
            "error": self.error if status == FAILED else None,
            "runtime_params": dict(self.runtime_params),
            "content_yaml": latest.content_yaml if latest else None,
            "content_location": latest.content_location if latest else None,
        }
        if self.seed.data_plane and latest:
            out["content_unavailable_reason"] = IN_DATA_PLANE
        if include_versions:
            out["versions"] = [version.render() for version in versions]
        return out

    def list_item(self, now: float, *, legacy: bool) -> dict[str, Any]:
        """The spec as `GET /specs/` lists it (the SDK's SpecListResponseItem)."""
        if legacy:
            return self._render_legacy(now, include_versions=False)
        full = self.render(now, include_versions=False, legacy=False)
        return {name: full[name] for name in SPEC_LIST_FIELDS}

    def _render_legacy(self, now: float, *, include_versions: bool) -> dict[str, Any]:
        # The old page's spec: numbered versions with a status; one even before success.
        status = self.status(now)
        versions = self.versions(now)
        count = max(1, len(versions))
        times = [v.wall_t for v in versions] or [self.created_at]
        out: dict[str, Any] = {
            **self._common(status),
            "updated_at": iso(times[-1]),
            "latest_version": count,
        }
        if status == FAILED and self.error is not None:
            out["error"] = self.error
        if include_versions:
            out["versions"] = [
                {
                    "version": number,
                    "status": SUCCEEDED if number < count else status,
                    "created_at": iso(times[number - 1]),
                }
                for number in range(1, count + 1)
            ]
        return out

    def _common(self, status: str) -> dict[str, Any]:
        """The fields both shapes of a spec carry, alike."""
        seed = self.seed
        return {
            "id": seed.id,
            "name": seed.name,
            "status": status,
            "description": seed.description,
            "dataset_id": seed.dataset_id,
            "dataset_name": seed.dataset_name,
            "dataset_type": seed.dataset_type,
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class SpecOutcome:
    """How a new spec's generation ends, decided (seeded) when it is created."""

    status: str = SUCCEEDED
    error: str | None = None


class SpecBook:
    """Every spec of the emulated company, by lower-case id, in creation order."""

    def __init__(self, timeline: Timeline, *, legacy: bool = False) -> None:
        self._timeline = timeline
        self.legacy = legacy
        self._lock = threading.RLock()
        self._specs: dict[str, Spec] = {}
        for index, seed in enumerate(SEED_SPECS):
            self._specs[seed.id] = Spec.from_seed(seed, SEED_EPOCH + index * 3600.0)

    def now(self) -> float:
        return self._timeline.now()

    def get(self, spec_id: str, *, accept_any: bool = False) -> Spec | None:
        with self._lock:
            found = self._specs.get(spec_id.lower())
            if found is None and accept_any and _is_uuid(spec_id):
                # Made up on first use and kept, so it shows in the list afterwards.
                found = self._specs[spec_id.lower()] = _made_up(spec_id.lower())
            return found

    def list_items(self) -> list[dict[str, Any]]:
        now = self.now()
        with self._lock:
            return [spec.list_item(now, legacy=self.legacy) for spec in self._specs.values()]

    def render(self, spec: Spec, *, include_versions: bool = False) -> dict[str, Any]:
        with self._lock:
            return spec.render(self.now(), include_versions=include_versions, legacy=self.legacy)

    def all(self) -> list[dict[str, Any]]:
        """Every spec as `GET ?include_versions=true` shows it, in creation order."""
        with self._lock:
            specs = list(self._specs.values())
        return [self.render(spec, include_versions=True) for spec in specs]

    def create(
        self, body: dict[str, Any], outcome: SpecOutcome, processing_s: float, user_email: str
    ) -> Spec:
        """Store a new spec (ApiProblem(409) when its name is taken)."""
        name = str(body["name"])
        dataset_id = body.get("dataset_id")
        dataset_name, dataset_type = self._dataset(dataset_id)
        now = self.now()
        seed = SeedSpec(
            id=str(uuid.uuid4()),
            name=name,
            status=outcome.status,
            versions=0,  # unused: a made spec keeps its versions in `stored`
            description=body.get("description"),
            dataset_id=None if dataset_id is None else str(dataset_id).lower(),
            dataset_name=dataset_name,
            dataset_type=dataset_type,
            error=outcome.error,
            created_by_email=user_email,
            properties=spec_content.generated_properties(body),
        )
        options = spec_content.generation_options(body)
        spec = Spec(seed, self._timeline.wall(now), options, outcome.status, outcome.error)
        spec.ready_t = now + processing_s
        if outcome.status == SUCCEEDED:
            text = spec_content.generated_yaml(body, dataset_name)
            spec.stored.append(Version(text, None, self._timeline.wall(spec.ready_t)))
        with self._lock:
            self.check_name(name)
            self._specs[spec.id] = spec
        return spec

    def check_name(self, name: str) -> None:
        """ApiProblem(409) when a spec has this name (compared exactly)."""
        with self._lock:
            if any(known.name == name for known in self._specs.values()):
                raise ApiProblem(409, {"detail": f"A spec named '{name}' already exists"})

    def _dataset(self, dataset_id: object) -> tuple[str | None, str]:
        """Name and type of a seed dataset: a built-in spec's, else made up from its id."""
        if dataset_id is None:
            return None, "MULTI_FILE"  # what the API says of every seedless spec
        key = str(dataset_id).lower()
        with self._lock:
            for spec in self._specs.values():
                if spec.seed.dataset_id == key:
                    return spec.seed.dataset_name, spec.seed.dataset_type
        return f"dataset-{key[:8]}", "SINGLE_FILE"

    def update(self, spec_id: str, content_yaml: str) -> Spec:
        """Append a version to a SUCCEEDED spec (ApiProblem 404/400 otherwise)."""
        now = self.now()
        with self._lock:
            spec = self._specs.get(spec_id.lower())
            if spec is None:
                raise ApiProblem(404, NOT_FOUND)
            status = spec.status(now)
            if status != SUCCEEDED:
                detail = (
                    f"Spec must be in SUCCEEDED status to be updated (spec {spec.id} is {status})"
                )
                raise ApiProblem(400, {"detail": detail})
            if spec.seed.data_plane:
                detail = "This spec's content is stored in your data plane: update it there"
                raise ApiProblem(400, {"detail": detail})
            try:
                text = spec_content.edited_yaml(content_yaml, spec.name, spec.seed.dataset_name)
            except ValueError as exc:
                raise ApiProblem(400, {"detail": str(exc)}) from None
            wall_t = self._timeline.wall(now)
            if spec.stored:
                wall_t = max(wall_t, spec.stored[-1].wall_t + VERSION_GAP)
            spec.stored.append(Version(text, None, wall_t))
            return spec

    def delete(self, spec_id: str) -> Spec | None:
        with self._lock:
            return self._specs.pop(spec_id.lower(), None)

    def resolve(self, body: dict[str, Any], *, accept_any: bool) -> tuple[Spec, int]:
        """The spec and version a valid create-run body asks for, or ApiProblem(400)."""
        spec_id = str(body["spec_id"])
        now = self.now()
        with self._lock:
            spec = self.get(spec_id, accept_any=accept_any)
            if spec is None:
                raise ApiProblem(400, {"detail": f"Spec {spec_id} not found"})
            status = spec.status(now)
            count = len(spec.versions(now))
        if status != SUCCEEDED:
            detail = f"Spec must be in SUCCEEDED status (spec {spec_id} is {status})"
            raise ApiProblem(400, {"detail": detail})
        version = body.get("spec_version")
        if version is None:
            return spec, count
        if not 1 <= int(version) <= count:
            detail = (
                f"Spec version {version} does not exist for spec {spec.id} (versions 1..{count})"
            )
            raise ApiProblem(400, {"detail": detail})
        return spec, int(version)


def _made_up(key: str) -> Spec:
    """The spec `accept_any_spec` makes of an unknown UUID: SUCCEEDED, versions 1..10."""
    seed = SeedSpec(
        id=key,
        name=f"spec-{key[:8]}",
        status=SUCCEEDED,
        versions=ANY_SPEC_VERSIONS,
        description="Spec made up by the emulator (accept_any_spec).",
        dataset_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
        dataset_name=f"dataset-{key[:8]}",
        dataset_type="SINGLE_FILE",
    )
    return Spec.from_seed(seed, SEED_EPOCH)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


class SpecApi:
    """The spec routes but the list: `act(kind, ...)` -> (HTTP status, JSON payload)."""

    def __init__(
        self,
        book: SpecBook,
        runs: Store,
        dice: Dice,
        stats: Stats,
        take: Callable[[str], bool],
    ) -> None:
        self.book = book
        self._runs = runs
        self._dice = dice
        self._stats = stats
        self._take = take  # uses up one of a count-down knob

    def act(
        self,
        kind: str,
        args: dict[str, str],
        query: dict[str, str],
        raw_body: bytes,
        cfg: EmulatorConfig,
    ) -> tuple[int, Any]:
        if kind == "specs.get":
            spec = self.book.get(args["id"], accept_any=cfg.accept_any_spec)
            if spec is None:
                raise ApiProblem(404, NOT_FOUND)
            versions = _flag(query.get("include_versions"))
            return 200, self.book.render(spec, include_versions=versions)
        if kind == "specs.create":
            return 201, self._create(raw_body, cfg)
        if kind == "specs.update":
            return 200, self._update(args["id"], raw_body)
        if kind == "specs.delete":
            self._delete(args["id"], force=_flag(query.get("force")))
            return 204, None
        raise ApiProblem(404, NOT_FOUND)

    def _create(self, raw_body: bytes, cfg: EmulatorConfig) -> dict[str, Any]:
        body = _checked(raw_body, spec_content.create_errors)
        refusal = spec_content.create_refusal(body)
        if refusal is not None:
            raise ApiProblem(400, {"detail": refusal})
        # Before the outcome is drawn: a refused create uses up no `spec_fail_next`.
        self.book.check_name(str(body["name"]))
        spec = self.book.create(
            body, self._outcome(str(body["name"]), cfg), cfg.spec_processing_seconds, cfg.user_email
        )
        self._stats.spec_event("created")
        return self.book.render(spec)

    def _outcome(self, name: str, cfg: EmulatorConfig) -> SpecOutcome:
        pattern = cfg.spec_fail_pattern
        failing = (
            self._take("spec_fail_next")
            or (pattern is not None and re.search(pattern, name) is not None)
            or self._dice.roll("spec_fail", cfg.spec_fail_rate)
        )
        if not failing:
            return SpecOutcome()
        return SpecOutcome(FAILED, self._dice.choice("spec_failure_reason", SPEC_FAILURE_REASONS))

    def _update(self, spec_id: str, raw_body: bytes) -> dict[str, Any]:
        body = _checked(raw_body, spec_content.update_errors)
        spec = self.book.update(spec_id, str(body["content_yaml"]))
        self._stats.spec_event("updated")
        return self.book.render(spec)

    def _delete(self, spec_id: str, *, force: bool) -> None:
        spec = self.book.get(spec_id)
        if spec is None:
            raise ApiProblem(404, NOT_FOUND)
        runs = self._runs.runs_of(spec.id)
        if runs and not force:
            detail = (
                f"Spec {spec.id} has {len(runs)} run(s): delete them first, or pass force=true "
                "to delete the spec with its runs"
            )
            raise ApiProblem(400, {"detail": detail})
        for run_id in runs:
            self._runs.delete(run_id)
        self.book.delete(spec.id)
        self._stats.spec_event("deleted")


def _checked(raw_body: bytes, errors_of: Callable[[object], list[dict[str, Any]]]) -> Any:
    """The JSON body, or ApiProblem(422) with FastAPI's items."""
    body, errors = json_body(raw_body)
    errors = errors or errors_of(body)
    if errors:
        raise ApiProblem(422, {"detail": errors})
    return body


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")
