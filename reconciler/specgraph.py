"""The graph of a plan: runs linked to the specs they name, and the order of the work.

Pure. `link_run` resolves a run manifest's `spec_ref` against this plan's spec
changes (`reconciler.specplan`) and `State.specs`: its body with `spec_id`
(unknown after apply when this plan creates the spec) and `spec_version` for a
pinned number, and its edges (`depends_on`, `affected_by`, `blocked_by`).
`link_change` puts that on the run's `Change`; `topological_order` and
`plan_order` order every key, dependencies first (runs depend only on specs,
so no cycle can form; a cycle is still refused, naming its keys).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler.manifests import Manifest, SpecRef
from reconciler.specplan import (
    KNOWN_AFTER_APPLY,
    SpecAction,
    SpecChange,
    get_field,
    recorded_specs,
)

if TYPE_CHECKING:
    from reconciler.plan import Change


# -- runs that name a spec ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunLink:
    """How a run manifest relates to the specs: its resolved body and its edges."""

    spec: dict[str, Any]  # the manifest's `spec` with `spec_ref` resolved (spec_id, version)
    depends_on: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # body fields known only after apply ("spec_id")
    affected_by: str | None = None  # a spec key this plan changes, the run being on latest
    blocked_by: str | None = None  # a spec key that ended FAILED
    notes: tuple[str, ...] = ()
    spec_ref: SpecRef | None = None


def link_run(
    manifest: Manifest, changes: Mapping[str, SpecChange], recorded: Mapping[str, Any]
) -> RunLink:
    """`manifest`'s spec with `spec_ref` resolved against this plan's spec changes and state.

    `changes` are this plan's spec changes by name; `recorded` is `State.specs`.
    A run naming its spec by `spec_id` depends on a spec change whose recorded
    id it names (compared case-insensitively).
    """
    ref = manifest.spec_ref
    if ref is None:
        return _by_id(manifest, changes)
    change = changes.get(ref.name)
    spec_id = _known_id(change, recorded.get(ref.name))
    spec = {k: v for k, v in manifest.spec.items() if k != "spec_ref"}
    if spec_id is not None:
        spec = {"spec_id": spec_id, **spec}
    if ref.version is not None:
        spec["spec_version"] = ref.version
    depends = (change.key,) if change is not None else ()
    return RunLink(
        spec=spec,
        depends_on=depends,
        unknown=() if spec_id is not None else ("spec_id",),
        affected_by=_affected(change, ref.version),
        blocked_by=change.key if change is not None and change.failed else None,
        notes=(*_notes(ref, change), *_missing_version(ref, change, recorded.get(ref.name))),
        spec_ref=ref,
    )


def _known_id(change: SpecChange | None, record: Any) -> str | None:
    """The spec's id when it is known at plan time (not when this plan creates it)."""
    if change is not None and change.action is SpecAction.CREATE:
        return None
    spec_id = get_field(record, "spec_id")
    return str(spec_id) if spec_id else None


def _by_id(manifest: Manifest, changes: Mapping[str, SpecChange]) -> RunLink:
    spec_id = manifest.spec.get("spec_id")
    if isinstance(spec_id, str):
        for change in changes.values():
            if change.spec_id and change.spec_id.lower() == spec_id.lower():
                version = manifest.spec.get("spec_version")
                return RunLink(
                    spec=dict(manifest.spec),
                    depends_on=(change.key,),
                    affected_by=_affected(change, version),
                    blocked_by=change.key if change.failed else None,
                    notes=_notes(SpecRef(change.name, version), change),
                )
    return RunLink(spec=dict(manifest.spec))


def _missing_version(ref: SpecRef, change: SpecChange | None, record: Any) -> tuple[str, ...]:
    """A note when the pinned version is past the newest one state records (and this
    plan does not make it): the API would refuse the run."""
    if ref.version is None or (change is not None and change.new_version is not None):
        return ()  # a planned version is checked by _notes
    numbers = [int(get_field(v, "number", 0) or 0) for v in get_field(record, "versions") or ()]
    if not numbers or ref.version <= max(numbers):
        return ()
    return (
        f"spec {ref.name!r} has no version {ref.version} in state (its newest is "
        f"{max(numbers)}): the API will refuse the run unless someone made it since "
        "(`dfr plan --refresh` reads the versions)",
    )


def _affected(change: SpecChange | None, version: int | None) -> str | None:
    """The key of a spec update a run on latest (`version` None) is affected by."""
    if change is not None and change.action is SpecAction.UPDATE and version is None:
        return change.key
    return None


def _notes(ref: SpecRef, change: SpecChange | None) -> tuple[str, ...]:
    if change is None:
        return ()
    if change.failed:
        return (f"blocked: spec {ref.name!r} ended FAILED: {change.error}",)
    if change.action is not SpecAction.UPDATE:
        return ()  # a spec created now: its runs are new too and wait for it (depends_on)
    if ref.version is None:
        after = change.new_version
        made = f" (version {after})" if after is not None else ""
        return (
            f"affected: uses latest of spec {ref.name!r}, which this plan updates{made}; "
            "submitted after the update",
        )
    if change.new_version is not None and ref.version > change.new_version:
        return (
            f"spec {ref.name!r} will have no version {ref.version} after this plan "
            f"(its newest will be {change.new_version}): the API will refuse the run",
        )
    return (f"pinned to version {ref.version} of spec {ref.name!r}: its change does not touch it",)


