"""The sha256 of output files that did not change, remembered between commands.

`dfr plan` and `dfr status` compare every recorded file with its sha256; reading
gigabytes on every plan would make them slow. As git's index does, a file's
digest is reused while its stat says it is the same file with the same bytes:
device, inode, size, mtime and ctime (nanoseconds; ctime cannot be set by a
user and changes on every write). A digest is remembered only for a file
untouched for `RACY_SECONDS`, so a write within the timestamps' granularity
after it was read is never missed. `dfr pull --check` (the CI claim) does not
use it: it reads every byte.

Storage: `outputs-sha256.json` in dfr's cache folder (`reconciler.vcache.cache_dir`,
private to the user, checked as the validation cache is), written atomically when
something was added; an unreadable or foreign file is ignored.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from reconciler.cachefile import read_entries, write_entries
from reconciler.outputs.scan import hash_file

__all__ = ["RACY_SECONDS", "HashCache"]

FILE_NAME = "outputs-sha256.json"
VERSION = 1
#: A file modified less than this long ago is hashed, never remembered.
RACY_SECONDS = 2.0
#: More entries than this and the cache starts over (files come and go).
MAX_ENTRIES = 200_000


def _stat_key(info: os.stat_result) -> str:
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}"


class HashCache:
    """`sha256(path, info)`: the digest of a regular file, from the cache when its stat
    matches. A cache without a file (`HashCache(None)`) always reads the file."""

    def __init__(self, file: Path | None) -> None:
        self._file = file
        self._entries: dict[str, Any] | None = None
        self._dirty = False
        self._lock = threading.Lock()  # pull's runs look files up side by side

    @classmethod
    def open(cls, *, disabled: bool = False) -> HashCache:
        if disabled:
            return cls(None)
        from reconciler.vcache import _private_dir, cache_dir

        folder = cache_dir()
        return cls(folder / FILE_NAME if _private_dir(folder) else None)

    def sha256(self, path: Path, info: os.stat_result) -> str:
        if self._file is None:
            return hash_file(path)
        key = os.path.abspath(path)
        with self._lock:
            known = self._load().get(key)
        stat_key = _stat_key(info)
        if isinstance(known, list) and len(known) == 2 and known[0] == stat_key:
            return str(known[1])
        digest = hash_file(path)
        newest = max(info.st_mtime_ns, info.st_ctime_ns)
        if time.time_ns() - newest >= RACY_SECONDS * 1e9:
            with self._lock:
                self._load()[key] = [stat_key, digest]
                self._dirty = True
        return digest

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = self._read()
        return self._entries

    def _read(self) -> dict[str, Any]:
        assert self._file is not None
        entries = read_entries(self._file, VERSION)
        return entries if len(entries) <= MAX_ENTRIES else {}

    def flush(self) -> None:
        """Write the cache if anything was added (best effort: a failure only costs time)."""
        with self._lock:
            if self._file is None or not self._dirty or self._entries is None:
                return
            entries = dict(self._entries)
        try:
            write_entries(self._file, VERSION, entries, prefix=".outputs-")
        except OSError:
            return
        self._dirty = False
