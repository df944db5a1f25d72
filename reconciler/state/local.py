"""The local file backend: `dfr.state.json` as snapshot + journal, flock, backup, 0600.

Files, for a state at PATH (all created mode 0600):

    PATH           the snapshot: the state document of `statefile` (atomic replace only)
    PATH.journal   JSON Lines, one change per line, appended + fsynced before put() returns:
                   {"lineage": ..., "name": ..., "op": "put"|"remove", "record": {...}, "serial": N}
                   (a move: "op": "move", `name` the old key, `record` under its new name;
                   a policy change: {"lineage", "op": "policy", "policy": {...}|null, "serial"})
    PATH.backup    the snapshot before the last checkpoint
    PATH.lock      flock'd for a whole write session; holds the holder's info (see lock.py)
    PATH.moved     only after `dfr state migrate` moved the state away: where it went
                   (JSON, see backend.Moved); while it exists every read and lock refuses

Recording a run id appends one line (O(one record)); a checkpoint rewrites the
snapshot only after the journal has grown past max(256, len(runs)) lines, and
when the lock is released, so an apply of n runs writes O(n) bytes in total.

The state is: snapshot, then the journal lines whose serial is above the
snapshot's, which must follow on without a gap. Lines at or below it were
already folded into the snapshot by a checkpoint that crashed before removing
the journal. A last line without its newline that is not valid JSON is an
append interrupted by a crash: that put never returned, so it is dropped.

Crash safety of a checkpoint, step by step (each step keeps every put that
returned, because the journal is only removed once the new snapshot is durable):

1. write PATH.tmp-X (O_EXCL, 0600) and fsync it -- crash: a stray temp file
   (removed by the next session); PATH and the journal are untouched.
2. link the current PATH to PATH.backup (via a temp name and rename) -- crash:
   the backup is old or new; PATH and the journal are untouched.
3. rename PATH.tmp-X over PATH -- atomic: PATH is the old snapshot (journal
   replays everything) or the new one (journal lines are all <= its serial).
4. fsync the directory -- makes step 3 durable *before* step 5, so a power cut
   cannot bring back the old snapshot while the journal is already gone.
5. remove the journal (and fsync the directory) -- crash before: the journal is
   skipped as already applied; after: PATH alone is the state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from reconciler import testhooks
from reconciler.errors import StateConflictError, StateCorruptError, StateError
from reconciler.state import statefile
from reconciler.state.backend import Backend, Moved, StateMovedError, Store
from reconciler.state.lock import FileLock, read_holder
from reconciler.state.lock import force_unlock as _force_unlock
from reconciler.state.model import PolicyRecord, RunRecord, State
from reconciler.state.session import BaseStore, close_on_exit

__all__ = ["LocalBackend", "WriteStats"]

_Identity = tuple[int, int, int, int]

_JOURNAL_KEYS = frozenset(("lineage", "serial", "op", "name", "record", "policy"))


@dataclasses.dataclass
class WriteStats:
    """What a LocalBackend wrote, for tests and benchmarks (not persisted)."""

    journal_lines: int = 0
    journal_bytes: int = 0
    snapshot_bytes: int = 0
    checkpoints: int = 0
    fsyncs: int = 0


# "Nothing there": a missing file, or a parent that is not a directory.
_ABSENT = (FileNotFoundError, NotADirectoryError)


def _identity(path: str) -> _Identity | None:
    """Which file is at `path` now (device, inode, size, mtime), or None."""
    try:
        st = os.stat(path)
    except _ABSENT:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _oserror(action: str, path: str, exc: OSError) -> StateError:
    return StateError(f"cannot {action} {path}: {exc.strerror or exc}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LocalBackend(Backend):
    """State in a local file (default `dfr.state.json`); see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.display = os.fspath(path)
        # Follow a symlinked state file: replacing the link itself would
        # silently fork the state away from where the link points.
        self.path = os.path.realpath(self.display)
        self.journal_path = self.path + ".journal"
        self.backup_path = self.path + ".backup"
        self.lock_path = self.path + ".lock"
        self.moved_path = self.path + ".moved"
        self.directory = os.path.dirname(self.path)
        self.stats = WriteStats()
        #: Test seam: called with a step name between the steps of a checkpoint,
        #: so tests can stop there and look at the files as a crash would leave them.
        self.fault_hook: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ names

    def describe(self) -> str:
        return self.display

    def address(self) -> tuple[str, str | None]:
        return self.path, None

    def _shown(self, path: str) -> str:
        """A sibling file's name as the user would write it (relative like `display`)."""
        return self.display + path[len(self.path) :]

    def _fault(self, step: str) -> None:
        if self.fault_hook is not None:
            self.fault_hook(step)
        testhooks.hit(f"checkpoint-{step}")

    # ------------------------------------------------------------------ reading

    def _refuse_if_moved(self) -> Moved | None:
        """The tombstone of a migrated state, if any; StateMovedError unless allow_moved."""
        try:
            with open(self.moved_path, "rb") as f:
                data = f.read(64 * 1024)
        except _ABSENT:
            return None
        except OSError as exc:
            raise _oserror("read", self._shown(self.moved_path), exc) from None
        moved = Moved.from_json(data, self._shown(self.moved_path))
        if not self.allow_moved:
            raise StateMovedError(self, moved)
        return moved

    def read(self) -> State:
        self._refuse_if_moved()
        # Lock-free: a writer may checkpoint while we read. If the snapshot was
        # replaced while we read it and the journal, the two may not fit
        # together (a gap, or a journal already removed); the rename is atomic,
        # so reading again gives a consistent pair.
        for _ in range(20):
            before = _identity(self.path)
            try:
                state = self._load()[0]
            except StateCorruptError:
                if _identity(self.path) != before:
                    continue
                raise
            if _identity(self.path) == before:
                return state
        raise StateError(f"state {self.display} keeps changing while being read; try again")

    def _read_snapshot(self) -> tuple[bytes | None, _Identity | None]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except _ABSENT:
            return None, None
        except OSError as exc:
            raise _oserror("read state", self.display, exc) from None
        try:
            st = os.fstat(fd)
            with open(fd, "rb", closefd=False) as f:
                data = f.read()
        except OSError as exc:
            raise _oserror("read state", self.display, exc) from None
        finally:
            os.close(fd)
        return data, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _read_journal(self) -> bytes | None:
        try:
            with open(self.journal_path, "rb") as f:
                return f.read()
        except _ABSENT:
            return None
        except OSError as exc:
            raise _oserror("read state journal", self._shown(self.journal_path), exc) from None

    def _backup_note(self) -> str:
        if os.path.exists(self.backup_path):
            return f"; a backup of the previous version is at {self._shown(self.backup_path)}"
        return "; no backup exists"

    def _load(self) -> tuple[State, int, bool, _Identity | None]:
        """(state, snapshot serial, journal exists, snapshot identity) or StateCorruptError."""
        data, ident = self._read_snapshot()
        journal = self._read_journal()
        if data is None and not journal and os.path.exists(self.backup_path):
            # Our writes replace PATH atomically, so it never vanishes by
            # itself: someone deleted it. Reading "no runs" would make the
            # next apply pay for every run again, so refuse instead.
            raise StateCorruptError(
                f"{self.display} is missing but {self._shown(self.backup_path)} exists: "
                f"restore it (mv {self._shown(self.backup_path)} {self.display}), "
                "or delete the backup to start a new state"
            )
        try:
            base = None if data is None else statefile.loads(data, self.display)
            snapshot_serial = base.serial if base is not None else 0
            state = replay(base, journal or b"", self._shown(self.journal_path))
        except StateCorruptError as exc:
            raise StateCorruptError(exc.message + self._backup_note()) from None
        return state, snapshot_serial, journal is not None, ident

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[Store]:
        held = FileLock.acquire(self.lock_path, self.display, operation, timeout)
        try:
            # Under the lock, so a migration that just moved the state is seen.
            moved = self._refuse_if_moved()
            # Read under the lock; a corrupt or newer state raises here, so no
            # Store ever opens on (and later overwrites) a file we cannot read.
            state, snapshot_serial, journal_exists, ident = self._load()
            self._remove_stray_temps()
            store = LocalStore(self, state, ident, held.id)
            store.moved = moved
            if state.serial > snapshot_serial:
                # Fold a previous session's journal into the snapshot now, so
                # this session appends to a fresh journal (never after a torn line).
                store._pending = state.serial - snapshot_serial
                store.checkpoint()
            elif journal_exists:
                # Only already-applied lines (a checkpoint crashed before step 5).
                store._remove_journal()
            with close_on_exit(store):
                yield store
        finally:
            held.release()

    def force_unlock(self, lock_id: str) -> None:
        _force_unlock(self.lock_path, self.display, lock_id)

    def lock_holder(self) -> dict[str, Any] | None:
        """The info the current lock holder wrote, or None."""
        return read_holder(self.lock_path)

    def _remove_stray_temps(self) -> None:
        """Delete temp files of checkpoints that crashed (we hold the lock: none are live)."""
        base = os.path.basename(self.path)
        prefixes = (f"{base}.tmp-", f"{base}.backup.tmp-")
        try:
            with os.scandir(self.directory) as entries:
                stray = [e.path for e in entries if e.name.startswith(prefixes)]
        except OSError:
            return
        for path in stray:
            with contextlib.suppress(OSError):
                os.unlink(path)

    # ------------------------------------------------------------------ file helpers

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
            self.stats.fsyncs += 1
        finally:
            os.close(fd)

    def _write_new_file(self, path: str, data: bytes) -> None:
        """Create `path` (must not exist) 0600 with `data`, fsynced; remove it on failure."""
        # 0600 from creation (not chmod afterwards): the window in which another
        # user could open the file never exists.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # in case the umask is odd; never wider than 0600
            _write_all(fd, data)
            os.fsync(fd)
            self.stats.fsyncs += 1
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)