def link_change(change: Change, link: RunLink, specs: Mapping[str, SpecChange]) -> Change:
    """A run's change with its place in the graph (reconciler.specplan's RunLink).

    A recorded run whose spec this plan creates anew (its id unknown until then)
    is replaced, as Terraform replaces on a value known only after apply; a
    recorded run on `latest` of a spec this plan changes is only "affected".
    """
    from reconciler.plan import MISSING, Action, FieldChange  # the plan imports this module
    from reconciler.state.model import TERMINAL

    notes = link.notes
    prior = change.prior
    if link.affected_by and change.action is Action.NOOP and prior is not None:
        notes = (
            f"affected: uses latest of {link.affected_by}, which this plan changes; the "
            f"recorded run {prior.run_id} is kept (a finished run is not redone because its "
            f"spec moved on): `dfr apply --replace {change.name}` runs it on the new version",
        )
    out = replace(
        change,
        depends_on=link.depends_on,
        unknown=link.unknown,
        spec_ref=link.spec_ref,
        affected_by=link.affected_by,
        blocked_by=link.blocked_by,
        reasons=(*change.reasons, *notes),
    )
    spec = specs.get(link.spec_ref.name) if link.spec_ref else None
    fresh = spec is not None and spec.action is SpecAction.CREATE and not spec.resolve_intent
    if "spec_id" in link.unknown and fresh and prior is not None and prior.run_id:
        field_change = FieldChange("spec_id", prior.spec.get("spec_id", MISSING), KNOWN_AFTER_APPLY)
        out = replace(
            out,
            action=Action.REPLACE,
            fields=(*out.fields, field_change),
            cancel_prior=prior.status not in TERMINAL,
            reasons=(*out.reasons, "its spec is created anew by this plan"),
        )
    return out


# -- the graph ----------------------------------------------------------------------


def topological_order(
    edges: Mapping[str, Iterable[str]], rank: Mapping[str, int] | None = None
) -> list[str]:
    """Every key of `edges` (key -> keys it depends on), dependencies first.

    Among the keys ready at a time, the lowest (rank, key) goes first, so the
    order is deterministic. Dependencies on keys not in `edges` are ignored
    (a spec this plan does not manage). Raises ValueError naming the keys of a
    cycle (the planner never builds one: runs depend only on specs).
    """
    ranks = rank or {}
    waiting = {k: {d for d in deps if d in edges and d != k} for k, deps in edges.items()}
    users: dict[str, list[str]] = {k: [] for k in edges}
    for k, deps in waiting.items():
        for d in deps:
            users[d].append(k)
    ready = [(ranks.get(k, 0), k) for k, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, key = heapq.heappop(ready)
        out.append(key)
        for user in users[key]:
            waiting[user].discard(key)
            if not waiting[user]:
                heapq.heappush(ready, (ranks.get(user, 0), user))
    if len(out) != len(edges):
        stuck = sorted(k for k in edges if k not in set(out))
        raise ValueError(f"dependency cycle among: {', '.join(stuck)}")
    return out


def plan_order(specs: Sequence[SpecChange], runs: Sequence[Any]) -> tuple[str, ...]:
    """The plan's keys in dependency order: spec creates, spec updates, the rest, runs."""
    rank = {SpecAction.CREATE: 0, SpecAction.UPDATE: 1, SpecAction.NOOP: 2}
    edges: dict[str, tuple[str, ...]] = {s.key: s.depends_on for s in specs}
    ranks = {s.key: rank[s.action] for s in specs}
    for change in runs:
        edges[change.key] = tuple(change.depends_on)
        ranks[change.key] = 3
    return tuple(topological_order(edges, ranks))


def with_dependants(specs: Sequence[SpecChange], runs: Sequence[Any]) -> tuple[SpecChange, ...]:
    """`specs` with `dependants`: the keys of the runs that depend on each."""
    users: dict[str, list[str]] = {}
    for change in runs:
        for key in change.depends_on:
            users.setdefault(key, []).append(change.key)
    return tuple(replace(s, dependants=tuple(sorted(users.get(s.key, ())))) for s in specs)


def resolve_manifest(manifest: Manifest, state: Any) -> Manifest | None:
    """`manifest` with its `spec_ref` resolved against the specs `state` records (for
    commands that use one manifest outside a plan: import, diff); the manifest itself
    without a spec_ref; None when state records no id for the spec it names."""
    if manifest.spec_ref is None:
        return manifest
    link = link_run(manifest, {}, recorded_specs(state))
    return None if link.unknown else replace(manifest, spec=link.spec)
