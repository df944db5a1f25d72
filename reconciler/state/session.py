"""The session logic every backend shares: `BaseStore` and `close_on_exit`.

A backend's `lock()` hands out a `BaseStore` subclass: this module validates each
change, keeps the in-memory view, numbers the serials, makes the Store safe to
use from several threads and stops it after a failed write. The backend supplies
only how one change is made durable (`_write`, `_sync`), how a checkpoint and an
overwrite are written, and where the tombstone of a moved state goes.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace

from reconciler.errors import StateError
from reconciler.state import statefile
from reconciler.state.backend import Moved, Store
from reconciler.state.model import PolicyRecord, RunRecord, SpecRecord, State

__all__ = ["BaseStore", "close_on_exit"]


class BaseStore(Store):
    """Session logic shared by the backends.

    Writes go: validate the record (so nothing unstorable reaches disk), then
    under one mutex `_write` the change (a backend-specific append), update the
    in-memory view and maybe checkpoint; then, outside the mutex, `_sync` until
    that change is durable. Splitting write and sync lets a backend group-commit:
    one fsync can cover the changes of several threads.

    Any failure while writing poisons the Store: it refuses further writes, since
    what reached the disk is then uncertain and the caller must stop and re-read.
    """

    def __init__(self, state: State, *, name: str, lock_id: str) -> None:
        self._name = name
        #: The id of the lock this session holds (what `dfr force-unlock` takes).
        self.lock_id = lock_id
        self._mutex = threading.Lock()
        self._lineage = state.lineage
        self._serial = state.serial
        self._runs = dict(state.runs)
        self._policy = state.policy
        self._specs = dict(state.specs)
        self._view: State | None = state
        self._closed = False
        self._poisoned: str | None = None
        # Changes written since the last checkpoint (the journal length).
        self._pending = 0

    # -- hooks a backend implements

    @abc.abstractmethod
    def _write(self, op: str, name: str, text: str | None, serial: int) -> int:
        """Write one change; return a ticket for `_sync`.

        `op` "put": `text` is the record of `name` (JSON); "remove": `text` is None;
        "move": `text` is the record of `name` under its new name (which it holds),
        stored there while `name` goes, in the same change; "policy": `name` is ""
        and `text` the policy in force (JSON), or None when there is none; "spec":
        `name` is a spec's and `text` its record (JSON), or None to forget it.
        """

    @abc.abstractmethod
    def _sync(self, ticket: int) -> None:
        """Return once the change with `ticket` (and all before it) is durable."""

    @abc.abstractmethod
    def _write_checkpoint(self, state: State) -> None:
        """Make `state` the backend's snapshot and drop the pending changes."""

    def _should_checkpoint(self) -> bool:
        # Amortised O(1): a checkpoint costs O(len(runs)) and happens only after
        # at least that many changes (and at least 256, so small states do not
        # rewrite their snapshot every few changes).
        return self._pending > max(256, len(self._runs))

    # -- the Store API

    @property
    def state(self) -> State:
        with self._mutex:
            if self._view is None:
                self._view = self._current()
            return self._view

    @property
    def name(self) -> str:
        return self._name

    @property
    def failure(self) -> str | None:
        return self._poisoned

    def get(self, name: str) -> RunRecord | None:
        """The current record of `name` (O(1), unlike building `state`)."""
        with self._mutex:
            return self._runs.get(name)

    def put(self, record: RunRecord) -> None:
        text, stored = statefile.canonical_record(record)
        self._change("put", stored.name, text, stored)

    def put_many(self, records: Iterable[RunRecord]) -> None:
        """Write every record, then wait once until all are durable (a group commit).

        Each record is its own change (serial += 1 each, one journal line each),
        so a crash leaves a prefix of the batch, as separate puts would; none is
        acknowledged before all are durable.
        """
        changes = [statefile.canonical_record(record) for record in records]
        if not changes:
            return
        with self._mutex:
            self._check_usable()
            ticket = 0
            for text, stored in changes:
                ticket = self._write_locked("put", stored.name, text, stored)
        self._durable(ticket)

    def remove(self, name: str) -> None:
        self._change("remove", name, None, None)

    def move(self, old: str, new: str) -> None:
        with self._mutex:
            self._check_usable()
            record = self._runs.get(old)
            if record is None:
                raise StateError(f"state {self._name} has no run named {old!r}")
            if new in self._runs:
                raise StateError(f"state {self._name} already has a run named {new!r}")
            text, stored = statefile.canonical_record(replace(record, name=new))
            ticket = self._write_locked("move", old, text, stored)
        self._durable(ticket)

    def set_policy(self, policy: PolicyRecord | None) -> None:
        text = None if policy is None else statefile.encode(statefile.policy_to_dict(policy))
        with self._mutex:
            self._check_usable()
            ticket = self._write_locked("policy", "", text, None, policy)
        self._durable(ticket)

    def put_spec(self, record: SpecRecord) -> None:
        text, stored = statefile.canonical_spec(record)
        with self._mutex:
            self._check_usable()
            ticket = self._write_locked("spec", stored.name, text, None, spec=stored)
        self._durable(ticket)

    def remove_spec(self, name: str) -> None:
        with self._mutex:
            self._check_usable()
            if name not in self._specs:
                raise StateError(f"state {self._name} has no spec named {name!r}")
            ticket = self._write_locked("spec", name, None, None)
        self._durable(ticket)

    def checkpoint(self) -> None:
        with self._mutex:
            self._check_usable()
            self._checkpoint_locked()

    def overwrite(self, state: State) -> None:
        """Make `state` (runs, lineage and serial as given) the whole state; durable on return.

        For `dfr state migrate`, which moves a state between backends keeping its
        identity. The caller has done the lineage/serial checks; the previous
        content is replaced in one step (a backend keeps what it keeps of old
        versions: the file backend its backup).
        """
        with self._mutex:
            self._check_usable()
            with self._stop_on_failure():
                self._write_overwrite(state)
            self._lineage, self._serial, self._runs = state.lineage, state.serial, dict(state.runs)
            self._policy = state.policy
            self._specs = dict(state.specs)
            self._view = None
            self._pending = 0

    def _write_overwrite(self, state: State) -> None:
        """Replace the backend's state by `state`; by default a checkpoint of it (snapshots)."""
        self._write_checkpoint(state)

    def mark_moved(self, moved: Moved | None) -> None:
        with self._mutex:
            self._check_usable()
            with self._stop_on_failure():
                self._write_moved(moved)
            self.moved = moved

    @abc.abstractmethod
    def _write_moved(self, moved: Moved | None) -> None:
        """Make the tombstone `moved` (None: its absence) durable beside the state."""

    # -- internals

    def _check_usable(self) -> None:
        if self._closed:
            raise StateError(f"state {self._name}: the lock was released; lock it again to write")
        if self._poisoned is not None:
            raise StateError(
                f"state {self._name}: an earlier write failed ({self._poisoned}); "
                "nothing more is written in this session"
            )

    @contextlib.contextmanager
    def _stop_on_failure(self) -> Iterator[None]:
        """A write whose failure (any exception) poisons the session, then propagates."""
        try:
            yield
        except BaseException as exc:
            self._poison(exc)
            raise

    def _poison(self, exc: BaseException) -> None:
        self._poisoned = str(exc) or type(exc).__name__

    def _change(self, op: str, name: str, text: str | None, record: RunRecord | None) -> None:
        with self._mutex:
            self._check_usable()
            if op == "remove" and name not in self._runs:
                raise StateError(f"state {self._name} has no run named {name!r}")
            ticket = self._write_locked(op, name, text, record)
        self._durable(ticket)

    def _write_locked(
        self,
        op: str,
        name: str,
        text: str | None,
        record: RunRecord | None,
        policy: PolicyRecord | None = None,
        spec: SpecRecord | None = None,
    ) -> int:
        """Write one change and move the in-memory view (the mutex is held)."""
        serial = self._serial + 1
        with self._stop_on_failure():
            ticket = self._write(op, name, text, serial)
        # Only now that the change is written does the view move, so a
        # failed write leaves memory equal to what is on disk.
        self._serial = serial
        if op == "policy":
            self._policy = policy
        elif op == "spec":
            if spec is None:
                del self._specs[name]
            else:
                self._specs[name] = spec
        elif record is None or op == "move":
            del self._runs[name]
        if record is not None:
            self._runs[record.name] = record
        self._view = None
        self._pending += 1
        return ticket

    def _durable(self, ticket: int) -> None:
        """Wait until the change with `ticket` (and all before it) is durable; maybe compact."""
        try:
            self._sync(ticket)
        except BaseException as exc:
            with self._mutex:
                self._poison(exc)
            raise
        # The change is durable. Compact afterwards, so that a failing
        # checkpoint can never leave this change unacknowledged-but-lost.
        if self._should_checkpoint():
            with self._mutex:
                if self._poisoned is None and self._should_checkpoint():
                    self._checkpoint_locked()

    def _current(self) -> State:
        return State(
            format_version=statefile.FORMAT_VERSION,
            serial=self._serial,
            lineage=self._lineage,
            runs=dict(self._runs),
            policy=self._policy,
            specs=dict(self._specs),
        )

    def _checkpoint_locked(self) -> None:
        if self._pending == 0:
            return
        # A failed checkpoint loses nothing (every change is still in the
        # journal), but the files' exact shape is now uncertain: stop writing.
        with self._stop_on_failure():
            self._write_checkpoint(self._current())
        self._pending = 0

    def _close(self, *, checkpoint: bool) -> None:
        """End the session: final checkpoint (if asked and possible), then refuse writes."""
        with self._mutex:
            try:
                if checkpoint and self._poisoned is None and not self._closed:
                    self._checkpoint_locked()
            finally:
                self._closed = True


@contextlib.contextmanager
def close_on_exit(store: BaseStore) -> Iterator[BaseStore]:
    """Yield `store`; on exit checkpoint it, unless that would mask an error in flight.

    If the body raised, a failing final checkpoint is dropped in favour of the
    original error: every change is already durable in the journal, so the next
    session recovers it.
    """
    try:
        yield store
    except BaseException:
        with contextlib.suppress(StateError, OSError):
            store._close(checkpoint=True)
        raise
    store._close(checkpoint=True)
