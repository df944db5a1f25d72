"""The state backend interface, the shared Store session logic, and an in-memory fake.

A backend persists one `State` and guards it with a lock::

    state = backend.read()                          # lock-free snapshot (plan, status)
    with backend.lock("apply", timeout=0.0) as store:   # StateLockedError names the holder
        store.state                                 # current State, incl. this session's writes
        store.put(record)                           # durable on return, serial += 1
        store.put_many(records)                     # all durable on return (one sync)
        store.remove(name)                          # durable on return, serial += 1
        store.move(old, new)                        # a rename in one change, serial += 1
        store.set_policy(policy)                    # the policy in force, serial += 1
        store.checkpoint()                          # compact (also done on release)

`put`/`remove` are thread-safe (apply records ids from a thread pool) and cost
O(one record): recording a run id never rewrites the whole state.

A state that does not exist yet reads as an empty State (serial 0) with a fresh
lineage; nothing is written until the first `put`/`remove`. Because that lineage
is new on every read, compare lineages only when `serial > 0`.

`BaseStore` holds the session logic every backend shares (validation, the
in-memory view, serial numbering, thread safety, poisoning after a failed
write); a backend only supplies how one change is made durable and how a
checkpoint is written. `InMemoryBackend` is the fake for other modules' tests,
with the same semantics, lock contention included.

A state that `dfr state migrate` moved elsewhere keeps a tombstone (`Moved`:
where it went, when, by whom), written durably under its lock. Every backend's
`read()` and `lock()` then raise StateMovedError naming the destination, so
that nobody plans or applies against the copy left behind; only migrate, which
sets `allow_moved`, opens it.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shlex
import socket
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, replace
from typing import Any

from reconciler import __version__
from reconciler.errors import StateError, StateLockedError
from reconciler.state import statefile
from reconciler.state.model import PolicyRecord, RunRecord, State, utc_now

__all__ = [
    "Backend",
    "BaseStore",
    "InMemoryBackend",
    "Moved",
    "StateMovedError",
    "Store",
    "holder_info",
    "locked_message",
    "whoami",
]


class Store(abc.ABC):
    """A locked session on a backend: the only way to change state."""

    @property
    @abc.abstractmethod
    def state(self) -> State:
        """The current State, including every write made through this Store."""

    @abc.abstractmethod
    def put(self, record: RunRecord) -> None:
        """Store `record` under its name; durable when this returns; serial += 1."""

    def put_many(self, records: Iterable[RunRecord]) -> None:
        """Store several records; all durable when this returns; serial += len(records).

        The default puts them one by one; `BaseStore` writes them all and then
        makes them durable together (one fsync for the file backend).
        """
        for record in records:
            self.put(record)

    @abc.abstractmethod
    def remove(self, name: str) -> None:
        """Forget `name` (StateError if unknown); durable when this returns; serial += 1."""

    def move(self, old: str, new: str) -> None:
        """Keep the record of `old` under `new` (its `name` changes, nothing else).

        One change (serial += 1), durable when this returns: no crash can leave
        the run under both names or neither. StateError when `old` is unknown
        or `new` is taken.
        """
        raise StateError("this state cannot rename a record")

    def set_policy(self, policy: PolicyRecord | None) -> None:
        """Record `policy` as the one in force for this state (None: none); one change,
        durable when this returns (serial += 1)."""
        raise StateError("this state cannot record a policy")

    @abc.abstractmethod
    def checkpoint(self) -> None:
        """Compact pending changes into the backend's snapshot (no-op if nothing changed)."""

    def get(self, name: str) -> RunRecord | None:
        """The current record of `name`, or None."""
        return self.state.runs.get(name)

    @property
    def failure(self) -> str | None:
        """The message of the write that failed and stopped this session, or None."""
        return None

    #: The tombstone this state had when it was locked (only with `allow_moved`).
    moved: Moved | None = None

    def mark_moved(self, moved: Moved | None) -> None:
        """Leave the tombstone `moved` on this state (None: remove it); durable on return."""
        raise StateError("this state cannot record that it moved")

    def unconfirmed(self) -> list[str]:
        """Names whose create POST was sent (its intent is durable) but whose run id is unknown."""
        return sorted(n for n, r in self.state.runs.items() if r.intent and not r.run_id)


