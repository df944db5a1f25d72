"""The spec half of the plan: `kind: Spec` manifests against `State.specs`.

Pure: spec manifests (`reconciler.manifests.SpecManifest`, with any
`content_file` already read by the loader) and the state in, frozen values
out. No I/O, no clock. `reconciler.plan.make_plan` calls it and puts the
results on the `Plan`: `Plan.specs` (one `SpecChange` per Spec manifest,
sorted by name) and, on each run `Change`, `depends_on` / `unknown` /
`spec_ref` / `affected_by` / `blocked_by` (`reconciler.specgraph` links runs to
specs and orders the graph). `Plan.order` is a topological order of every key.

## What the applier (`reconciler.apply`, helper F2) consumes

Keys: a spec change is `"spec/NAME"` (`SpecChange.key`), a run change
`"run/NAME"` (`Change.key`). `depends_on` holds keys of other changes of the
same plan: a change is started only after each of them is done (a spec: exists
and is SUCCEEDED with its planned version made). Specs depend on nothing; runs
depend only on specs, so the graph has no cycle by construction
(`topological_order` checks it anyway).

`SpecChange` (self-describing; `to_json` is its saved-plan and `--json` form):
- `name`: the spec's unique name (`metadata.name`);
- `action`: `spec-create` | `spec-update` | `noop` (`SpecAction`);
- `body`: spec-create only: the exact JSON body to POST to
  `/api/dataframer/specs/` (`name`, then `dataset_id` or
  `generation_objectives`, then the create options as written);
- `content_yaml`: the canonical content YAML (`reconciler.speccontent`) to
  PUT as `{"content_yaml": ...}`: on a spec-update always; on a spec-create
  when the manifest states content (PUT right after the spec is SUCCEEDED, so
  one apply makes version 1 (the API's) and version 2 (the manifest's));
  None otherwise;
- `content_sha256`: hex SHA-256 of `content_yaml` (what state records per
  version and in the update intent); None when `content_yaml` is None;
- `spec_id`: the recorded id (None while unknown: nothing recorded, or a lost
  create answer);
- `base_version`: the newest version number state records (the PUT makes
  `base_version + 1`); None when none is recorded;
- `resolve_intent`: an earlier create/update of this spec never learned its
  answer: a create looks the spec up by name first, an update reads the
  versions and compares the latest content with `intent_sha256` (what was
  sent) before anything is sent again;
- `waits`: the recorded spec is not SUCCEEDED yet (PROCESSING): apply waits
  for it before its update and its dependants; `status`: the recorded status;
- `failed` / `error`: the spec ended FAILED (state's `error`): nothing is
  sent for it and its dependants (runs with `blocked_by` = its key) are
  blocked, with that error shown;
- `drift`: the newest version was made outside dfr (the web app): with content
  in the manifest the change is a spec-update back to it; without, a noop
  (the new version is only recorded, by the refresh);
- `depends_on`: () for specs; `dependants`: keys of the runs that use it;
- `reasons`, `where` (FILE:LINE:COL), `source` (file relative to the root).

A run `Change` that names a spec by `spec_ref` carries `spec_ref` (its
`SpecRef`); when the spec's id is not known at plan time (it is created by
this plan) its `body` lacks `spec_id`, `unknown` is `("spec_id",)` and the
applier sets `body["spec_id"]` from the spec it made before POSTing. A run
pinned to version N has `spec_version: N` in its body; one on `latest` has no
`spec_version` (the API's latest at submit time, which apply, running it after
the spec's change, makes the manifest's). Such a run whose spec this plan
changes has `affected_by = "spec/NAME"`: a run still to submit gets the new
version; a recorded one is left alone ("affected: uses latest"), since a
finished run is not redone because its spec moved on: `--replace NAME` asks.
(A spec this plan creates gives new runs only: they wait for it, unaffected.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from reconciler.manifests import SpecManifest
from reconciler.speccontent import content_sha256, content_yaml

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
KNOWN_AFTER_APPLY = "(known after apply)"


class SpecAction(str, Enum):
    CREATE = "spec-create"
    UPDATE = "spec-update"
    NOOP = "noop"


@dataclass(frozen=True, slots=True)
class PlanChange:
    """What every change of a plan has: the manifest `name` it is about, and its `key`
    in the plan's graph, `KIND/NAME` (what other changes' `depends_on` hold)."""

    KIND: ClassVar[str] = "change"
    name: str

    @property
    def key(self) -> str:
        return f"{self.KIND}/{self.name}"

    def json_of(self, *names: str) -> dict[str, Any]:
        """The named fields (or properties) as `plan --json` and saved plans write them,
        in that order: `manifest` is the FILE:LINE:COL (`where`), an enum is its value,
        a tuple a list."""
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(self, "where" if name == "manifest" else name)
            if isinstance(value, Enum):
                value = value.value
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, slots=True)
class SpecChange(PlanChange):
    """What apply does for one Spec manifest (see the module docstring)."""

    KIND = "spec"
    action: SpecAction
    body: dict[str, Any] | None = None
    content_yaml: str | None = None
    content_sha256: str | None = None
    spec_id: str | None = None
    base_version: int | None = None
    resolve_intent: bool = False
    intent_sha256: str | None = None
    waits: bool = False
    status: str | None = None  # the recorded spec's status (None: none recorded)
    failed: bool = False
    error: str | None = None
    drift: bool = False
    depends_on: tuple[str, ...] = ()
    dependants: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    where: str | None = None
    source: str | None = None

    @property
    def acts(self) -> bool:
        """Whether apply sends anything for it (or resolves an earlier send)."""
        return self.action is not SpecAction.NOOP

    @property
    def new_version(self) -> int | None:
        """The version number the planned PUT makes, when known."""
        if self.action is SpecAction.UPDATE:
            return (self.base_version or 0) + 1 if self.base_version is not None else None
        if self.action is SpecAction.CREATE and self.content_yaml is not None:
            return 2
        return None

    def to_json(self) -> dict[str, Any]:
        return self.json_of(
            *("key", "name", "action", "manifest", "body", "content_yaml", "content_sha256"),
            *("spec_id", "base_version", "new_version", "resolve_intent", "intent_sha256"),
            *("waits", "status", "failed", "error", "drift", "depends_on", "dependants"),
            "reasons",
        )


# -- reading state ------------------------------------------------------------------
# `State.specs` (helper F2's SpecRecord) is read by name, as attributes or keys,
# so that the planner keeps working on a state from before it existed.


def get_field(obj: Any, key: str, default: Any = None) -> Any:
    """`obj.key` or `obj[key]` (a record, or its JSON form), else `default`."""
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def recorded_specs(state: Any) -> Mapping[str, Any]:
    """`state.specs` (name -> SpecRecord), or {} for a state without specs."""
    specs = getattr(state, "specs", None)
    return specs if isinstance(specs, Mapping) else {}


@dataclass(frozen=True, slots=True)
class _Latest:
    number: int
    sha256: str | None
    by_dfr: bool


def _latest(record: Any) -> _Latest | None:
    versions = list(get_field(record, "versions", None) or ())
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(get_field(v, "number", 0) or 0))
    return _Latest(
        int(get_field(newest, "number", 0) or 0),
        get_field(newest, "sha256"),
        bool(get_field(newest, "by_dfr", False)),
    )


# -- planning specs -----------------------------------------------------------------


def plan_specs(
    specs: Sequence[SpecManifest],
    state: Any,
    sources: Mapping[str, str] | None = None,
) -> tuple[SpecChange, ...]:
    """One change per Spec manifest, sorted by name (`sources`: name -> file, for scope)."""
    recorded = recorded_specs(state)
    out = []
    for manifest in sorted(specs, key=lambda m: m.name):
        record = recorded.get(manifest.name)
        change = _spec_change(manifest, record)
        moved = _options_moved(manifest, record) if change.action is not SpecAction.CREATE else ()
        out.append(
            _with(
                change,
                source=(sources or {}).get(manifest.name),
                reasons=(*change.reasons, *moved),
            )
        )
    return tuple(out)


def _options_moved(manifest: SpecManifest, record: Any) -> tuple[str, ...]:
    """A note when the create options differ from those the spec was created with.

    They count only at creation and the name stays taken, so the spec is never
    re-created for them (Terraform would replace; the API cannot): said, not done.
    """
    sent = get_field(record, "body") or {}
    if not isinstance(sent, Mapping) or not sent:
        return ()  # adopted with `dfr import spec`: how it was made is not known
    wanted = manifest.create_body
    moved = sorted(k for k in {*sent, *wanted} if k != "name" and sent.get(k) != wanted.get(k))
    if not moved:
        return ()
    return (
        f"create options changed since the spec was created ({', '.join(moved)}): they count "
        "only when a spec is created, so this one is kept; to make a new spec with them, give "
        "the manifest a new name",
    )


def _with(change: SpecChange, **kwargs: Any) -> SpecChange:
    from dataclasses import replace

    return replace(change, **kwargs)


def _spec_change(manifest: SpecManifest, record: Any) -> SpecChange:
    want = content_yaml(manifest.content) if manifest.content is not None else None
    want_sha = content_sha256(manifest.content) if manifest.content is not None else None
    common: dict[str, Any] = {"where": manifest.where}
    if want is not None:
        common.update(content_yaml=want, content_sha256=want_sha)
    then_put = (
        ("then its content is PUT as version 2 once it is SUCCEEDED",) if want is not None else ()
    )
    if record is None:
        return SpecChange(
            manifest.name,
            SpecAction.CREATE,
            body=manifest.create_body,
            reasons=("no spec recorded", *then_put),
            **common,
        )
    intent = get_field(record, "intent")
    spec_id = get_field(record, "spec_id")
    if spec_id is None:
        return _create_again(manifest, intent, then_put, common)
    if get_field(record, "drift") == "not_found":
        return SpecChange(
            manifest.name,
            SpecAction.CREATE,
            body=manifest.create_body,
            reasons=(f"the recorded spec {spec_id} no longer exists in the API (404)", *then_put),
            **common,
        )
    status = get_field(record, "status")
    common.update(spec_id=spec_id, status=status)
    if status == FAILED:
        return _failed(manifest, spec_id, get_field(record, "error"), common)
    latest = _latest(record)
    waits = status != SUCCEEDED
    common.update(base_version=latest.number if latest else None, waits=waits)
    notes = (f"spec {spec_id} is {status or 'not finished'}: apply waits for SUCCEEDED",) * waits
    if get_field(intent, "kind") == "update":
        return _update_again(manifest, intent, want_sha, notes, common)
    if want is None:
        return _without_content(manifest, latest, notes, common)
    if latest is not None and latest.sha256 == want_sha:
        return SpecChange(manifest.name, SpecAction.NOOP, reasons=notes, **common)
    return SpecChange(
        manifest.name,
        SpecAction.UPDATE,
        drift=latest is not None and not latest.by_dfr,
        reasons=(*notes, _update_reason(latest)),
        **common,
    )


def _failed(
    manifest: SpecManifest, spec_id: str, error: str | None, common: dict[str, Any]
) -> SpecChange:
    """A FAILED spec: nothing to do for it, and the runs that use it are blocked."""
    error = error or "no error given"
    return SpecChange(
        manifest.name,
        SpecAction.NOOP,
        failed=True,
        error=error,
        reasons=(
            f"spec {spec_id} ended FAILED: {error}; the runs that use it are blocked "
            "(its name stays taken: fix the spec in the web app and `dfr plan --refresh`, "
            "or give the manifest a new name)",
        ),
        **common,
    )


def _update_reason(latest: _Latest | None) -> str:
    if latest is None:
        return "no version of it is recorded yet: the manifest's content is PUT"
    if latest.sha256 is None:
        return (
            f"the content of version {latest.number} was not readable (it may live in the "
            "customer's cloud): the manifest's content is PUT to be sure"
        )
    if not latest.by_dfr:
        return (
            f"version {latest.number} was made outside dfr (the web app?) and differs from "
            f"the manifest: an update back to the manifest's content makes version "
            f"{latest.number + 1}"
        )
    return f"content changed: the update makes version {latest.number + 1}"


def _create_again(
    manifest: SpecManifest, intent: Any, then_put: tuple[str, ...], common: dict[str, Any]
) -> SpecChange:
    """No spec id recorded: a lost create answer is looked up by name; else a create."""
    if get_field(intent, "kind") == "create":
        at = get_field(intent, "at") or "time unknown"
        reasons = (
            f"an earlier apply sent this spec's creation ({at}) "
            "and never learned its answer: apply looks the spec up by its name first; "
            "found, it is adopted; not found, it is created",
            *then_put,
        )
        return SpecChange(
            manifest.name,
            SpecAction.CREATE,
            body=manifest.create_body,
            resolve_intent=True,
            reasons=reasons,
            **common,
        )
    return SpecChange(
        manifest.name,
        SpecAction.CREATE,
        body=manifest.create_body,
        reasons=("no spec id recorded", *then_put),
        **common,
    )


def _update_again(
    manifest: SpecManifest,
    intent: Any,
    want_sha: str | None,
    notes: tuple[str, ...],
    common: dict[str, Any],
) -> SpecChange:
    """An update whose answer was lost: resolved from the versions, never re-sent blindly."""
    sent = get_field(intent, "content_sha256")
    lines = [
        *notes,
        "an earlier update's answer was lost: apply reads the versions and compares the "
        "latest content with what was sent before sending anything",
    ]
    if want_sha is not None and sent != want_sha:
        lines.append("the manifest's content changed since: it is PUT after that")
    action = SpecAction.UPDATE if want_sha is not None else SpecAction.NOOP
    return SpecChange(
        manifest.name,
        action,
        resolve_intent=True,
        intent_sha256=sent,
        reasons=tuple(lines),
        **common,
    )


def _without_content(
    manifest: SpecManifest, latest: _Latest | None, notes: tuple[str, ...], common: dict[str, Any]
) -> SpecChange:
    if latest is not None and not latest.by_dfr:
        note = (
            f"version {latest.number} was made outside dfr (the web app?); the manifest "
            "leaves `content` out, so it is kept and only recorded"
        )
        return SpecChange(
            manifest.name, SpecAction.NOOP, drift=True, reasons=(*notes, note), **common
        )
    return SpecChange(manifest.name, SpecAction.NOOP, reasons=notes, **common)


__all__ = [
    "KNOWN_AFTER_APPLY",
    "PlanChange",
    "SpecAction",
    "SpecChange",
    "get_field",
    "plan_specs",
    "recorded_specs",
]