def _journal_line(lineage: str, serial: int, op: str, name: str, record_text: str | None) -> bytes:
    # Keys in sorted order, like every JSON dfr writes; the record is already
    # canonical JSON, so it is spliced in rather than encoded twice.
    if op == "policy":  # a change of the state's policy names no run
        policy = record_text if record_text is not None else "null"
        head = f'{{"lineage": {json.dumps(lineage)}, "op": "policy", "policy": {policy}, '
        return (head + f'"serial": {serial}}}\n').encode("ascii")
    head = f'{{"lineage": {json.dumps(lineage)}, "name": {json.dumps(name)}, "op": "{op}", '
    body = f'"record": {record_text}, ' if record_text is not None else ""
    return (head + body + f'"serial": {serial}}}\n').encode("ascii")


class _Entry(NamedTuple):
    """One parsed, validated journal line."""

    lineage: str
    serial: int
    op: str  # put, remove, move, policy
    name: str  # "" for a policy change
    record: RunRecord | None  # put: the record; move: the record under its new name
    policy: PolicyRecord | None  # policy: the policy in force from then on (None: none)


def _journal_entry(raw: bytes, source: str, lineno: int) -> _Entry:
    where = f"{source}:{lineno}"
    obj = statefile.decode_json(raw, source, line=lineno)
    if not isinstance(obj, dict):
        raise StateCorruptError(f"{where}: expected a JSON object")
    extra = sorted(set(obj) - _JOURNAL_KEYS)
    if extra:
        raise StateCorruptError(f"{where}: unknown field {', '.join(map(repr, extra))}")
    lineage, serial, op, name = (obj.get(k) for k in ("lineage", "serial", "op", "name"))
    if not isinstance(lineage, str) or not lineage:
        raise StateCorruptError(f"{where}: lineage: expected a non-empty string")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise StateCorruptError(f"{where}: serial: expected a positive integer")
    if op == "policy":
        if "name" in obj or "record" in obj:
            raise StateCorruptError(f"{where}: name: a policy change names no run")
        if "policy" not in obj:
            raise StateCorruptError(f"{where}: policy: missing (null for no policy)")
        raw_policy = obj["policy"]
        policy = None
        if raw_policy is not None:
            policy = statefile.check_policy(raw_policy, where, ["policy"])
        return _Entry(lineage, serial, op, "", None, policy)
    if "policy" in obj:
        raise StateCorruptError(f"{where}: policy: only a policy change carries one")
    if not isinstance(name, str) or not name:
        raise StateCorruptError(f"{where}: name: expected a non-empty string")
    record: RunRecord | None = None
    if op in ("put", "move"):
        record = statefile.check_record(obj.get("record"), where, ["record"])
        if op == "put" and record.name != name:
            raise StateCorruptError(
                f"{where}: record.name: {record.name!r} does not match name {name!r}"
            )
    elif op == "remove":
        if obj.get("record") is not None:
            raise StateCorruptError(f"{where}: record: a remove carries no record")
    else:
        raise StateCorruptError(
            f"{where}: op: expected 'put', 'remove', 'move' or 'policy', found {op!r}"
        )
    return _Entry(lineage, serial, op, name, record, None)


