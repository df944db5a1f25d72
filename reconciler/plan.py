"""The plan: what `apply` would do, as values, computed by a pure function.

`make_plan(manifests, state, options)` compares each manifest's request body
with the run recorded in state, and returns a frozen `Plan` of changes sorted
by name. A field of the manifest is unchanged when it equals what was sent, or
what the API reports the run used (`RunRecord.used`): writing out a value the
API chose (pinning the `spec_version` the run ran on) is not a change. A field
the manifest leaves out is left to the API and never a change
(`reconciler.matching` holds the rules). No I/O, no clock, no printing: rendering is
`reconciler.render`'s job and executing is `reconciler.apply`'s.

Actions:
- `create`: no run is recorded for the name (or the recorded one is gone);
- `replace`: the spec differs from the recorded run's; a run cannot be changed
  in place, so a new one is submitted (and an unfinished old one canceled);
- `noop`: the recorded run matches; a FAILED or CANCELED one is flagged as
  failed and left alone unless `--replace NAME` asks;
- `orphan`: recorded, no manifest names it, and the file it came from is among
  the files read (`Scope`); only reported, unless prune. A run whose file lies
  outside the PATHs read is out of this plan's scope: listed, never pruned.

A name whose earlier submission's outcome is unknown (an intent without a run
id) is a `create` with `resolve_intent`: apply looks for that run first. When
the manifest changed since that submission, the plan says so: a run found is
adopted and then replaced by the manifest's body, as a replace would.

Specs (`kind: Spec` manifests) are planned by `reconciler.specplan` into
`Plan.specs`; a run that names its spec by `spec_ref` is diffed with the
reference resolved, and each change says what it waits for (`depends_on`,
keys "spec/NAME") and which body fields are known only after apply (`unknown`).
`Plan.order` is the graph's topological order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from reconciler.evaluate import EvaluateChange, plan_evaluations
from reconciler.manifests import Manifest, SpecManifest, SpecRef
from reconciler.matching import recorded_matches
from reconciler.outputs.needs import PullChange
from reconciler.specgraph import link_change, link_run, plan_order, with_dependants
from reconciler.specplan import PlanChange, SpecChange, plan_specs, recorded_specs
from reconciler.state.model import FAILED, TERMINAL, Intent, RunRecord, State


class Action(str, Enum):
    CREATE = "create"
    REPLACE = "replace"
    NOOP = "noop"
    ORPHAN = "orphan"
    PULL = "pull"  # a run's files into its outputs.path (reconciler.outputs.needs)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of the spec: its value in the recorded run and in the manifest."""

    field: str
    before: Any  # MISSING when absent
    after: Any


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Change(PlanChange):
    KIND = "run"
    action: Action
    body: dict[str, Any] | None = None  # what create/replace will POST
    labels: dict[str, str] = field(default_factory=dict)
    prior: RunRecord | None = None
    fields: tuple[FieldChange, ...] = ()
    reasons: tuple[str, ...] = ()
    where: str | None = None  # the manifest's FILE:LINE:COL
    cancel_prior: bool = False  # replace: the old run is unfinished and will be canceled
    prune: bool = False  # orphan: cancel if unfinished and drop from state
    failed: bool = False  # noop on a FAILED/CANCELED run
    resolve_intent: bool = False  # an earlier POST's outcome is unknown; look first
    source: str | None = None  # the manifest file, relative to the project root
    rename_of: str | None = None  # create: an orphan with the same body (a renamed manifest?)
    # The graph (reconciler.specplan): keys of the changes this one waits for ("spec/NAME"),
    # body fields known only after apply ("spec_id" of a spec this plan creates), the
    # spec_ref the body was resolved from, a spec change a run on latest is affected by,
    # and a spec that ended FAILED, which blocks it.
    depends_on: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    spec_ref: SpecRef | None = None
    affected_by: str | None = None
    blocked_by: str | None = None

    @property
    def submits(self) -> bool:
        return self.action in (Action.CREATE, Action.REPLACE)

    @property
    def samples_at_most(self) -> int:
        """Samples this change requests if it submits (a lost submission may be found)."""
        return int(self.body["number_of_samples"]) if self.submits and self.body else 0

    @property
    def samples(self) -> int:
        """Samples this change surely requests: none when it may only adopt a found run."""
        return 0 if self.resolve_only else self.samples_at_most

    @property
    def resolves(self) -> bool:
        """Apply looks for the run of an unconfirmed submission before submitting."""
        return self.resolve_intent

    @property
    def resolve_only(self) -> bool:
        """An unconfirmed submission of this very body: found, it is adopted, nothing sent."""
        return self.resolve_intent and not self.fields


