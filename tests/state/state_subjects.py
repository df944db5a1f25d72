"""The backends the state contract runs on, each behind one small harness (a `Subject`).

A Subject opens Backend objects on one fresh state and does, from outside, what
only a test does to a backend: leave the record of a holder that died, change the
recorded holder of a held lock, watch for a locker that waits, damage the stored
state, run a holder in another process. The contract itself
(`test_contract.py`) touches the backends only through their public interface.
"""

from __future__ import annotations

import abc
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from state_holder import Holder

from reconciler.state.backend import Backend
from reconciler.state.local import LocalBackend
from reconciler.state.lock import FileLock
from reconciler.state.memory import InMemoryBackend


def run_threads(work: Callable[[int], object], n: int) -> None:
    """Run `work(0)` .. `work(n - 1)` in n threads at once; return when all ended."""
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Subject(abc.ABC):
    """One backend kind on one fresh state, for the contract."""

    kind: str
    #: How fast another process's locker must be refused (seconds).
    refused_within = 1.0

    def __init__(self) -> None:
        self.backend = self.open()

    @abc.abstractmethod
    def open(self) -> Backend:
        """Another Backend object on this same state, as another command would open it."""

    #: What `describe()` says: the name messages give this state.
    name: str
    #: What a holder's record has besides `backend.holder_info`'s keys.
    extra_holder_keys: frozenset[str] = frozenset()

    @abc.abstractmethod
    def leave_dead_holder(self, info: dict[str, Any]) -> None:
        """Make the lock free but recorded as held by `info`: what a holder that died leaves."""

    @abc.abstractmethod
    def rewrite_holder(self, **fields: Any) -> None:
        """Change fields of the recorded holder of the lock, which is held."""

    @abc.abstractmethod
    def watch_waiters(self) -> contextlib.AbstractContextManager[threading.Event]:
        """An event set once a locker finds the lock taken and waits."""

    def writes(self) -> int | None:
        """How many changes were written (one per put), where the backend counts them."""
        return None

    # -- persistent backends only

    def child(self) -> Holder:
        """A process holding the lock (a persistent backend's state is shared by processes)."""
        raise NotImplementedError

    def corrupt(self) -> str:
        """Damage the stored state (runs a and b recorded); the pattern its error matches."""
        raise NotImplementedError

    def make_newer(self) -> None:
        """Make the stored state look written by a newer dfr."""
        raise NotImplementedError

    def stored(self) -> object:
        """What is stored, to compare before and after a refusal."""
        raise NotImplementedError

    def leftovers(self) -> list[str]:
        """What a crash left behind that is still there (nothing, once a session opened)."""
        return []


class MemorySubject(Subject):
    kind = "memory"

    name = "memory"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        super().__init__()

    def open(self) -> Backend:
        # One object is the state: every "other" command shares it.
        return getattr(self, "backend", None) or InMemoryBackend()

    def fake(self) -> InMemoryBackend:
        assert isinstance(self.backend, InMemoryBackend)
        return self.backend

    def leave_dead_holder(self, info: dict[str, Any]) -> None:
        self.fake()._holder = dict(info)

    def rewrite_holder(self, **fields: Any) -> None:
        holder = self.fake().lock_holder()
        assert holder is not None
        holder.update(fields)  # in place: the session releases the lock of this very record

    @contextlib.contextmanager
    def watch_waiters(self) -> Iterator[threading.Event]:
        waiting = threading.Event()
        self.monkeypatch.setattr(self.fake(), "_lock", _WatchedLock(self.fake()._lock, waiting))
        yield waiting

    def writes(self) -> int | None:
        return self.fake().writes


class _WatchedLock:
    """A threading.Lock that sets `waiting` when an acquire finds it taken."""

    def __init__(self, inner: Any, waiting: threading.Event) -> None:
        self._inner = inner
        self._waiting = waiting

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._inner.acquire(blocking=False):
            return True
        self._waiting.set()
        return bool(blocking and self._inner.acquire(timeout=timeout))

    def release(self) -> None:
        self._inner.release()

    def locked(self) -> bool:
        return bool(self._inner.locked())


