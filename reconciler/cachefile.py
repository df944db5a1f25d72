"""dfr's cache files: `{"version": V, "entries": {...}}` as JSON in the user's cache folder.

Both caches (`vcache`'s validation results, `outputs.hashcache`'s file digests)
read and write them the same way: a file that is not a regular file owned by
this user, not JSON, or of another version reads as empty (a cache only saves
time, it is never trusted over the files); a write goes to a temporary file in
the same folder, then replaces the old one at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["read_entries", "write_entries"]


def _foreign(info: os.stat_result, refuse_shared: bool) -> bool:
    """Not a regular file of this user (or, with `refuse_shared`, writable by others)."""
    getuid = getattr(os, "getuid", None)  # None on Windows: no owner to check
    if not stat.S_ISREG(info.st_mode) or (getuid is not None and info.st_uid != getuid()):
        return True
    return refuse_shared and bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def read_entries(path: Path, version: int, *, refuse_shared: bool = False) -> dict[str, Any]:
    """The `entries` of the cache file at `path`, or {} when it cannot be trusted or read.

    A link is not followed; `refuse_shared` also refuses a file that the group
    or others may write.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return {}
    try:
        if _foreign(os.fstat(fd), refuse_shared):
            return {}
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError, RecursionError):
        return {}
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("version") != version:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def write_entries(path: Path, version: int, entries: dict[str, Any], *, prefix: str) -> None:
    """Replace the cache file at `path` atomically (a temporary `prefix`* file
    in the same folder first); OSError when it cannot be written, with no
    temporary file left behind."""
    text = json.dumps({"version": version, "entries": entries}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
