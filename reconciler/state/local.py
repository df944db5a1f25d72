"""The local file backend: `dfr.state.json` as snapshot + journal, flock, backup, 0600.

Files, for a state at PATH (all created mode 0600):

    PATH           the snapshot: the state document of `statefile` (atomic replace only)
    PATH.journal   JSON Lines, one change per line, appended + fsynced before put() returns
                   (the line format and its replay: `journal.py`)
    PATH.backup    the snapshot before the last checkpoint
    PATH.lock      flock'd for a whole write session; holds the holder's info (see lock.py)
    PATH.moved     only after `dfr state migrate` moved the state away: where it went
                   (JSON, see backend.Moved); while it exists every read and lock refuses

`StateFiles` names these files and writes them through `files.py` (private
creation, atomic replacement, durable appends); it is all a `LocalStore` gets of
its `LocalBackend`, which reads the state and takes the lock.

Recording a run id appends one line (O(one record)); a checkpoint rewrites the
snapshot only after the journal has grown past max(256, len(runs)) lines, and
when the lock is released, so an apply of n runs writes O(n) bytes in total.
The state is the snapshot with the journal replayed onto it (`journal.replay`).

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
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

from reconciler import hooks
from reconciler.errors import StateConflictError, StateCorruptError, StateError
from reconciler.state import statefile
from reconciler.state.backend import Backend, Moved, Store
from reconciler.state.files import (
    Folder,
    Identity,
    cut_back,
    identity,
    oserror,
    read,
    read_with_identity,
    write_all,
)
from reconciler.state.journal import journal_line, replay
from reconciler.state.lock import FileLock, read_holder
from reconciler.state.lock import force_unlock as _force_unlock
from reconciler.state.model import State
from reconciler.state.session import BaseStore, close_on_exit

__all__ = ["LocalBackend", "LocalStore", "StateFiles", "WriteStats"]


#: The files beside a state file PATH: PATH + each suffix (the journal, the backup, the
#: lock, the moved-to tombstone; temporary files' names begin PATH.tmp-).
JOURNAL, BACKUP, LOCK, MOVED, TEMP = ".journal", ".backup", ".lock", ".moved", ".tmp-"
SIBLINGS = (JOURNAL, BACKUP, LOCK, MOVED, TEMP)


@dataclasses.dataclass
class WriteStats:
    """What a LocalBackend wrote, for tests and benchmarks (not persisted)."""

    journal_lines: int = 0
    journal_bytes: int = 0
    snapshot_bytes: int = 0
    checkpoints: int = 0
    fsyncs: int = 0


class StateFiles:
    """The files of the state at `display` (see the module docstring), and where they live.

    What a LocalBackend shares with the LocalStores it opens: the paths, the
    folder that writes them durably, the write statistics and the fault hook.
    """

    def __init__(self, display: str) -> None:
        self.display = display
        # Follow a symlinked state file: replacing the link itself would
        # silently fork the state away from where the link points.
        self.path = os.path.realpath(display)
        self.journal = self.path + JOURNAL
        self.backup = self.path + BACKUP
        self.lock = self.path + LOCK
        self.moved = self.path + MOVED
        self.stats = WriteStats()
        self.folder = Folder(os.path.dirname(self.path), fsynced=self._fsynced)
        #: Test seam: called with a step name between the steps of a checkpoint,
        #: so tests can stop there and look at the files as a crash would leave them.
        self.fault_hook: Callable[[str], None] | None = None

    def _fsynced(self) -> None:
        self.stats.fsyncs += 1

    def shown(self, path: str) -> str:
        """A sibling file's name as the user would write it (relative like `display`)."""
        return self.display + path[len(self.path) :]

    def fault(self, step: str) -> None:
        """A checkpoint reached `step` (for the fault hook and the crash tests)."""
        if self.fault_hook is not None:
            self.fault_hook(step)
        hooks.hit(f"checkpoint-{step}")

    def remove_stray_temps(self) -> None:
        """Delete temp files of checkpoints that crashed (under the lock: none are live)."""
        base = os.path.basename(self.path)
        self.folder.remove_temps(base + TEMP, base + BACKUP + TEMP)