def _apply_entry(runs: dict[str, RunRecord], entry: _Entry, where: str) -> None:
    """One journal change of a run on `runs`. A move was checked under the lock before
    it was written, so one that does not fit the state means the files do not belong
    together."""
    op, name, record = entry.op, entry.name, entry.record
    if op == "move":
        assert record is not None
        if name not in runs:
            raise StateCorruptError(f"{where}: name: {name!r} is not in the state")
        if record.name in runs:
            raise StateCorruptError(
                f"{where}: record.name: {record.name!r} is already in the state"
            )
        del runs[name]
    if record is not None:
        runs[record.name] = record
    else:
        runs.pop(name, None)


def replay(base: State | None, journal: bytes, source: str) -> State:
    """`base` (None: no snapshot yet) with the journal's changes applied.

    Raises StateCorruptError for a journal of another lineage, a gap in the
    serials, or a bad line anywhere but a torn (unterminated) last line.
    """
    if not journal:
        return base if base is not None else State.empty()
    lines = journal.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    entries = [(i + 1, raw) for i, raw in enumerate(lines)]
    if tail:
        try:
            statefile.decode_json(tail, source, line=len(lines) + 1)
        except StateCorruptError:
            # An append cut short by a crash: its put() never returned, so
            # nothing acknowledged is lost by dropping it.
            pass
        else:
            entries.append((len(lines) + 1, tail))
    lineage = base.lineage if base is not None else None
    serial = base.serial if base is not None else 0
    runs = dict(base.runs) if base is not None else {}
    policy = base.policy if base is not None else None
    expected = serial + 1
    for lineno, raw in entries:
        entry = _journal_entry(raw, source, lineno)
        if lineage is None:
            lineage = entry.lineage  # no snapshot yet: the journal founded this state
        elif entry.lineage != lineage:
            raise StateCorruptError(
                f"{source}:{lineno}: belongs to another state (lineage {entry.lineage}, "
                f"the state's is {lineage})"
            )
        if entry.serial <= serial:
            continue  # already folded into the snapshot by a checkpoint
        if entry.serial != expected:
            raise StateCorruptError(
                f"{source}:{lineno}: change {entry.serial} follows change {expected - 1}: "
                f"changes {expected}..{entry.serial - 1} are missing"
            )
        if entry.op == "policy":
            policy = entry.policy
        else:
            _apply_entry(runs, entry, f"{source}:{lineno}")
        expected += 1
    if lineage is None:  # only skipped lines, no snapshot: cannot happen, but be total
        return State.empty()
    return State(
        format_version=statefile.FORMAT_VERSION,
        serial=expected - 1,
        lineage=lineage,
        runs=runs,
        policy=policy,
    )


