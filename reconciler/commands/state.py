"""`dfr refresh`, `dfr status`, `dfr state list|show|rm|mv`, `dfr force-unlock`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from reconciler.engine.backends import open_backend
from reconciler.errors import EXIT_ERROR, EXIT_OK, StateError
from reconciler.state.model import RunRecord, SpecRecord, State
from reconciler.textsafe import one_line
from reconciler.views.status import display_status

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


#: How `dfr state show|rm` name a spec's record; a bare NAME (or run/NAME) is a run's.
SPEC_PREFIX, RUN_PREFIX = "spec/", "run/"


def address(arg: str) -> tuple[str, str]:
    """("spec", NAME) for `spec/NAME`, ("run", NAME) for `run/NAME` or a bare NAME.

    Manifest names never hold a "/", so the two cannot be confused."""
    for kind, prefix in (("spec", SPEC_PREFIX), ("run", RUN_PREFIX)):
        if arg.startswith(prefix):
            return kind, arg[len(prefix) :]
    return "run", arg


def record_to_json(record: RunRecord) -> dict[str, Any]:
    from reconciler.state.statefile import record_to_dict

    return {"name": record.name, **record_to_dict(record)}


@dataclass(frozen=True, slots=True)
class StatusArgs:
    as_json: bool = False
    labels: tuple[str, ...] = ()  # KEY=VALUE
    sort: str = "name"  # name, status, cost, age
    long: bool = False


def run_status(inv: Invocation, args: StatusArgs, out: TextIO, err: TextIO) -> int:
    state = open_backend(inv).read()
    wanted = dict(label.split("=", 1) for label in args.labels)
    records = [
        r
        for r in sorted(state.runs.values(), key=lambda r: r.name)
        if all(r.labels.get(k) == v for k, v in wanted.items())
    ]
    data = _data_checks(inv, records)
    if args.as_json:
        from reconciler.views.data_status import data_json

        json.dump(
            {
                "serial": state.serial,
                "lineage": state.lineage,
                "runs": [{**record_to_json(r), "data": data_json(r, data or {})} for r in records],
            },
            out,
            indent=2,
        )
        out.write("\n")
        return EXIT_OK
    if not records:
        out.write("No runs recorded.\n" if not state.runs else "No runs match the labels.\n")
        return EXIT_OK
    from reconciler.views.status import write_status

    write_status(records, out, sort=args.sort, long=args.long, data=data)
    return EXIT_OK


def _data_checks(inv: Invocation, records: list[RunRecord]) -> dict[str, Any] | None:
    """The output folders' checks against state (reconciler.outputs), or None when no
    run recorded a pull (then status shows no DATA column)."""
    if not any(r.outputs is not None for r in records):
        return None
    from reconciler.outputs.hashcache import HashCache
    from reconciler.outputs.scan import check_records

    cache = HashCache.open(disabled=inv.no_cache)
    checks = dict(check_records(inv.project.root(), records, cache))
    cache.flush()
    return checks


@dataclass(frozen=True, slots=True)
class StateListArgs:
    as_json: bool = False


def run_state_list(inv: Invocation, args: StateListArgs, out: TextIO, err: TextIO) -> int:
    state = open_backend(inv).read()
    records = [state.runs[n] for n in state.names()]
    specs = [state.specs[n] for n in sorted(state.specs)]
    if args.as_json:
        runs = [{"name": r.name, "run_id": r.run_id, "status": r.status} for r in records]
        json.dump(
            [{**run, "kind": "run"} for run in runs]
            + [
                {"name": s.name, "run_id": None, "status": s.status, "kind": "spec"}
                | {"spec_id": s.spec_id}
                for s in specs
            ],
            out,
            indent=2,
        )
        out.write("\n")
        return EXIT_OK
    for r in records:
        ident, status = one_line(r.run_id or "-"), one_line(display_status(r))
        out.write(f"{one_line(r.name)}\t{ident}\t{status}\n")
    for spec in specs:
        ident, status = one_line(spec.spec_id or "-"), one_line(spec.status or "-")
        out.write(f"{SPEC_PREFIX}{one_line(spec.name)}\t{ident}\t{status}\n")
    return EXIT_OK


_Record = TypeVar("_Record", RunRecord, SpecRecord)


def _known(records: Mapping[str, _Record], name: str, where: str, shown: str = "") -> _Record:
    """The record of `name` (a run's, or a spec's from `state.specs`), or a StateError
    naming it as `shown` (default: the name)."""
    record = records.get(name)
    if record is None:
        raise StateError(f"{shown or name!r} is not in state {where}")
    return record


def _known_spec(state: State, name: str, where: str) -> SpecRecord:
    return _known(state.specs, name, where, SPEC_PREFIX + name)


@dataclass(frozen=True, slots=True)
class StateShowArgs:
    name: str
    as_json: bool = False


def run_state_show(inv: Invocation, args: StateShowArgs, out: TextIO, err: TextIO) -> int:
    backend = open_backend(inv)
    kind, name = address(args.name)
    state = backend.read()
    if kind == "spec":
        _show(_known_spec(state, name, backend.describe()), out, args.as_json)
        return EXIT_OK
    record = _known(state.runs, name, backend.describe(), args.name)
    _show(record, out, args.as_json)
    if args.as_json:
        return EXIT_OK
    from reconciler.views.status import field_lines

    lines = field_lines(record)
    if lines:
        out.write("\nfields (sent by dfr, used by the API):\n")
        for line in lines:
            out.write(f"  {one_line(line)}\n")
    return EXIT_OK


def _show(record: RunRecord | SpecRecord, out: TextIO, as_json: bool) -> None:
    """Write a record, as JSON or one `key  value` line per field (a run's spec and
    used fields are left to `field_lines`)."""
    from reconciler.state.statefile import spec_to_dict

    is_run = isinstance(record, RunRecord)
    document = record_to_json(record) if isinstance(record, RunRecord) else spec_to_dict(record)
    if as_json:
        json.dump(document, out, indent=2)
        out.write("\n")
        return
    shown = {k: v for k, v in document.items() if not is_run or k not in ("spec", "used")}
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out.write(f"{key.ljust(width)}  {one_line(text)}\n")


@dataclass(frozen=True, slots=True)
class StateRmArgs:
    names: tuple[str, ...]
    force: bool = False  # forget unconfirmed submissions too


def run_state_rm(inv: Invocation, args: StateRmArgs, out: TextIO, err: TextIO) -> int:
    backend = open_backend(inv)
    with backend.lock("state rm", timeout=inv.lock_timeout) as store:
        # Every name is checked before anything is removed: a typo removes nothing.
        named: dict[tuple[str, str], str] = {}
        for arg in args.names:
            named.setdefault(address(arg), arg)  # run/x and x are one record
        found = [
            _known_spec(store.state, name, backend.describe())
            if kind == "spec"
            else _known(store.state.runs, name, backend.describe(), arg)
            for (kind, name), arg in named.items()
        ]
        _check_unconfirmed(found, force=args.force, err=err)
        for record in found:
            if isinstance(record, SpecRecord):
                store.remove_spec(record.name)
                spec_id = one_line(record.spec_id or "")
                spec = f"; spec {spec_id} itself was not touched" if spec_id else ""
                out.write(f"Removed {SPEC_PREFIX}{record.name} from state{spec}.\n")
                if record.spec_id:  # its name stays taken in the API
                    err.write(
                        f"A Spec manifest named {record.name!r} would now find the name taken"
                        f" (nothing is created twice); `dfr import spec {record.name}"
                        f" {spec_id}` tracks it again.\n"
                    )
                continue
            store.remove(record.name)
            run = f"; run {one_line(record.run_id)} itself was not touched" if record.run_id else ""
            out.write(f"Removed {record.name} from state{run}.\n")
    return EXIT_OK


def _check_unconfirmed(found: list[Any], *, force: bool, err: TextIO) -> None:
    """A run's record with an unconfirmed submission is the only trace of the run its
    POST may have made: forgotten, the next apply pays again. Refused unless `force`."""
    names = [r.name for r in found if isinstance(r, RunRecord) and r.intent and not r.run_id]
    if not names:
        return
    listed = ", ".join(names)
    if not force:
        raise StateError(
            f"{listed}: a submission is unconfirmed (its answer was lost): the run it may "
            "have made is recorded nowhere else, and the next apply would pay for another. "
            f"`dfr refresh` looks for it first; `dfr state rm --force {' '.join(names)}` "
            "forgets it anyway; nothing was removed"
        )
    err.write(
        f"warning: {listed}: an unconfirmed submission is forgotten; a run it made is no "
        "longer looked for\n"
    )


@dataclass(frozen=True, slots=True)
class StateMvArgs:
    old: str
    new: str


def run_state_mv(inv: Invocation, args: StateMvArgs, out: TextIO, err: TextIO) -> int:
    """Keep OLD's record (its run, intent, history) under NEW: a renamed manifest's run."""
    if "spec" in (address(args.old)[0], address(args.new)[0]):
        from reconciler.errors import UsageError

        raise UsageError(
            "dfr state mv renames a run's record; a spec's record keeps its name (runs"
            " name it by spec_ref): forget it with dfr state rm spec/NAME instead"
        )
    old, new = address(args.old)[1], address(args.new)[1]
    check_manifest_name(new, args.new)
    backend = open_backend(inv)
    with backend.lock("state mv", timeout=inv.lock_timeout) as store:
        record = _known(store.state.runs, old, backend.describe())
        if new in store.state.runs:
            taken = store.state.runs[new].run_id
            raise StateError(
                f"{new!r} is already in state {backend.describe()}"
                + (f" (run {one_line(taken)})" if taken else "")
                + f"; nothing was moved. To give {new} the run of {old}, forget the other "
                f"first: dfr state rm {new}"
            )
        store.move(old, new)
    run = f"run {one_line(record.run_id)}" if record.run_id else "no run id yet"
    out.write(f"Moved {old} to {new} ({run}).\n")
    return EXIT_OK


def check_manifest_name(name: str, typed: str | None = None) -> None:
    """UsageError unless `name` is a valid `metadata.name` (the manifest schema's rule);
    the error quotes it as `typed` (default: `name`), e.g. with its run/ prefix."""
    import re

    from reconciler.errors import UsageError
    from reconciler.schema import manifest_schema

    rule = manifest_schema()["$defs"]["metadata"]["properties"]["name"]
    if len(name) > rule["maxLength"] or not re.fullmatch(rule["pattern"], name):
        raise UsageError(
            f"{name if typed is None else typed!r} is not a valid manifest name: 1 to "
            f"{rule['maxLength']} characters of "
            "lowercase letters, digits and '-', starting and ending with a letter or digit"
        )


@dataclass(frozen=True, slots=True)
class ForceUnlockArgs:
    lock_id: str


def run_force_unlock(inv: Invocation, args: ForceUnlockArgs, out: TextIO, err: TextIO) -> int:
    backend = open_backend(inv)
    backend.force_unlock(args.lock_id)
    out.write(f"Removed lock {args.lock_id} from {backend.describe()}.\n")
    return EXIT_OK


@dataclass(frozen=True, slots=True)
class RefreshArgs:
    switch_api: bool = False  # the state's runs belong to another API URL, and that is meant
    confirm_gone: bool = False  # every run 404s: they were deleted, not a wrong API


def run_refresh(inv: Invocation, args: RefreshArgs, out: TextIO, err: TextIO) -> int:
    """`dfr refresh`: unconfirmed submissions resolved, unfinished runs' statuses recorded."""
    from reconciler import observe
    from reconciler.engine import session
    from reconciler.engine.client import check_api
    from reconciler.specrecord import refresh_specs

    def changed(before: RunRecord, after: RunRecord) -> None:
        if after.drift and not before.drift:
            err.write(
                f"{after.name}: run {one_line(after.run_id)} no longer exists in the API (404)\n"
            )
        elif after.status != before.status:
            err.write(f"{after.name}: {one_line(before.status)} -> {one_line(after.status)}\n")

    with session(inv, "refresh") as s:
        client, store = s.client, s.store
        check_api(store.state, client, switch=args.switch_api, store=store)
        problems = _resolve_unconfirmed(client, store, err)
        unfinished = [r for r in store.state.runs.values() if r.run_id and not r.is_terminal]
        watched = _Watched(client)
        observe.observe(
            watched, unfinished, store, on_change=changed, confirm_gone=args.confirm_gone
        )
        _warn_other_spec(unfinished, watched.seen, err)
        _warn_shared(store.state, err)
        count = len(unfinished)
        # Specs: a newer version is an edit made elsewhere (the web app): recorded.
        specs = refresh_specs(
            client, store, on_change=lambda c: print(one_line(c.describe()), file=err)
        )
        read = len([r for r in store.state.specs.values() if r.spec_id])
        from reconciler.evaluations_apply import refresh_evaluations

        evaluations = refresh_evaluations(client, store, lambda line: print(line, file=err))
    out.write(f"Refreshed {count} unfinished run{'s' if count != 1 else ''}.\n")
    if evaluations:
        out.write(f"Read {evaluations} unfinished evaluation{'s' if evaluations != 1 else ''}.\n")
    if read:
        out.write(f"Read {read} spec{'s' if read != 1 else ''}: {len(specs)} changed.\n")
    return EXIT_ERROR if problems else EXIT_OK


class _Watched:
    """The client, keeping every run it answers by id (lower case): refresh compares
    what they report with what state recorded."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.base_url = client.base_url
        self.seen: dict[str, Any] = {}

    def _keep(self, run: Any) -> Any:
        if run.id:
            self.seen[run.id.lower()] = run
        return run

    def list_runs(self) -> list[Any]:
        return [self._keep(run) for run in self.client.list_runs()]

    def get_run(self, run_id: str) -> Any:
        return self._keep(self.client.get_run(run_id))


def _warn_other_spec(records: list[RunRecord], seen: Mapping[str, Any], err: TextIO) -> None:
    """A run's spec never changes: when the API reports another one than was sent,
    the run is not what state says it is (and plan cannot see it: a warning)."""
    for record in records:
        run = seen.get((record.run_id or "").lower())
        sent = record.spec.get("spec_id")
        reported = getattr(run, "spec_id", None)
        if not isinstance(sent, str) or not reported or reported.lower() == sent.lower():
            continue
        err.write(
            one_line(
                f"warning: {record.name}: run {record.run_id} now reports spec {reported}, "
                f"but was recorded for spec {sent}: its data may not be what the manifest "
                f"asks for. Check it in Dataframer; `dfr apply --replace {record.name}` "
                "pays for a run of the manifest's spec"
            )
            + "\n"
        )


def _warn_shared(state: State, err: TextIO) -> None:
    from reconciler.views.status import shared_note, shared_runs

    for run_id, names in shared_runs(list(state.runs.values())).items():
        err.write(f"warning: {shared_note(run_id, names)}\n")


def _resolve_unconfirmed(client: Any, store: Any, err: TextIO) -> int:
    """Adopt the runs of unconfirmed submissions (finishing the replaces they were part
    of); the number that stay ambiguous."""
    from reconciler import recovery
    from reconciler.errors import APIError
    from reconciler.matching import used_of

    problems = 0
    state = store.state
    pending = [r for r in state.runs.values() if r.intent is not None and not r.run_id]
    for res in recovery.resolve(client, state, pending):
        record = store.state.runs[res.name]
        if res.run is not None:
            store.put(
                record.evolve(
                    run_id=res.run.id,
                    status=res.run.status,
                    intent=None,
                    created_at=res.run.created_at,
                    used=used_of(res.run),
                    api=client.base_url,
                )
            )
            err.write(
                f"{res.name}: adopted run {one_line(res.run.id)} from an unconfirmed submission\n"
            )
            replaced = record.intent.replaces if record.intent else None
            if replaced:
                # The replace was approved by the apply that sent it: finish it.
                try:
                    client.cancel_run(replaced)
                    err.write(f"{res.name}: canceled run {replaced}, which it replaces\n")
                except APIError as exc:
                    err.write(
                        f"warning: {res.name}: the replaced run {replaced} could not be "
                        f"canceled ({exc.message}); cancel it in Dataframer if it runs\n"
                    )
        elif res.ambiguous:
            problems += 1
            err.write(f"{res.name}: {one_line(res.ambiguity_message())}\n")
    return problems