class FileSubject(Subject):
    kind = "file"

    def __init__(self, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        folder.mkdir()
        self.path = folder / "dfr.state.json"
        self.name = str(self.path)
        self.monkeypatch = monkeypatch
        super().__init__()

    def open(self) -> Backend:
        return LocalBackend(self.path)

    @property
    def lock_file(self) -> Path:
        return Path(f"{self.path}.lock")

    def leave_dead_holder(self, info: dict[str, Any]) -> None:
        self.lock_file.write_text(json.dumps(info))

    def rewrite_holder(self, **fields: Any) -> None:
        info = json.loads(self.lock_file.read_text())
        self.lock_file.write_text(json.dumps({**info, **fields}))

    @contextlib.contextmanager
    def watch_waiters(self) -> Iterator[threading.Event]:
        waiting = threading.Event()
        real = FileLock._try_acquire

        def spy(lock_path: str) -> int | None:
            fd = real(lock_path)
            if fd is None:
                waiting.set()
            return fd

        self.monkeypatch.setattr(FileLock, "_try_acquire", staticmethod(spy))
        yield waiting

    def writes(self) -> int | None:
        assert isinstance(self.backend, LocalBackend)
        return self.backend.stats.journal_lines

    def child(self) -> Holder:
        return Holder(["file", str(self.path), ""])

    def corrupt(self) -> str:
        self.path.write_bytes(self.path.read_bytes()[:-40])  # truncated
        return f"^{re.escape(str(self.path))}:"

    def make_newer(self) -> None:
        self.path.write_text(json.dumps({"format_version": 99}))

    def stored(self) -> object:
        folder = self.path.parent
        return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith(".lock")}

    def leftovers(self) -> list[str]:
        # The journal is folded into the snapshot, temp files are removed.
        names = sorted(p.name for p in self.path.parent.iterdir())
        return [n for n in names if n.endswith(".journal") or ".tmp-" in n]


class PostgresSubject(Subject):
    """The workspace `default` in a schema of its own (created and dropped per test)."""

    kind = "postgres"
    refused_within = 2.0  # a lock request and a look at pg_locks, over TCP
    extra_holder_keys = frozenset({"backend_pid"})  # the server session holding the lock

    def __init__(self, url: str, sql: Callable[..., list[tuple[Any, ...]]]) -> None:
        self.url = url
        self.sql = sql
        self.workspace = "default"
        without_password = re.sub(r"://([^:@/]*):[^@/]*@", r"://\1@", url)
        self.name = f"{without_password} (workspace default)"
        super().__init__()

    def open(self) -> Backend:
        from reconciler.state.postgres import PostgresBackend

        return PostgresBackend(self.url, self.workspace)

    def leave_dead_holder(self, info: dict[str, Any]) -> None:
        with self.open().lock("test"):  # the tables exist once a lock was taken
            pass
        self.sql(
            self.url,
            "INSERT INTO dfr_locks (workspace, lock_id, backend_pid, info) VALUES (%s, %s, 0, %s) "
            "ON CONFLICT (workspace) DO UPDATE SET lock_id = EXCLUDED.lock_id, "
            "backend_pid = EXCLUDED.backend_pid, info = EXCLUDED.info",
            (self.workspace, info["id"], json.dumps(info)),
        )

    def rewrite_holder(self, **fields: Any) -> None:
        self.sql(
            self.url,
            "UPDATE dfr_locks SET info = (info::jsonb || %s::jsonb)::json WHERE workspace = %s",
            (json.dumps(fields), self.workspace),
        )

    @contextlib.contextmanager
    def watch_waiters(self) -> Iterator[threading.Event]:
        from reconciler.state.postgres import PostgresBackend

        assert isinstance(self.backend, PostgresBackend)
        key = self.backend.key
        waiting, stop = threading.Event(), threading.Event()

        def look() -> None:  # a waiting locker is a lock request not granted on our key
            while not stop.is_set() and not self.sql(
                self.url,
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = %s::bigint::oid AND objid = %s::bigint::oid",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ):
                time.sleep(0.02)
            waiting.set()

        watcher = threading.Thread(target=look)
        watcher.start()
        try:
            yield waiting
        finally:
            stop.set()
            watcher.join()

    def child(self) -> Holder:
        return Holder(["postgres", self.url, self.workspace])

    def corrupt(self) -> str:
        self.sql(
            self.url,
            'UPDATE dfr_runs SET record = \'{"name": "a", "run_id": 7}\' WHERE name = %s',
            ("a",),
        )
        return r"runs\.a"

    def make_newer(self) -> None:
        from reconciler.state.postgres import SCHEMA_VERSION

        self.sql(
            self.url,
            "INSERT INTO dfr_schema_version (version, dfr_version) VALUES (%s, '99')",
            (SCHEMA_VERSION + 1,),
        )

    def stored(self) -> object:
        workspaces = self.sql(
            self.url, "SELECT name, lineage, serial, moved::text, policy::text FROM dfr_workspaces"
        )
        runs = self.sql(self.url, "SELECT name, record::text, serial FROM dfr_runs ORDER BY name")
        return workspaces, runs