class LocalStore(BaseStore):
    """A write session on a LocalBackend (created by `LocalBackend.lock`)."""

    def __init__(
        self, backend: LocalBackend, state: State, snapshot: _Identity | None, lock_id: str
    ) -> None:
        super().__init__(state, name=backend.display)
        self._backend = backend
        self.lock_id = lock_id
        # The snapshot we read or last wrote: if it changes under us, someone
        # else wrote (after a force-unlock) and we must not overwrite them.
        self._snapshot = snapshot
        self._fd: int | None = None
        self._journal_size = 0
        # Group commit: `_written` counts appended lines, `_synced` the ones an
        # fsync has covered; one fsync makes every line written before it durable.
        self._sync_lock = threading.Lock()
        self._written = 0
        self._synced = 0
        # Names changed in the journal since the last checkpoint (for a conflict's message).
        self._journaled: list[str] = []

    # -- journal

    def _open_journal(self) -> int:
        b = self._backend
        created = not os.path.exists(b.journal_path)
        fd = os.open(b.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            self._journal_size = os.fstat(fd).st_size
            if created:
                # The file's own fsync does not make its directory entry durable.
                b._fsync_dir()
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _write(self, op: str, name: str, text: str | None, serial: int) -> int:
        b = self._backend
        line = _journal_line(self._lineage, serial, op, name, text)
        try:
            if self._fd is None:
                self._fd = self._open_journal()
            if testhooks.due("journal-torn"):  # a crash in the middle of an append
                _write_all(self._fd, line[: len(line) // 2])
                testhooks.fire()
            _write_all(self._fd, line)
        except OSError as exc:
            # Cut a partial line off again, so that a later append can never
            # follow garbage (which would read as a corrupt middle line).
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._journal_size)
            raise _oserror("write state journal", b._shown(b.journal_path), exc) from None
        self._journal_size += len(line)
        self._journaled.append(name)
        b.stats.journal_lines += 1
        b.stats.journal_bytes += len(line)
        self._written += 1
        return self._written

    def _sync(self, ticket: int) -> None:
        with self._sync_lock:
            if self._synced >= ticket:
                return  # another thread's fsync, or a checkpoint, covered it
            target = self._written
            fd = self._fd
            if fd is None:  # pragma: no cover - a checkpoint sets _synced first
                return
            try:
                os.fsync(fd)
            except OSError as exc:
                b = self._backend
                raise _oserror("sync state journal", b._shown(b.journal_path), exc) from None
            self._backend.stats.fsyncs += 1
            self._synced = max(self._synced, target)

    def _remove_journal(self) -> None:
        b = self._backend
        with self._sync_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            # Every line is now in the durable snapshot.
            self._synced = self._written
            self._journaled.clear()
        try:
            os.unlink(b.journal_path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _oserror("remove state journal", b._shown(b.journal_path), exc) from None
        # Not needed for safety (a resurrected journal holds only applied lines)
        # but keeps the next session from finding one.
        with contextlib.suppress(OSError):
            b._fsync_dir()

    # -- checkpoint

    def _write_checkpoint(self, state: State) -> None:
        b = self._backend
        try:
            self._checkpoint_steps(state)
        except OSError as exc:
            raise _oserror("write state", b.display, exc) from None

    def _checkpoint_steps(self, state: State) -> None:
        b = self._backend
        current = _identity(b.path)
        if current != self._snapshot:
            raise self._conflict(state)
        data = statefile.dumps(state)
        tmp = f"{b.path}.tmp-{uuid.uuid4().hex[:12]}"
        # Step 1: the new snapshot, complete and durable, under a temp name.
        b._write_new_file(tmp, data)
        b.stats.snapshot_bytes += len(data)
        b._fault("temp-written")
        try:
            # Step 2: the snapshot being replaced becomes the backup.
            if current is not None:
                self._backup()
            b._fault("backup-written")
            # Step 3: atomic switch; PATH is old or new, never half-written.
            os.replace(tmp, b.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._snapshot = _identity(b.path)
        b._fault("replaced")
        # Step 4: the rename must be durable before the journal goes (step 5).
        b._fsync_dir()
        b._fault("dir-synced")
        # Step 5: the journal is now redundant.
        self._remove_journal()
        b.stats.checkpoints += 1
        b._fault("journal-removed")

    def _conflict(self, state: State) -> StateConflictError:
        """The snapshot changed under our lock: say where this session's changes are.

        In our journal, unless the other writer removed it (a checkpoint of its
        own folds the journal in and deletes it; our later appends went to a file
        no longer there): then each change is named, to be checked.
        """
        b = self._backend
        head = (
            f"state {b.display} was changed by another process while this one held the "
            "lock (was it force-unlocked?); not overwriting it."
        )
        journal = b._shown(b.journal_path)
        if self._journal_in_place():
            return StateConflictError(f"{head} This session's changes are kept in {journal}")
        names = list(dict.fromkeys(self._journaled))
        changes = ", ".join(
            f"{name} (run {run.run_id})" if (run := state.runs.get(name)) and run.run_id else name
            for name in names
        )
        return StateConflictError(
            f"{head} The journal this session wrote to ({journal}) was removed meanwhile: "
            "its changes since the last checkpoint are saved only if that process read them "
            f"first: {changes or 'none'}",
            hint="check each with `dfr state show NAME`; adopt a run missing there with "
            "`dfr import NAME RUN_ID` before the next apply, which would submit it again",
        )

    def _journal_in_place(self) -> bool:
        """Is the file this session appends to still the journal at its path?"""
        if self._fd is None:
            return False
        try:
            ours, there = os.fstat(self._fd), os.stat(self._backend.journal_path)
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino)

    def _backup(self) -> None:
        """PATH.backup := the current PATH (a hard link: O(1), keeps its bytes as they are)."""
        b = self._backend
        tmp = f"{b.backup_path}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            os.link(b.path, tmp)
            os.chmod(tmp, 0o600)
        except OSError as exc:
            if exc.errno not in (
                errno.EPERM,
                errno.ENOTSUP,
                errno.EOPNOTSUPP,
                errno.EXDEV,
                errno.EMLINK,
                errno.EACCES,
            ):
                raise
            # A file system without hard links: copy the bytes instead.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            with open(b.path, "rb") as f:
                previous = f.read()
            b._write_new_file(tmp, previous)
        try:
            os.replace(tmp, b.backup_path)
        finally:
            # rename() of two links to one inode (the backup already *is* PATH,
            # after a crash between steps 2 and 3) succeeds without removing
            # the source; and on failure the temp name must go too.
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    # -- the tombstone of a migrated state

    def _write_moved(self, moved: Moved | None) -> None:
        """PATH.moved := `moved` (atomic, durable: fsynced file, rename, fsynced directory)."""
        b = self._backend
        shown = b._shown(b.moved_path)
        try:
            if moved is None:
                try:
                    os.unlink(b.moved_path)
                except FileNotFoundError:
                    return
            else:
                tmp = f"{b.path}.tmp-{uuid.uuid4().hex[:12]}"
                b._write_new_file(tmp, moved.to_json().encode() + b"\n")
                try:
                    os.replace(tmp, b.moved_path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            b._fsync_dir()
        except OSError as exc:
            raise _oserror("write", shown, exc) from None

    def _close(self, *, checkpoint: bool) -> None:
        try:
            super()._close(checkpoint=checkpoint)
        finally:
            with self._sync_lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