@dataclass(frozen=True, slots=True)
class Scope:
    """Which recorded runs a plan speaks for: those whose manifest file was read.

    `roots` are the PATHs read, relative to the project root with '/'
    separators ("" is the whole project). `whole` says the project's own
    manifests were read (no PATH named), so a run whose file is unknown (a
    state from before dfr recorded it) still counts. `skipped` are files read
    that held a document skipped as not a manifest: a run from one of them is
    never pruned. `sources` maps each manifest name to its file.
    """

    roots: tuple[str, ...] = ("",)
    whole: bool = True
    skipped: frozenset[str] = frozenset()
    sources: Mapping[str, str] = field(default_factory=dict)
    spec_sources: Mapping[str, str] = field(default_factory=dict)  # Spec manifest -> its file

    def covers(self, source: str | None) -> bool:
        if source is None:
            return self.whole
        return any(
            root in ("", ".") or source == root or source.startswith(root.rstrip("/") + "/")
            for root in self.roots
        )


@dataclass(frozen=True, slots=True)
class PlanOptions:
    replace: frozenset[str] = frozenset()
    prune: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    lineage: str
    serial: int
    manifests_digest: str
    options: PlanOptions = PlanOptions()
    # Recorded names whose manifest file is outside the PATHs read: not orphans.
    out_of_scope: tuple[str, ...] = ()
    # Orphans that --prune must not touch: their file still exists but was skipped.
    prune_refused: tuple[str, ...] = ()
    # Recorded specs no Spec manifest read names (kept: dfr never deletes a spec).
    orphan_specs: tuple[str, ...] = ()
    # One change per manifest with `evaluate:` (reconciler.evaluate), sorted by name.
    evaluations: tuple[EvaluateChange, ...] = ()
    # One change per Spec manifest (reconciler.specplan), sorted by name.
    specs: tuple[SpecChange, ...] = ()
    # Output folders a pull would write (reconciler.outputs.needs), sorted by name;
    # filled in by the engine, which reads the folders (make_plan reads no files).
    pulls: tuple[PullChange, ...] = ()

    @property
    def order(self) -> tuple[str, ...]:
        """Every change's key, each after the ones it depends on (specs before their runs)."""
        return plan_order(self.specs, self.changes)

    def spec(self, name: str) -> SpecChange | None:
        return next((s for s in self.specs if s.name == name), None)

    def by_action(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action is action]

    @property
    def to_submit(self) -> list[Change]:
        return [c for c in self.changes if c.submits]

    @property
    def failed(self) -> list[Change]:
        return [c for c in self.changes if c.failed]

    @property
    def samples(self) -> int:
        """Samples the plan surely requests."""
        return sum(c.samples for c in self.changes)

    @property
    def samples_at_most(self) -> int:
        """Samples requested if no unconfirmed submission is found (what budgets count)."""
        return sum(c.samples_at_most for c in self.changes)

    @property
    def to_resolve(self) -> list[Change]:
        """Unconfirmed submissions apply looks for before submitting anything for them."""
        return [c for c in self.changes if c.resolves]

    @property
    def has_changes(self) -> bool:
        acts = self._changes_runs_or_specs() or any(e.acts for e in self.evaluations)
        return acts or bool(self.pulls)

    def _changes_runs_or_specs(self) -> bool:
        runs = any(c.submits or (c.action is Action.ORPHAN and c.prune) for c in self.changes)
        return runs or any(s.acts for s in self.specs)

    def counts(self) -> dict[str, int]:
        return {
            # An unconfirmed submission of the same body is counted "to resolve" only.
            "create": len([c for c in self.by_action(Action.CREATE) if not c.resolve_only]),
            "replace": len(self.by_action(Action.REPLACE)),
            "noop": len(self.by_action(Action.NOOP)),
            "orphan": len(self.by_action(Action.ORPHAN)),
            "failed": len(self.failed),
            "resolve": len(self.to_resolve),
        }


