"""The local state lock: `flock` on `PATH.lock`, with holder information inside.

`fcntl.flock(LOCK_EX | LOCK_NB)` is held on an open file description for the
whole session. The kernel drops it when the process dies, so a killed `dfr
apply` never leaves a stale lock on a local disk. Two `open()`s of the lock file
are two open file descriptions, so two sessions in one process (two threads,
or two backends) conflict exactly like two processes.

Once acquired, the holder writes who it is (lock id, pid, host, user,
operation, time, dfr version) into the lock file, so a blocked user is told
whom to wait for and which id `dfr force-unlock` needs. On release the info is
cleared before the lock is dropped; info left behind by a killed holder is
harmless (the flock, not the info, is the lock) and is replaced by the next one.

`force_unlock` follows the policy of every backend (`backend.force_unlock_action`):
a free flock only loses the info its dead holder left; a held one (its holder on
another host, sharing the file system) is broken by unlinking the lock file, so
the next locker takes a fresh one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from typing import Any

from reconciler.errors import StateError, StateLockedError
from reconciler.state.backend import (
    Unlock,
    force_unlock_action,
    holder_info,
    locked_message,
    wait_for_holder,
)
from reconciler.state.files import oserror

__all__ = ["FileLock", "force_unlock", "read_holder"]

_POLL_SECONDS = 0.05


def read_holder(lock_path: str) -> dict[str, Any] | None:
    """The holder info in the lock file, or None if absent/empty/unreadable."""
    try:
        with open(lock_path, "rb") as f:
            data = f.read(64 * 1024)
    except OSError:
        return None
    try:
        info = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        # Empty (unlocked, or the holder has not written yet) or garbage.
        return None
    return info if isinstance(info, dict) else None


def _holder_of(lock_path: str) -> dict[str, Any] | None:
    """The holder info of a lock found taken (waiting briefly for it: `wait_for_holder`)."""
    return wait_for_holder(lambda: (True, read_holder(lock_path)), poll=0.01)


class FileLock:
    """An acquired lock on `lock_path`; `release()` (idempotent) gives it up."""

    def __init__(self, lock_path: str, fd: int, info: dict[str, Any]) -> None:
        self.path = lock_path
        self.info = info
        self._fd: int | None = fd

    @property
    def id(self) -> str:
        return str(self.info["id"])

    @classmethod
    def acquire(
        cls, lock_path: str, state_name: str, operation: str, timeout: float = 0.0
    ) -> FileLock:
        """Take the lock or raise StateLockedError naming the holder (after `timeout` s)."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            fd = cls._try_acquire(lock_path)
            if fd is not None:
                break
            if time.monotonic() >= deadline:
                raise StateLockedError(locked_message(state_name, _holder_of(lock_path)))
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
        info = holder_info(operation)
        try:
            data = (json.dumps(info, sort_keys=True) + "\n").encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as exc:
            os.close(fd)
            raise oserror("write lock file", lock_path, exc) from None
        return cls(lock_path, fd, info)

    @staticmethod
    def _try_acquire(lock_path: str) -> int | None:
        """An fd holding the flock on the file now at `lock_path`, or None if it is held."""
        for _ in range(10):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise oserror("create lock file", lock_path, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as exc:
                os.close(fd)
                raise oserror("lock", lock_path, exc) from None
            # A force-unlock may have unlinked the file between our open and
            # flock: then we locked an orphan inode that nobody else will see.
            # Only a lock on the file currently at lock_path counts.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, 0o600)
                return fd
            os.close(fd)
        raise StateError(f"cannot lock {lock_path}: the lock file keeps being replaced")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear the info first: an empty lock file means "not locked".
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def force_unlock(lock_path: str, state_name: str, lock_id: str) -> None:
    """Remove the lock with id `lock_id` as `backend.force_unlock_action` rules."""
    info = read_holder(lock_path)
    free: list[int] = []  # the fd holding the flock, when trying it found it free

    def held() -> bool:
        fd = FileLock._try_acquire(lock_path)
        if fd is not None:
            free.append(fd)
        return fd is None

    if force_unlock_action(state_name, lock_id, info, held) is Unlock.CLEAR_RECORD:
        # The flock was free: the holder died and left only its info behind.
        assert info is not None
        FileLock(lock_path, free[0], info).release()
        return
    # The holder is elsewhere (a shared file system) and believed gone: unlink
    # the lock file so the next locker takes a fresh one (see _try_acquire).
    try:
        os.unlink(lock_path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise oserror("remove lock file", lock_path, exc) from None
