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

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.engine.loading import load_scoped
from reconciler.errors import EXIT_OK, DfrError
from reconciler.matching import body_of, run_mismatches, used_of
from reconciler.observe import TRACKED
from reconciler.state.model import PENDING, RunRecord, utc_now
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.api import DataframerClient
    from reconciler.invocation import Invocation
    from reconciler.manifests import Manifest, SpecManifest
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

    # Blanks around a pasted id are not part of it: " ID" is the run ID.
    name, run_id = args.name.removeprefix("run/"), args.run_id.strip()
    specs: list[SpecManifest] = []
    manifests = {m.name: m for m in load_scoped(inv, args.paths, err, found=specs)[0]}
    manifest = manifests.get(name)
    if manifest is None:
        if name in {spec.name for spec in specs}:
            raise DfrError(
                f"{name!r} is a Spec manifest, and import adopts a run for a run's manifest; "
                f"a spec made by hand is adopted with `dfr import spec {name} SPEC_ID`"
            )
        raise DfrError(
            f"no manifest is named {name!r}; import adopts a run for an existing manifest"
        )
    with session(inv, "import") as s:
        client, store = s.client, s.store
        _check_api(store.state, client.base_url)
        manifest = _resolved(manifest, store.state)
        record = store.state.runs.get(name)
        if record is not None and record.run_id and record.run_id.lower() == run_id.lower():
            out.write(f"{name} already records run {one_line(record.run_id)}; nothing to do.\n")
            return EXIT_OK
        _check_free(store.state, name, run_id, manifests)
        run = _read_run(client, run_id)
        if record is not None and record.intent is not None and not record.run_id:
            _check_unconfirmed(client, store.state, record, run_id)
        diffs = _differences(manifest, run, run_id, force=args.force)
        _record(client, store, manifest, run, run_id, forced=bool(diffs))
    recorded = one_line(run.id or run_id)
    out.write(f"Imported run {recorded} ({one_line(run.status or 'status unknown')}) as {name}.\n")
    if diffs:
        err.write(
            f"warning: {name}: run {recorded} differs from the manifest: "
            + one_line("; ".join(diffs))
            + f". `dfr plan` shows it as a replace; `dfr apply --replace {name}` would pay "
            "for a new run\n"
        )
    return EXIT_OK


def _check_api(state: State, api: str) -> None:
    """Refuse a run of another API than the state's runs belong to: recorded, it would
    leave a state of two APIs, which refresh and apply refuse against either."""
    from reconciler.engine.client import same_api
    from reconciler.errors import WrongAPIError

    runs = [r for r in state.runs.values() if r.api and (r.run_id or r.intent)]
    others = sorted({r.api for r in runs if r.api and not same_api(r.api, api)})
    if others:
        raise WrongAPIError(
            f"this state's runs belong to {others[0]}, not {api}: import runs of that API "
            f"(--api-url {others[0]}), or move the state to {api} first with "
            "`dfr refresh --switch-api`"
        )


def _read_run(client: DataframerClient, run_id: str) -> Any:
    """The run RUN_ID as the API answers it (NotFoundError: it does not exist), refused
    when the answer is about another run: recording it would lose RUN_ID, or give a
    run that another name records a second name."""
    run = client.get_run(run_id)
    if not run.id.strip():  # no id in the answer: it is the run asked for
        return replace(run, id=run_id)
    if run.id.lower() != run_id.lower():
        raise DfrError(
            f"asked for run {run_id}, the API answered about run {one_line(run.id)!r}; "
            "nothing was recorded"
        )
    return run


def _differences(manifest: Manifest, run: Any, run_id: str, *, force: bool) -> list[str]:
    """What differs between the run and the manifest, one description each; a
    DfrError when something does and `force` was not given."""
    diffs = [d.describe() for d in run_mismatches(manifest.body, run)]
    if not run.spec_id:
        # Nothing to compare the most telling field with: not a check that passed.
        diffs.insert(0, "the API's answer does not say which spec the run uses")
    if diffs and not force:
        raise DfrError(
            f"run {run_id} does not match manifest {manifest.name!r} ({manifest.where}): "
            + "; ".join(diffs)
            + ". Adopt it anyway with `dfr import --force`: the next plan then shows "
            "the difference as a replace"
        )
    return diffs


def _check_unconfirmed(client: Any, state: State, record: RunRecord, run_id: str) -> None:
    """NAME has a submission whose answer was lost: refuse RUN_ID when the run that
    submission made is found and is another one (importing would leave that run paid
    for and recorded nowhere). Among several candidates, any one may be chosen."""
    from reconciler.recovery import resolve

    (found,) = resolve(client, state, [record])
    runs = (found.run,) if found.run is not None else found.candidates
    ids = [run.id for run in runs]
    if ids and run_id.lower() not in {i.lower() for i in ids}:
        found_ids = ", ".join(one_line(i) for i in ids)
        raise DfrError(
            f"{record.name} has an unconfirmed submission, and the run it made was found "
            f"({found_ids}); importing {run_id} would leave that run paid for and recorded "
            f"nowhere. Adopt it with `dfr refresh` (or `dfr import {record.name} RUN_ID` of "
            f"one of them); to keep {run_id} instead, then `dfr state rm {record.name}` and "
            "import it again"
        )


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
