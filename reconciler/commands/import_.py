"""`dfr import NAME RUN_ID`: adopt an existing run for a manifest, after checking it.

The run must answer the manifest's body by the rules every adoption uses
(`reconciler.matching`: fields the manifest leaves out match anything, ids
ignore case, settings that do not apply match null, lists compare as sets).
When it does not, the differences are listed and nothing is recorded, unless
`--force`: then the run is adopted with the body it actually answers recorded
as sent, so the next plan shows the difference (as a replace) instead of
hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.engine.loading import load_manifests
from reconciler.errors import EXIT_OK, DfrError
from reconciler.matching import body_of, run_mismatches, used_of
from reconciler.observe import TRACKED
from reconciler.state.model import PENDING, RunRecord, utc_now
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.api import DataframerClient
    from reconciler.invocation import Invocation
    from reconciler.manifests import Manifest
    from reconciler.state.backend import Store
    from reconciler.state.model import State


@dataclass(frozen=True, slots=True)
class ImportArgs:
    name: str
    run_id: str
    paths: tuple[str, ...] = ()
    force: bool = False


def run_import(inv: Invocation, args: ImportArgs, out: TextIO, err: TextIO) -> int:
    """`dfr import NAME RUN_ID`: record RUN_ID for manifest NAME once it answers its body."""
    from reconciler.engine import session

    name, run_id = args.name, args.run_id
    manifests = {m.name: m for m in load_manifests(inv, args.paths, err)}
    manifest = manifests.get(name)
    if manifest is None:
        raise DfrError(
            f"no manifest is named {name!r}; import adopts a run for an existing manifest"
        )
    with session(inv, "import") as s:
        client, store = s.client, s.store
        manifest = _resolved(manifest, store.state)
        body = manifest.body
        record = store.state.runs.get(name)
        if record is not None and record.run_id and record.run_id.lower() == run_id.lower():
            out.write(f"{name} already records run {record.run_id}; nothing to do.\n")
            return EXIT_OK
        _check_free(store.state, name, run_id, manifests)
        run = client.get_run(run_id)  # NotFoundError says the run does not exist
        diffs = run_mismatches(body, run)
        if diffs and not args.force:
            raise DfrError(
                f"run {run_id} does not match manifest {name!r} ({manifest.where}): "
                + "; ".join(d.describe() for d in diffs)
                + ". Adopt it anyway with `dfr import --force`: the next plan then shows "
                "the difference as a replace"
            )
        _record(client, store, manifest, run, run_id, forced=bool(diffs))
    out.write(f"Imported run {run_id} ({one_line(run.status or 'status unknown')}) as {name}.\n")
    if diffs:
        err.write(
            f"warning: {name}: run {run_id} differs from the manifest: "
            + one_line("; ".join(d.describe() for d in diffs))
            + f". `dfr plan` shows it as a replace; `dfr apply --replace {name}` would pay "
            "for a new run\n"
        )
    return EXIT_OK


def _resolved(manifest: Manifest, state: State) -> Manifest:
    """The manifest with its spec_ref resolved to the recorded spec's id: a run is
    checked against, and recorded with, the body apply would send (reconciler.specgraph)."""
    from reconciler.specgraph import resolve_manifest

    resolved = resolve_manifest(manifest, state)
    if resolved is None:
        ref = manifest.spec_ref
        raise DfrError(
            f"manifest {manifest.name!r} names spec {ref.name if ref else '?'!r} by spec_ref, "
            "and state records no id for it yet: create it with `dfr apply`, or adopt it with "
            "`dfr import spec NAME SPEC_ID`, then import the run"
        )
    return resolved


def _check_free(state: State, name: str, run_id: str, manifests: dict[str, Manifest]) -> None:
    """Refuse when NAME records another run, or another name records RUN_ID."""
    from reconciler.recovery import owned_ids

    record = state.runs.get(name)
    if record is not None and record.run_id:
        raise DfrError(
            f"{name} already records run {record.run_id}; remove it first with "
            f"`dfr state rm {name}` if {run_id} should replace it"
        )
    if run_id.lower() in owned_ids(state):
        owner = next(
            r.name
            for r in state.runs.values()
            if run_id.lower() in {i.lower() for i in [r.run_id or "", *r.previous_run_ids]}
        )
        hint = None
        if owner not in manifests:
            # The usual way here: the manifest was renamed, and its run is kept
            # under the old name.
            hint = (
                f"if manifest {owner!r} was renamed to {name!r}, keep its run with "
                f"`dfr state mv {owner} {name}`"
            )
        raise DfrError(f"run {run_id} is already recorded for {owner!r}", hint=hint)


def _record(
    client: DataframerClient,
    store: Store,
    manifest: Manifest,
    run: Any,
    run_id: str,
    *,
    forced: bool,
) -> None:
    """Record the adopted run. Forced: what the run answers is recorded as "sent", so
    the plan shows the manifest's differing fields as changes instead of hiding them."""
    body = manifest.body
    sent = {**body_of(run), "spec_id": run.spec_id or body["spec_id"]} if forced else body
    base = store.state.runs.get(manifest.name) or RunRecord.new(manifest.name)
    # What refresh tracks, as the run reports it now (None included: the run's word).
    reported = {key: getattr(run, key) for key in TRACKED}
    store.put(
        base.evolve(
            run_id=run.id or run_id,
            spec=sent,
            labels=dict(manifest.labels),
            intent=None,
            submitted_at=utc_now(),
            last_error=None,
            drift=None,
            used=used_of(run),
            api=client.base_url,
            **{**reported, "status": run.status or PENDING},
        )
    )
