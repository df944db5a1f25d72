"""`InMemoryBackend`: the state backend other modules test with (and `plan` reads into).

It keeps one State in memory with the semantics of the real backends (the same
`BaseStore` session logic, lock contention with holder info, force-unlock, the
tombstone of a moved state); `tests/state/test_contract.py` runs the one backend
contract on it as on the file and PostgreSQL backends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from reconciler.errors import StateError, StateLockedError
from reconciler.state import statefile
from reconciler.state.backend import (
    Backend,
    Moved,
    Store,
    Unlock,
    force_unlock_action,
    holder_info,
    locked_message,
)
from reconciler.state.model import State
from reconciler.state.session import BaseStore, close_on_exit

__all__ = ["InMemoryBackend"]


class _MemoryStore(BaseStore):
    def __init__(self, backend: InMemoryBackend, state: State, lock_id: str) -> None:
        super().__init__(state, name=backend.describe(), lock_id=lock_id)
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
        elif op == "spec":
            if text is None:
                b._committed = current.without_spec(name)
            else:
                spec = statefile.spec_from_dict(statefile.decode_json(text, "spec"))
                b._committed = current.with_spec(spec)
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
        return None if self.moved is None else self.admit_moved(self.moved)

    def read(self) -> State:
        self._refuse_if_moved()
        state = self._committed
        return state if state is not None else State.empty()

    def lock_holder(self) -> dict[str, Any] | None:
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
            store = _MemoryStore(self, self.read(), str(info["id"]))
            store.moved = self.moved
            with close_on_exit(store):
                yield store
        finally:
            if self._holder is info:
                self._holder = None
                self._lock.release()

    def force_unlock(self, lock_id: str) -> None:
        action = force_unlock_action(self._name, lock_id, self._holder, self._lock.locked)
        self._holder = None  # before the release: a waiting locker then records itself
        if action is Unlock.END_HOLD:
            self._lock.release()

    def describe(self) -> str:
        return self._name