class Backend(abc.ABC):
    """Where one State lives, and the lock that serialises its writers."""

    #: Open a state that was migrated elsewhere instead of raising StateMovedError
    #: (`dfr state migrate` only: to move a state back into it, or with --force).
    allow_moved: bool = False

    def address(self) -> tuple[str, str | None]:
        """(what `--backend`/`--to` takes to name this state, its workspace or None)."""
        return self.describe(), None

    @abc.abstractmethod
    def read(self) -> State:
        """A consistent snapshot, without locking; an empty State if none exists yet."""

    @abc.abstractmethod
    def lock(self, operation: str, timeout: float = 0.0) -> AbstractContextManager[Store]:
        """Lock the state for `operation` (e.g. "apply") and open a Store on it.

        With `timeout` 0 a held lock raises StateLockedError at once; otherwise
        acquisition is retried until `timeout` seconds have passed. A state that
        cannot be read (corrupt, newer format) raises instead of opening a Store,
        so a bad file is never overwritten.
        """

    @abc.abstractmethod
    def force_unlock(self, lock_id: str) -> None:
        """Remove the lock whose holder has id `lock_id`; StateError if it is not that lock."""

    @abc.abstractmethod
    def describe(self) -> str:
        """A short name for messages, e.g. the state file's path."""


# --------------------------------------------------------------------------- moved


@dataclass(frozen=True, slots=True)
class Moved:
    """The tombstone of a migrated state: where it went, when, by whom, and which version."""

    to: str  # the destination as dfr names it (never a password)
    backend: str  # what --backend takes to reach it: a URL without password, or a path
    workspace: str | None
    at: str
    by: str  # user@host (pid)
    lineage: str
    serial: int
    dfr_version: str = __version__

    @classmethod
    def new(cls, destination: Backend, state: State) -> Moved:
        backend, workspace = destination.address()
        return cls(
            to=destination.describe(),
            backend=backend,
            workspace=workspace,
            at=utc_now(),
            by=whoami(),
            lineage=state.lineage,
            serial=state.serial,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Moved:
        """The tombstone in `text`; an unreadable one still says the state moved."""
        try:
            doc = json.loads(text)
            return cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})
        except (ValueError, TypeError, KeyError, RecursionError):
            unknown = f"an unknown place (the mark {where} is unreadable)"
            return cls(unknown, "", None, "an unknown time", "someone", "", 0, "")

    def places(self) -> str:
        """The destination as command-line options (`--backend URL --workspace W`, `--state F`)."""
        return _options(self.backend, self.workspace)


def _options(target: str, workspace: str | None, to: bool = False) -> str:
    """A state as options: `--backend URL --workspace W` or `--state FILE` (`--to ...` if `to`)."""
    url = "://" in target
    flag = "--to" if to else "--backend" if url else "--state"
    text = f"{flag} {shlex.quote(target)}"
    if workspace and url:
        text += f" {'--to-workspace' if to else '--workspace'} {shlex.quote(workspace)}"
    return text


class StateMovedError(StateError):
    """The state was migrated elsewhere; it takes no more commands (names the destination)."""

    def __init__(self, backend: Backend, moved: Moved) -> None:
        self.moved = moved
        if moved.backend:
            variables = "DFR_BACKEND and DFR_WORKSPACE" if moved.workspace else "DFR_BACKEND"
            hint = (
                f"use the state where it is now: {moved.places()} (or {variables}, or backend: "
                "in dfr.yaml). To make this copy the current state again, migrate the state "
                f"back into it: dfr state migrate {moved.places()} "
                f"{_options(*backend.address(), to=True)}"
            )
        else:
            hint = "find where the state went and use it there, or migrate it back into this one"
        super().__init__(
            f"state {backend.describe()} was moved to {moved.to} by {moved.by} at {moved.at} "
            "(dfr state migrate): it takes no more commands, so that no run is submitted "
            "from both places",
            hint=hint,
        )


# --------------------------------------------------------------------------- helpers


