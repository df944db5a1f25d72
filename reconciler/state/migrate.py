"""Moving a state between backends (`dfr state migrate --to`), losing no run.

Both sides are locked for the whole move (source first), so no apply can
record a run id on either side while the copy is in flight. The destination
takes the source's records (intents included: an unconfirmed submission stays
recoverable), its lineage and its serial, so saved plans and every later
lineage/serial check keep working. What is refused unless `force`:

- a destination that holds another state (another lineage, serial > 0): the
  move would make dfr forget that state's runs;
- a destination of the same lineage with a newer serial: it has changes the
  source lacks (migrate the other way);
- a destination of the same lineage and serial with other contents: diverged.

After writing, the destination is read back through a fresh connection or
file read and compared record by record; a mismatch is an error. The source's
records are never changed (it is the copy to fall back on), but it gets a
tombstone (`backend.Moved`: where the state went, when, by whom), written
durably under its lock after the copy was verified: from then on every
command refuses it, naming the destination, so no apply can submit from both.

Tombstones and migrating again:

- a moved source is migrated again only to where it went (re-running a
  migration is harmless), or anywhere with `force`;
- a moved destination is how a state moves back: the copy lands there and
  its tombstone goes (after the copy, so a crash in between leaves it refused,
  never live with old contents).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from reconciler.errors import StateConflictError, StateError
from reconciler.state import statefile
from reconciler.state.backend import Backend, Moved, StateMovedError, Store
from reconciler.state.model import State
from reconciler.state.session import BaseStore

__all__ = ["MigrateResult", "migrate", "same_contents"]


@dataclass(frozen=True)
class MigrateResult:
    """What a migration did."""

    runs: int
    serial: int
    lineage: str
    copied: bool  # False: the destination already held exactly this state
    #: Names whose run the destination recorded and the copy replaced (only with force).
    replaced: tuple[str, ...] = field(default=())
    #: Where the source had moved before (it was migrated again, with force), or None.
    was_moved_to: str | None = None
    #: The destination had been moved away (the state moved back there): its mark went.
    returned: bool = False


def same_contents(a: State, b: State) -> bool:
    """True when `a` and `b` hold the same lineage, serial, records and policy in force."""
    if (a.lineage, a.serial) != (b.lineage, b.serial) or a.runs.keys() != b.runs.keys():
        return False
    if a.policy != b.policy:
        return False
    return all(
        statefile.record_to_dict(a.runs[n]) == statefile.record_to_dict(b.runs[n]) for n in a.runs
    )


def _identity(backend: Backend) -> str:
    path = getattr(backend, "path", None)
    if isinstance(path, str):
        return os.path.realpath(path)
    return backend.describe()  # the postgres backend's: URL (with query) and workspace


def _check(src: State, dst: State, source: str, destination: str, force: bool) -> None:
    if dst.serial == 0:
        return  # nothing was ever recorded there
    runs = f"{len(dst.runs)} run{'s' if len(dst.runs) != 1 else ''}"
    hint = (
        "--force replaces the destination's state (dfr then forgets its runs; "
        "they are not canceled)"
    )
    if dst.lineage != src.lineage:
        if not force:
            raise StateConflictError(
                f"{destination} already holds another state (lineage {dst.lineage}, serial "
                f"{dst.serial}, {runs}); the state in {source} is lineage {src.lineage}",
                hint=hint,
            )
    elif dst.serial > src.serial:
        if not force:
            raise StateConflictError(
                f"{destination} is newer than {source} (serial {dst.serial} > {src.serial}): it "
                "holds changes the source lacks; migrate the other way instead",
                hint=hint,
            )
    elif dst.serial == src.serial and not same_contents(src, dst) and not force:
        raise StateConflictError(
            f"{destination} and {source} have diverged: both are serial {src.serial} of "
            f"lineage {src.lineage} with different runs",
            hint=hint,
        )


def migrate(
    source: Backend, destination: Backend, *, force: bool = False, timeout: float = 0.0
) -> MigrateResult:
    """Copy the state of `source` to `destination`, keeping lineage and serial; verify it;
    leave a tombstone on `source` naming `destination`."""
    src_name, dst_name = source.describe(), destination.describe()
    if _identity(source) == _identity(destination):
        raise StateError(f"{src_name} is both the source and the destination; nothing to do")
    # Open both even when moved: the source's tombstone is checked below (to say
    # what --force does), and a moved destination is a state moving back.
    source.allow_moved = destination.allow_moved = True
    with (
        source.lock("state migrate", timeout=timeout) as src_store,
        destination.lock("state migrate", timeout=timeout) as dst_store,
    ):
        moved = src_store.moved
        elsewhere = moved is not None and not _went_to(moved, destination)
        if moved is not None and elsewhere and not force:
            raise _moved_source(StateMovedError(source, moved), destination)
        src, dst = src_store.state, dst_store.state
        if src.serial == 0:
            raise StateError(f"{src_name} holds no state (nothing was ever recorded there)")
        _check(src, dst, src_name, dst_name, force)
        copied = not same_contents(src, dst)
        replaced: tuple[str, ...] = ()
        if copied:
            replaced = _copy(src, dst, dst_store, destination)
        # Only now that the destination holds the state (read back): it takes
        # commands again, and the source stops taking them.
        returned = dst_store.moved is not None
        if returned:
            dst_store.mark_moved(None)
        src_store.mark_moved(Moved.new(destination, src))
        return MigrateResult(
            len(src.runs),
            src.serial,
            src.lineage,
            copied=copied,
            replaced=replaced,
            was_moved_to=moved.to if moved is not None and elsewhere else None,
            returned=returned,
        )


def _went_to(moved: Moved, destination: Backend) -> bool:
    return (moved.backend, moved.workspace) == destination.address()


def _moved_source(error: StateMovedError, destination: Backend) -> StateError:
    return StateError(
        f"{error.message}; migrating it again would leave two live copies",
        hint=f"--force migrates this copy to {destination.describe()} anyway (then "
        f"{error.moved.to} is no longer where this state is used: retire it)",
    )


def _copy(src: State, dst: State, dst_store: Store, destination: Backend) -> tuple[str, ...]:
    """Write `src` over the destination and read it back; the names whose runs it replaced."""
    dst_name = destination.describe()
    replaced = tuple(
        sorted(
            name
            for name, record in dst.runs.items()
            if record.run_id and (name not in src.runs or src.runs[name].run_id != record.run_id)
        )
    )
    if not isinstance(dst_store, BaseStore):  # pragma: no cover - every backend is one
        raise StateError(f"{dst_name} cannot be written by a migration")
    dst_store.overwrite(src)
    # Read back through the backend (a fresh connection or file read) while
    # both locks are still held, so nothing can have changed in between.
    written = destination.read()
    if not same_contents(src, written):
        raise StateError(
            f"{dst_name} does not read back as what was written (serial {written.serial}, "
            f"{len(written.runs)} runs); the source is unchanged"
        )
    return replaced