def manifests_digest(manifests: Iterable[Manifest], specs: Iterable[SpecManifest] = ()) -> str:
    """A hash of what the manifests ask for (names, bodies, labels; specs' bodies and
    content), order-independent; without Spec manifests, the same as before they existed."""
    canonical: list[Any] = sorted(
        (m.name, m.body, dict(sorted(m.labels.items()))) for m in manifests
    )
    spec_part = sorted((s.name, s.body, s.content) for s in specs)
    if spec_part:
        canonical = [canonical, ["specs", spec_part]]
    data = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_plan(
    manifests: Sequence[Manifest],
    state: State,
    options: PlanOptions = PlanOptions(),
    scope: Scope = Scope(),
    specs: Sequence[SpecManifest] = (),
) -> Plan:
    """Diff manifests (and Spec manifests) against state. Pure: same inputs, same plan."""
    desired = {m.name: m for m in manifests}
    spec_changes = plan_specs(specs, state, scope.spec_sources)
    by_name = {s.name: s for s in spec_changes}
    recorded = recorded_specs(state)
    changes: list[Change] = []
    outside: list[str] = []
    refused: list[str] = []
    for name in sorted(desired.keys() | state.runs.keys()):
        manifest = desired.get(name)
        record = state.runs.get(name)
        if manifest is None:
            assert record is not None
            if not scope.covers(record.source):
                outside.append(name)
                continue
            skipped = record.source is not None and record.source in scope.skipped
            if skipped and options.prune:
                refused.append(name)
            changes.append(_orphan(record, options.prune and not skipped, skipped))
        else:
            link = link_run(manifest, by_name, recorded)
            resolved = replace(manifest, spec=link.spec) if link.spec != manifest.spec else manifest
            change = link_change(_change(resolved, record, name in options.replace), link, by_name)
            changes.append(replace(change, source=scope.sources.get(name)))
    return Plan(
        changes=tuple(_with_rename_hints(changes)),
        lineage=state.lineage,
        serial=state.serial,
        manifests_digest=manifests_digest(manifests, specs),
        options=options,
        out_of_scope=tuple(outside),
        prune_refused=tuple(refused),
        orphan_specs=tuple(
            name
            for name, record in sorted(recorded.items())
            if name not in by_name and scope.covers(getattr(record, "source", None))
        ),
        evaluations=plan_evaluations(manifests, state, (c.name for c in changes if c.submits)),
        specs=with_dependants(spec_changes, changes),
    )


def _with_rename_hints(changes: list[Change]) -> list[Change]:
    """A create whose body is an orphan's (as sent) is most likely a renamed manifest."""
    orphans = {
        _body_key(c.prior.spec): c.name
        for c in changes
        if c.action is Action.ORPHAN and c.prior is not None and c.prior.run_id
    }
    out = []
    for c in changes:
        old = orphans.get(_body_key(c.body)) if c.action is Action.CREATE and c.body else None
        if old is not None and not c.resolve_intent:
            hint = (
                f"looks like a rename of {old!r} (same body): keep its run with "
                f"`dfr state mv {old} {c.name}` instead of paying for a new one"
            )
            c = replace(c, rename_of=old, reasons=(*c.reasons, hint))
        out.append(c)
    return out


def _body_key(body: Mapping[str, Any] | None) -> str:
    normal = dict(body or {})
    if isinstance(normal.get("spec_id"), str):
        normal["spec_id"] = normal["spec_id"].lower()
    return json.dumps(normal, sort_keys=True, default=str)


def _orphan(record: RunRecord, prune: bool, skipped: bool = False) -> Change:
    unfinished = record.run_id is not None and record.status not in TERMINAL
    reasons = ["in state, but no manifest names it"]
    if skipped:
        reasons.append(
            f"its file {record.source} still exists but a document in it was skipped as "
            "not a manifest (see the warning): fix its header; --prune will not touch it"
        )
    if prune:
        reasons.append(
            "will be canceled and removed from state"
            if unfinished
            else "will be removed from state"
        )
    return Change(record.name, Action.ORPHAN, prior=record, reasons=tuple(reasons), prune=prune)