class LocalBackend(Backend):
    """State in a local file (default `dfr.state.json`); see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.files = StateFiles(os.fspath(path))
        self.display = self.files.display
        self.path = self.files.path
        self.stats = self.files.stats

    @property
    def fault_hook(self) -> Callable[[str], None] | None:
        """Called with a step name between the steps of a checkpoint (a test seam)."""
        return self.files.fault_hook

    @fault_hook.setter
    def fault_hook(self, hook: Callable[[str], None] | None) -> None:
        self.files.fault_hook = hook

    def describe(self) -> str:
        return self.display

    def address(self) -> tuple[str, str | None]:
        return self.path, None

    # ------------------------------------------------------------------ reading

    def _refuse_if_moved(self) -> Moved | None:
        """The tombstone of a migrated state, if any; StateMovedError unless allow_moved."""
        shown = self.files.shown(self.files.moved)
        try:
            data = read(self.files.moved, 64 * 1024)
        except OSError as exc:
            raise oserror("read", shown, exc) from None
        if data is None:
            return None
        return self.admit_moved(Moved.from_json(data, shown))

    def read(self) -> State:
        self._refuse_if_moved()
        # Lock-free: a writer may checkpoint while we read. If the snapshot was
        # replaced while we read it and the journal, the two may not fit
        # together (a gap, or a journal already removed); the rename is atomic,
        # so reading again gives a consistent pair.
        for _ in range(20):
            before = identity(self.path)
            try:
                state = self._load()[0]
            except StateCorruptError:
                if identity(self.path) != before:
                    continue
                raise
            if identity(self.path) == before:
                return state
        raise StateError(f"state {self.display} keeps changing while being read; try again")

    def _read_files(self) -> tuple[bytes | None, Identity | None, bytes | None]:
        """(snapshot, its identity, journal) as they are now."""
        try:
            data, ident = read_with_identity(self.path)
        except OSError as exc:
            raise oserror("read state", self.display, exc) from None
        try:
            journal = read(self.files.journal)
        except OSError as exc:
            raise oserror("read state journal", self.files.shown(self.files.journal), exc) from None
        return data, ident, journal

    def _backup_note(self) -> str:
        if os.path.exists(self.files.backup):
            return f"; a backup of the previous version is at {self.files.shown(self.files.backup)}"
        return "; no backup exists"

    def _load(self) -> tuple[State, int, bool, Identity | None]:
        """(state, snapshot serial, journal exists, snapshot identity) or StateCorruptError."""
        data, ident, journal = self._read_files()
        backup = self.files.shown(self.files.backup)
        if data is None and not journal and os.path.exists(self.files.backup):
            # Our writes replace PATH atomically, so it never vanishes by
            # itself: someone deleted it. Reading "no runs" would make the
            # next apply pay for every run again, so refuse instead.
            raise StateCorruptError(
                f"{self.display} is missing but {backup} exists: "
                f"restore it (mv {backup} {self.display}), "
                "or delete the backup to start a new state"
            )
        try:
            base = None if data is None else statefile.loads(data, self.display)
            snapshot_serial = base.serial if base is not None else 0
            state = replay(base, journal or b"", self.files.shown(self.files.journal))
        except StateCorruptError as exc:
            raise StateCorruptError(exc.message + self._backup_note()) from None
        return state, snapshot_serial, journal is not None, ident

    # ------------------------------------------------------------------ locking

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[Store]:
        held = FileLock.acquire(self.files.lock, self.display, operation, timeout)
        try:
            # Under the lock, so a migration that just moved the state is seen.
            moved = self._refuse_if_moved()
            # Read under the lock; a corrupt or newer state raises here, so no
            # Store ever opens on (and later overwrites) a file we cannot read.
            state, snapshot_serial, journal_exists, ident = self._load()
            self.files.remove_stray_temps()
            store = LocalStore(self.files, state, ident, held.id)
            store.moved = moved
            store.resume(state.serial - snapshot_serial, journal_exists)
            with close_on_exit(store):
                yield store
        finally:
            held.release()

    def force_unlock(self, lock_id: str) -> None:
        _force_unlock(self.files.lock, self.display, lock_id)

    def lock_holder(self) -> dict[str, Any] | None:
        """The info the current lock holder wrote, or None."""
        return read_holder(self.files.lock)


class LocalStore(BaseStore):
    """A write session on the state `files` (opened by `LocalBackend.lock`, then `resume`d)."""

    def __init__(self, files: StateFiles, state: State, snapshot: Identity | None, lock_id: str):
        super().__init__(state, name=files.display, lock_id=lock_id)
        self._files = files
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

    def resume(self, unfolded: int, journal_exists: bool) -> None:
        """Start from what the previous session left: `unfolded` changes in its journal.

        They are folded into the snapshot now, so this session appends to a fresh
        journal (never after a torn line); a journal of already-applied lines only
        (a checkpoint crashed before its step 5) is removed.
        """
        if unfolded > 0:
            self._pending = unfolded
            self.checkpoint()
        elif journal_exists:
            self._remove_journal()

    # -- journal

    def _write(self, op: str, name: str, text: str | None, serial: int) -> int:
        f = self._files
        line = journal_line(self._lineage, serial, op, name, text)
        try:
            if self._fd is None:
                self._fd, self._journal_size = f.folder.open_append(f.journal)
            fd = self._fd  # a crash test may tear the line here: half of it, then a kill
            hooks.hit("journal-torn", lambda: write_all(fd, line[: len(line) // 2]))
            write_all(self._fd, line)
        except OSError as exc:
            if self._fd is not None:
                cut_back(self._fd, self._journal_size)
            raise oserror("write state journal", f.shown(f.journal), exc) from None
        self._journal_size += len(line)
        self._journaled.append(name)
        f.stats.journal_lines += 1
        f.stats.journal_bytes += len(line)
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
                self._files.folder.sync(fd)
            except OSError as exc:
                shown = self._files.shown(self._files.journal)
                raise oserror("sync state journal", shown, exc) from None
            self._synced = max(self._synced, target)

    def _remove_journal(self) -> None:
        f = self._files
        with self._sync_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            # Every line is now in the durable snapshot.
            self._synced = self._written
            self._journaled.clear()
        try:
            removed = f.folder.remove(f.journal)
        except OSError as exc:
            raise oserror("remove state journal", f.shown(f.journal), exc) from None
        if removed:
            # Not needed for safety (a resurrected journal holds only applied lines)
            # but keeps the next session from finding one.
            with contextlib.suppress(OSError):
                f.folder.fsync()

    # -- checkpoint

    def _write_checkpoint(self, state: State) -> None:
        try:
            self._checkpoint_steps(state)
        except OSError as exc:
            raise oserror("write state", self._files.display, exc) from None

    def _checkpoint_steps(self, state: State) -> None:
        f = self._files
        current = identity(f.path)
        if current != self._snapshot:
            raise self._conflict(state)
        data = statefile.dumps(state)
        tmp = f.folder.temp(f.path)
        # Step 1: the new snapshot, complete and durable, under a temp name.
        f.folder.create(tmp, data)
        f.stats.snapshot_bytes += len(data)
        f.fault("temp-written")
        try:
            # Step 2: the snapshot being replaced becomes the backup.
            if current is not None:
                f.folder.copy(f.path, f.backup)
            f.fault("backup-written")
            # Step 3: atomic switch; PATH is old or new, never half-written.
            os.replace(tmp, f.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._snapshot = identity(f.path)
        f.fault("replaced")
        # Step 4: the rename must be durable before the journal goes (step 5).
        f.folder.fsync()
        f.fault("dir-synced")
        # Step 5: the journal is now redundant.
        self._remove_journal()
        f.stats.checkpoints += 1
        f.fault("journal-removed")

    def _conflict(self, state: State) -> StateConflictError:
        """The snapshot changed under our lock: say where this session's changes are.

        In our journal, unless the other writer removed it (a checkpoint of its
        own folds the journal in and deletes it; our later appends went to a file
        no longer there): then each change is named, to be checked.
        """
        f = self._files
        head = (
            f"state {f.display} was changed by another process while this one held the "
            "lock (was it force-unlocked?); not overwriting it."
        )
        journal = f.shown(f.journal)
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
            ours, there = os.fstat(self._fd), os.stat(self._files.journal)
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino)

    # -- the tombstone of a migrated state

    def _write_moved(self, moved: Moved | None) -> None:
        """PATH.moved := `moved` (atomic, durable: fsynced file, rename, fsynced directory)."""
        f = self._files
        try:
            if moved is not None:
                data = moved.to_json().encode() + b"\n"
                f.folder.write_atomically(f.moved, data, temp=f.folder.temp(f.path))
            elif f.folder.remove(f.moved):
                f.folder.fsync()
        except OSError as exc:
            raise oserror("write", f.shown(f.moved), exc) from None

    def _close(self, *, checkpoint: bool) -> None:
        try:
            super()._close(checkpoint=checkpoint)
        finally:
            with self._sync_lock:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