def _user() -> str:
    # getpass.getuser() raises in containers whose uid has no passwd entry.
    for var in ("USER", "LOGNAME", "USERNAME"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return str(os.getuid())


def whoami() -> str:
    """user@host (pid N): who recorded a change, for messages and audit fields."""
    return f"{_user()}@{socket.gethostname()} (pid {os.getpid()})"


def holder_info(operation: str) -> dict[str, Any]:
    """Who holds a lock: written next to the lock so a blocked user knows whom to wait for."""
    return {
        "id": str(uuid.uuid4()),
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "user": _user(),
        "operation": operation,
        "created": utc_now(),
        "dfr_version": __version__,
    }


def locked_message(name: str, info: dict[str, Any] | None) -> str:
    """The one-line StateLockedError message naming the holder and the way out."""
    if not info:
        return (
            f"state {name} is locked by another process (it left no holder information). "
            "Wait for it to finish, then retry"
        )
    return (
        f"state {name} is locked by pid {info.get('pid')} on host {info.get('hostname')} "
        f"(dfr {info.get('operation')} since {info.get('created')}, lock id {info.get('id')}). "
        f"Wait for it to finish, or if that process is gone run: dfr force-unlock {info.get('id')}"
    )


# --------------------------------------------------------------------------- Store logic


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

    def __init__(self, state: State, *, name: str) -> None:
        self._name = name
        self._mutex = threading.Lock()
        self._lineage = state.lineage
        self._serial = state.serial
        self._runs = dict(state.runs)
        self._policy = state.policy
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
        and `text` the policy in force (JSON), or None when there is none.
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
            try:
                self._write_overwrite(state)
            except BaseException as exc:
                self._poison(exc)
                raise
            self._lineage, self._serial, self._runs = state.lineage, state.serial, dict(state.runs)
            self._policy = state.policy
            self._view = None
            self._pending = 0

    def _write_overwrite(self, state: State) -> None:
        """Replace the backend's state by `state`; by default a checkpoint of it (snapshots)."""
        self._write_checkpoint(state)

    def mark_moved(self, moved: Moved | None) -> None:
        with self._mutex:
            self._check_usable()
            try:
                self._write_moved(moved)
            except BaseException as exc:
                self._poison(exc)
                raise
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
    ) -> int:
        """Write one change and move the in-memory view (the mutex is held)."""
        serial = self._serial + 1
        try:
            ticket = self._write(op, name, text, serial)
        except BaseException as exc:
            self._poison(exc)
            raise
        # Only now that the change is written does the view move, so a
        # failed write leaves memory equal to what is on disk.
        self._serial = serial
        if op == "policy":
            self._policy = policy
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
        )

    def _checkpoint_locked(self) -> None:
        if self._pending == 0:
            return
        try:
            self._write_checkpoint(self._current())
        except BaseException as exc:
            # A failed checkpoint loses nothing (every change is still in the
            # journal), but the files' exact shape is now uncertain: stop writing.
            self._poison(exc)
            raise
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


# --------------------------------------------------------------------------- in memory


class _MemoryStore(BaseStore):
    def __init__(self, backend: InMemoryBackend, state: State) -> None:
        super().__init__(state, name=backend.describe())
        self._backend = backend

    def _write(self, op: str, name: str, text: str | None, serial: int) -> int:
        b = self._backend
        if b.fail_after is not None and b.writes >= b.fail_after:
            raise StateError(f"state {b.describe()}: simulated write failure")
        b.writes += 1
        # "Durable" here means visible to read(): commit straight to the backend.
        current = b._committed or State.empty(self._lineage)
        if op == "remove":
            b._committed = current.without(name)
        elif op == "policy":
            policy = None
            if text is not None:
                policy = statefile.policy_from_dict(statefile.decode_json(text, "policy"))
            b._committed = replace(current, serial=serial, policy=policy)
        else:
            assert text is not None
            record = statefile.record_from_dict(statefile.decode_json(text, "record"))
            if op == "move":
                current = replace(current.without(name), serial=current.serial)
            b._committed = current.with_record(record)
        return serial

    def _sync(self, ticket: int) -> None:
        return None

    def _write_checkpoint(self, state: State) -> None:
        self._backend.checkpoints += 1

    def _write_overwrite(self, state: State) -> None:
        self._backend._committed = state

    def _write_moved(self, moved: Moved | None) -> None:
        self._backend.moved = moved


class InMemoryBackend(Backend):
    """A Backend in memory for tests of other modules; same semantics as LocalBackend.

    `fail_after=N` makes every write after the first N raise StateError, to
    test how callers handle a state that cannot be written.
    """

    def __init__(
        self, state: State | None = None, *, name: str = "memory", fail_after: int | None = None
    ) -> None:
        self._committed = state
        self._name = name
        self._lock = threading.Lock()
        self._holder: dict[str, Any] | None = None
        self.fail_after = fail_after
        self.writes = 0
        self.checkpoints = 0
        self.moved: Moved | None = None

    def _refuse_if_moved(self) -> Moved | None:
        if self.moved is not None and not self.allow_moved:
            raise StateMovedError(self, self.moved)
        return self.moved

    def read(self) -> State:
        self._refuse_if_moved()
        state = self._committed
        return state if state is not None else State.empty()

    @property
    def holder(self) -> dict[str, Any] | None:
        """The current lock holder's info, or None."""
        return self._holder

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[Store]:
        acquired = (
            self._lock.acquire(blocking=False)
            if timeout <= 0
            else self._lock.acquire(timeout=timeout)
        )
        if not acquired:
            raise StateLockedError(locked_message(self._name, self._holder))
        info = holder_info(operation)
        self._holder = info
        try:
            store = _MemoryStore(self, self.read())
            store.moved = self.moved
            with close_on_exit(store):
                yield store
        finally:
            if self._holder is info:
                self._holder = None
                self._lock.release()

    def force_unlock(self, lock_id: str) -> None:
        holder = self._holder
        if holder is None:
            raise StateError(f"state {self._name} is not locked; nothing to unlock")
        if holder["id"] != lock_id:
            raise StateError(
                f"lock id {lock_id} does not match the lock on state {self._name} "
                f"(lock id {holder['id']}); nothing was changed"
            )
        self._holder = None
        self._lock.release()

    def describe(self) -> str:
        return self._name
