"""The state backend interface: `Backend`, `Store`, the moved-state tombstone, lock holders.

A backend persists one `State` and guards it with a lock::

    state = backend.read()                          # lock-free snapshot (plan, status)
    with backend.lock("apply", timeout=0.0) as store:   # StateLockedError names the holder
        store.state                                 # current State, incl. this session's writes
        store.put(record)                           # durable on return, serial += 1
        store.put_many(records)                     # all durable on return (one sync)
        store.remove(name)                          # durable on return, serial += 1
        store.move(old, new)                        # a rename in one change, serial += 1
        store.set_policy(policy)                    # the policy in force, serial += 1
        store.put_spec(spec) / store.remove_spec(name)  # a spec record, serial += 1
        store.checkpoint()                          # compact (also done on release)

`put`/`remove` are thread-safe (apply records ids from a thread pool) and cost
O(one record): recording a run id never rewrites the whole state.

A state that does not exist yet reads as an empty State (serial 0) with a fresh
lineage; nothing is written until the first `put`/`remove`. Because that lineage
is new on every read, compare lineages only when `serial > 0`.

`session.BaseStore` holds the session logic every backend shares (validation,
the in-memory view, serial numbering, thread safety, poisoning after a failed
write); a backend only supplies how one change is made durable and how a
checkpoint is written. `memory.InMemoryBackend` is the fake for other modules'
tests, with the same semantics, lock contention included.

Every lock records its holder (`holder_info`: lock id, pid, host, user,
operation, time), which `locked_message` names to whoever finds the lock taken.
One policy decides for every backend what `dfr force-unlock ID` may do
(`force_unlock_action`): only the lock of that id; a lock whose holder died only
loses its record; a held one is taken away unless its holder still runs on this
host. A lock is never broken for its age: it goes with its holder's process or
connection.

A state that `dfr state migrate` moved elsewhere keeps a tombstone (`Moved`:
where it went, when, by whom), written durably under its lock. Every backend's
`read()` and `lock()` then raise StateMovedError naming the destination, so
that nobody plans or applies against the copy left behind; only migrate, which
sets `allow_moved`, opens it.
"""

from __future__ import annotations

import abc
import enum
import errno
import json
import os
import shlex
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any

from reconciler import __version__
from reconciler.errors import StateError
from reconciler.state.model import PolicyRecord, RunRecord, SpecRecord, State, utc_now

__all__ = [
    "HOLDER_GRACE",
    "Backend",
    "Moved",
    "StateMovedError",
    "Store",
    "Unlock",
    "force_unlock_action",
    "holder_info",
    "locked_message",
    "pid_alive",
    "running_here",
    "wait_for_holder",
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

    def put_spec(self, record: SpecRecord) -> None:
        """Store the spec `record` under its name; durable when this returns; serial += 1."""
        raise StateError("this state cannot record a spec")

    def remove_spec(self, name: str) -> None:
        """Forget the spec `name` (StateError if unknown); durable on return; serial += 1.

        For state edits (and `dfr state migrate`'s tests): apply never removes a spec.
        """
        raise StateError("this state cannot record a spec")

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

    def admit_moved(self, moved: Moved) -> Moved:
        """The tombstone just read, if `allow_moved`; else StateMovedError."""
        if not self.allow_moved:
            raise StateMovedError(self, moved)
        return moved

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
        """Remove the lock whose holder has id `lock_id` as `force_unlock_action` rules;
        StateError if it is not that lock, or its holder still runs on this host."""

    @abc.abstractmethod
    def lock_holder(self) -> dict[str, Any] | None:
        """The holder recorded for the lock (`holder_info`: lock id, pid, host, ...), or None.

        A file's record may be the one a dead holder left, until the next lock replaces it.
        """

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


# --------------------------------------------------------------------------- lock holders


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


# --------------------------------------------------------------------------- the lock policy

#: How long a locker that found the lock taken waits for the holder to record who
#: it is: the holder writes its info just after taking the lock, and a locker that
#: lost the race by microseconds would otherwise report "no holder information"
#: instead of naming the pid to wait for.
HOLDER_GRACE = 0.5


def wait_for_holder(
    look: Callable[[], tuple[bool, dict[str, Any] | None]], poll: float
) -> dict[str, Any] | None:
    """The recorded holder of a lock found taken, waiting up to HOLDER_GRACE seconds for
    it to appear while the lock stays taken. `look()` is (still taken, recorded info)."""
    deadline = time.monotonic() + HOLDER_GRACE
    while True:
        taken, info = look()
        if info is not None or not taken or time.monotonic() >= deadline:
            return info
        time.sleep(poll)


def pid_alive(pid: int) -> bool:
    """Is process `pid` running on this host (one we may not signal counts as running)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True


def running_here(info: Mapping[str, Any]) -> bool:
    """Is the recorded holder `info` another process, still running on this host?"""
    pid = info.get("pid")
    return (
        info.get("hostname") == socket.gethostname()
        and isinstance(pid, int)
        and pid != os.getpid()
        and pid_alive(pid)
    )


class Unlock(enum.Enum):
    """What `dfr force-unlock ID` does to a lock once the policy allowed it."""

    #: The lock is free (its holder died, and the kernel or the server let go):
    #: only the record the holder left behind is removed.
    CLEAR_RECORD = "clear"
    #: The lock is held by a holder believed gone: the lock is taken away from it.
    END_HOLD = "end"


def force_unlock_action(
    name: str, lock_id: str, info: Mapping[str, Any] | None, held: Callable[[], bool]
) -> Unlock:
    """The one force-unlock policy of every backend: what to do, or StateError to refuse.

    `info` is the holder recorded for state `name` (possibly left by a holder that
    died), None when there is none; `held()` says whether the lock is taken right
    now, and is asked only once the id matched (the file backend must try the lock
    to know). The rules:

    1. only the lock whose recorded holder has the id `lock_id` (printed by the
       error that named it) is touched; any other id changes nothing;
    2. a lock nobody holds any more only loses its holder's record;
    3. a held lock is taken away, unless its holder is a process still running on
       this host (and not this one): stop it instead, since two writers would
       corrupt the state. A holder on another host cannot be checked; the id the
       user typed is the word that it is gone.

    Age is no rule: a lock goes with its holder's process (flock) or connection
    (advisory lock), so none is ever broken for being old.
    """
    if info is None:
        raise StateError(f"state {name} is not locked; nothing to unlock")
    if info.get("id") != lock_id:
        raise StateError(
            f"lock id {lock_id} does not match the lock on state {name} "
            f"(lock id {info.get('id')}); nothing was changed"
        )
    if not held():
        return Unlock.CLEAR_RECORD
    if running_here(info):
        raise StateError(
            f"lock {lock_id} on state {name} is held by pid {info.get('pid')} on this host, "
            "which is still running: stop it first (two writers would corrupt the state)"
        )
    return Unlock.END_HOLD