def _change(manifest: Manifest, record: RunRecord | None, forced: bool) -> Change:
    body = manifest.body
    common: dict[str, Any] = {
        "body": body,
        "labels": dict(manifest.labels),
        "prior": record,
        "where": manifest.where,
    }
    if record is None:
        return Change(manifest.name, Action.CREATE, reasons=("no run recorded",), **common)
    if record.intent is not None and record.run_id is None:
        return _pending(manifest, record.intent, common)
    if record.run_id is None:
        reason = "no run recorded"
        if record.last_error:
            reason = f"the last submission failed: {record.last_error.get('message', 'error')}"
        return Change(manifest.name, Action.CREATE, reasons=(reason,), **common)
    if record.drift == "not_found":
        return Change(
            manifest.name,
            Action.CREATE,
            reasons=(f"the recorded run {record.run_id} no longer exists in the API (404)",),
            **common,
        )
    fields = changed_fields(body, record)
    unfinished = record.status not in TERMINAL
    if fields or forced:
        notes = ["spec changed"] if fields else []
        if forced:
            notes.append("replacement requested with --replace")
        if unfinished:
            notes.append(
                f"the current run {record.run_id} ({record.status}) will be canceled once "
                "its replacement is submitted"
            )
        return Change(
            manifest.name,
            Action.REPLACE,
            fields=fields,
            reasons=tuple(notes),
            cancel_prior=unfinished,
            **common,
        )
    failed = record.status in TERMINAL and record.status != "SUCCEEDED"
    reasons: tuple[str, ...] = ()
    if failed:
        reasons = (
            f"run {record.run_id} ended {record.status}{record.end_note}"
            f"; resubmit with: dfr apply --replace {manifest.name}",
        )
    return Change(manifest.name, Action.NOOP, failed=failed, reasons=reasons, **common)


def _pending(manifest: Manifest, intent: Intent, common: dict[str, Any]) -> Change:
    """An earlier submission whose outcome is unknown: what resolving it will do."""
    sent = RunRecord.new(manifest.name, spec=intent.body, now="")
    fields = changed_fields(manifest.body, sent)
    # Fields the earlier body had and the manifest no longer states.
    dropped = tuple(
        FieldChange(k, v, MISSING) for k, v in intent.body.items() if k not in manifest.body
    )
    lines = [
        f"an earlier apply sent this run ({intent.at}) and never learned its id; apply "
        "looks for that run first"
    ]
    if fields or dropped:
        listed = ", ".join(f.field for f in (*fields, *dropped))
        lines.append(
            f"the manifest changed since that submission ({listed}): a run found is adopted "
            "and then replaced by this body (canceled once the new run is recorded); none "
            "found, this body is submitted"
        )
    else:
        lines.append("a run found is adopted; none found, this body is submitted")
    if intent.replaces:
        lines.append(
            f"that submission replaces run {intent.replaces}, which is canceled once its "
            "successor is recorded"
        )
    return Change(
        manifest.name,
        Action.CREATE,
        fields=(*fields, *dropped),
        reasons=tuple(lines),
        resolve_intent=True,
        **common,
    )


def changed_fields(body: Mapping[str, Any], record: RunRecord) -> tuple[FieldChange, ...]:
    """The manifest's fields that the recorded run does not answer, as sent or as used.

    `before` is what was sent, else what the API used, else MISSING.
    """
    out = []
    for key, wanted in body.items():
        if recorded_matches(key, wanted, record.spec, record.used, body):
            continue
        before = record.spec.get(key, record.used.get(key, MISSING))
        out.append(FieldChange(key, before, wanted))
    return tuple(out)


__all__ = [
    "FAILED",
    "MISSING",
    "Action",
    "Change",
    "FieldChange",
    "Plan",
    "PlanOptions",
    "Scope",
    "changed_fields",
    "make_plan",
    "manifests_digest",
]
