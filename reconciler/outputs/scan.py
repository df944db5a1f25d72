"""Reading output folders: the recorded files as found on disk, never following a link.

`listing(folder, record)` stats each file an `OutputsRecord` lists (`lstat`,
every folder on the way checked to be a real folder, not a symbolic link)
and reads the sha256 of those whose size matches; `check_folders(root, ...)`
does that for every manifest with a recorded pull and returns the pure
`FolderCheck` of each (`reconciler.outputs.compare`). Only reads.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import DfrError
from reconciler.outputs.compare import FolderCheck, Seen, check_folder
from reconciler.outputs.select import name_problem
from reconciler.state.model import OutputsRecord, RunRecord, State

if TYPE_CHECKING:
    from reconciler.outputs.hashcache import HashCache

__all__ = [
    "OutputsError",
    "check_folders",
    "check_records",
    "folder_of",
    "hash_file",
    "listing",
    "with_pulls",
]

_READ_CHUNK = 1 << 20


class OutputsError(DfrError):
    """An output folder cannot be used (it leaves the project, is a link or a file, ...)."""


def folder_of(root: Path, path: str) -> Path:
    """The output folder `path` (relative to `root`), refused when it leaves the root.

    Checked again here (validation did, but the folders may have changed since):
    the folder and its parents must resolve inside the project root, and the
    folder itself must not be a symbolic link (a pull replaces it by renaming).
    """
    if name_problem(path) is not None:
        raise OutputsError(f"outputs.path {path!r} is not a folder below the project root")
    folder = root / path
    real_root = os.path.realpath(root)
    real = os.path.realpath(folder)
    if os.path.commonpath([real_root, real]) != real_root:
        raise OutputsError(
            f"outputs.path {path!r} leads outside the project root {root} (through a symbolic link)"
        )
    if folder.is_symlink():
        raise OutputsError(
            f"outputs.path {path!r} is a symbolic link; a pull replaces the folder, so it must"
            " be a real folder (or not exist yet)"
        )
    if folder.exists() and not folder.is_dir():
        raise OutputsError(f"outputs.path {path!r} exists and is not a folder")
    return folder


def hash_file(path: Path) -> str:
    """The sha256 (hex) of a regular file, opened without following a link."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _real_folder(path: Path) -> bool:
    """`path` is a folder itself, not a link to one (nor anything else)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _lstat_below(folder: Path, rel: str) -> os.stat_result | None:
    """The lstat of `folder/rel` if every folder on the way is a real folder, else None."""
    current = folder
    parts = rel.split("/")
    for part in parts[:-1]:
        current = current / part
        if not _real_folder(current):
            return None
    try:
        return os.lstat(current / parts[-1])
    except OSError:
        return None


def seen_file(folder: Path, rel: str, size: int, cache: HashCache | None = None) -> Seen | None:
    """The file `rel` below `folder` as found (None: not there); hashed if its size is
    `size` (through `cache` when given: an unchanged file is not read again)."""
    if name_problem(rel) is not None:
        return Seen(0, None, regular=False)
    info = _lstat_below(folder, rel)
    if info is None:
        return None
    if not stat.S_ISREG(info.st_mode):
        return Seen(info.st_size, None, regular=False)
    if info.st_size != size:
        return Seen(info.st_size, None)
    try:
        path = folder / rel
        digest = hash_file(path) if cache is None else cache.sha256(path, info)
        return Seen(info.st_size, digest)
    except OSError:
        return Seen(info.st_size, None, regular=False)


def listing(
    folder: Path, record: OutputsRecord, cache: HashCache | None = None
) -> dict[str, Seen] | None:
    """The recorded files found below `folder`; None when the folder does not exist."""
    if not _real_folder(folder):
        return None
    found: dict[str, Seen] = {}
    for file in record.files:
        seen = seen_file(folder, file.path, file.size, cache)
        if seen is not None:
            found[file.path] = seen
    return found


def check_folders(
    root: Path, manifests: Iterable[Any], state: State, cache: HashCache | None = None
) -> dict[str, FolderCheck]:
    """The FolderCheck of every manifest with `outputs:` whose run has a recorded pull,
    read where the pull wrote (its recorded path)."""
    checks: dict[str, FolderCheck] = {}
    for manifest in manifests:
        if getattr(manifest, "outputs", None) is None:
            continue
        record = state.get(manifest.name)
        pulled = None if record is None else record.outputs
        if pulled is None:
            checks[manifest.name] = check_folder(None, None)
            continue
        try:
            folder = folder_of(root, pulled.path)
        except OutputsError:
            checks[manifest.name] = check_folder(pulled, None)
            continue
        checks[manifest.name] = check_folder(pulled, listing(folder, pulled, cache))
    return checks


def with_pulls(
    plan: Any, manifests: Iterable[Any], state: State, root: Path, *, use_cache: bool = True
) -> Any:
    """`plan` with its `pulls`: the output folders read here (unchanged files' digests
    from the hash cache unless `use_cache` is False), the pure rule of
    `needs.pulls_needed` applied (a run the plan submits is pulled after it)."""
    import dataclasses

    from reconciler.outputs.needs import pulls_needed

    listed = [m for m in manifests if getattr(m, "outputs", None) is not None]
    if not listed:
        return plan
    from reconciler.outputs.hashcache import HashCache

    cache = HashCache.open(disabled=not use_cache)
    checks = check_folders(root, listed, state, cache)
    cache.flush()
    submitting = frozenset(c.name for c in plan.changes if c.submits)
    pulls = pulls_needed(listed, state, checks, submitting=submitting)
    return dataclasses.replace(plan, pulls=pulls)


def check_records(
    root: Path, records: Iterable[RunRecord], cache: HashCache | None = None
) -> dict[str, FolderCheck]:
    """The FolderCheck of every record with a recorded pull, read where it wrote
    (for `dfr status`, which reads state only)."""
    checks: dict[str, FolderCheck] = {}
    for record in records:
        pulled = record.outputs
        if pulled is None:
            continue
        try:
            found = listing(folder_of(root, pulled.path), pulled, cache)
        except OutputsError:
            found = None
        checks[record.name] = check_folder(pulled, found)
    return checks
