"""File primitives of the file backend: private files, atomic replacement, durable appends.

`local.py` (the snapshot, journal, backup and tombstone of a state) and `lock.py`
(the lock file) write files only through these, so each crash-safety rule is
written once:

- **private**: every file is created mode 0600 (`O_CREAT` with 0600, then
  `fchmod`, whatever the umask): no window in which another user could open it;
- **atomic**: a file is replaced by writing a temp file beside it (`O_EXCL`),
  fsyncing it and renaming it over the old one, so a reader sees the old bytes
  or the new ones, never a mix; fsyncing the directory then makes the rename
  durable (`Folder.write_atomically`);
- **appends**: `Folder.open_append` opens a journal for appends, `write_all`
  appends a whole line, `cut_back` removes a partial one after a failure and
  `Folder.sync` makes what was appended durable.

A `Folder` is the directory a state's files live in; it counts its fsyncs (for
`local.WriteStats`). Errors are OSError; `oserror` turns one into the StateError
that names the file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable

from reconciler.errors import StateError

__all__ = [
    "ABSENT",
    "Folder",
    "Identity",
    "cut_back",
    "fsync_folder",
    "identity",
    "oserror",
    "read",
    "read_with_identity",
    "write_all",
]

#: Which file is at a path: (device, inode, size, mtime in ns).
Identity = tuple[int, int, int, int]

#: "Nothing there": a missing file, or a parent that is not a directory.
ABSENT = (FileNotFoundError, NotADirectoryError)

#: Errors of os.link that mean "this file system has no hard links here": copy instead.
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.EACCES)


def oserror(action: str, path: str, exc: OSError) -> StateError:
    """The StateError for a failed file operation: `cannot ACTION PATH: reason`."""
    return StateError(f"cannot {action} {path}: {exc.strerror or exc}")


def identity(path: str) -> Identity | None:
    """Which file is at `path` now (device, inode, size, mtime), or None."""
    try:
        st = os.stat(path)
    except ABSENT:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read(path: str, limit: int = -1) -> bytes | None:
    """The bytes of `path` (at most `limit`), or None when there is no file; OSError else."""
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except ABSENT:
        return None


def read_with_identity(path: str) -> tuple[bytes | None, Identity | None]:
    """The bytes of `path` and the identity of the very file they were read from."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except ABSENT:
        return None, None
    try:
        st = os.fstat(fd)
        with open(fd, "rb", closefd=False) as f:
            data = f.read()
    finally:
        os.close(fd)
    return data, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def fsync_folder(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (a rename into it) durable, as far as the system can:
    some file systems, and Windows, cannot open or sync a folder; the rename is done."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` at the file's position (os.write may write less)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def cut_back(fd: int, size: int) -> None:
    """Cut a failed append off again (best effort), so that a later append never
    follows garbage, which would read as a corrupt middle line."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


class Folder:
    """The directory of a state's files: creates, replaces and syncs them durably."""

    def __init__(self, directory: str, fsynced: Callable[[], None] | None = None) -> None:
        self.directory = directory
        #: Called after every fsync this folder makes (for write statistics).
        self._fsynced = fsynced or (lambda: None)

    def temp(self, path: str) -> str:
        """A fresh temp name beside `path` (`PATH.tmp-XXXXXXXXXXXX`)."""
        return f"{path}.tmp-{uuid.uuid4().hex[:12]}"

    def fsync(self) -> None:
        """Make the directory's entries (creations, renames, removals) durable."""
        fd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
            self._fsynced()
        finally:
            os.close(fd)

    def sync(self, fd: int) -> None:
        """Make what was written to `fd` durable."""
        os.fsync(fd)
        self._fsynced()

    def create(self, path: str, data: bytes) -> None:
        """Create `path` (must not exist) 0600 with `data`, fsynced; remove it on failure."""
        # 0600 from creation (not chmod afterwards): the window in which another
        # user could open the file never exists.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # in case the umask is odd; never wider than 0600
            write_all(fd, data)
            self.sync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        os.close(fd)

    def write_atomically(self, path: str, data: bytes, temp: str) -> None:
        """`path` := `data`: a durable temp file `temp`, renamed over `path`, directory fsynced."""
        self.create(temp, data)
        try:
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self.fsync()

    def copy(self, source: str, target: str) -> None:
        """`target` := the current `source` (a hard link: O(1), keeps its bytes as they are;
        a private copy on a file system without hard links), replaced atomically."""
        tmp = self.temp(target)
        try:
            os.link(source, tmp)
            os.chmod(tmp, 0o600)
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            with open(source, "rb") as f:
                previous = f.read()
            self.create(tmp, previous)
        try:
            os.replace(tmp, target)
        finally:
            # rename() of two links to one inode (the target already *is* the
            # source) succeeds without removing the temp name; and on failure
            # the temp name must go too.
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def open_append(self, path: str) -> tuple[int, int]:
        """(fd, size) of `path` opened for appends, created 0600 (its entry made durable)."""
        created = not os.path.exists(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            size = os.fstat(fd).st_size
            if created:
                # The file's own fsync does not make its directory entry durable.
                self.fsync()
        except BaseException:
            os.close(fd)
            raise
        return fd, size

    def remove(self, path: str) -> bool:
        """Unlink `path`; False when it was not there. The caller fsyncs the folder if needed."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def remove_temps(self, *prefixes: str) -> None:
        """Delete the files named `PREFIX...` (temp files of writes that crashed)."""
        try:
            with os.scandir(self.directory) as entries:
                stray = [e.path for e in entries if e.name.startswith(prefixes)]
        except OSError:
            return
        for path in stray:
            with contextlib.suppress(OSError):
                os.unlink(path)
