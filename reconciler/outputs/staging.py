"""Where a pull builds a run's new folder, and how it swaps it into place.

For the output folder `P/NAME` the staging folder is `P/.NAME.dfr-pull/`
(same parent, so same filesystem: every move is a rename):

    files/            the new folder being built: downloads land here once verified
    parts/            downloads in progress (never read as data), one per file, named
                      by its file id and path, with the ETag its bytes came with: a
                      pull after a crash goes on from where such a download stopped
    verified.jsonl    one line per verified file {run_id, file_id, path, size, sha256},
                      appended after the file is in files/ (a resume re-hashes each
                      file it reuses, so a line outliving its file after a power loss
                      costs one download, never a wrong file)
    ready.json        written once files/ is complete: the record to store and the
                      inode of files/, which tells after a crash whether the swap happened
    old/              the previous folder, after the swap, until it is deleted
    .gitignore        `*`: git never offers to commit an interrupted pull

What a reader of `P/NAME` sees, at every instant:

- while files download: the old folder, untouched (or nothing, on a first pull);
- the swap: on Linux one `renameat2(RENAME_EXCHANGE)` exchanges the two folders
  atomically, old for new; elsewhere (or on filesystems without it) two
  renames, `P/NAME -> old/` then `files/ -> P/NAME`, so between them, for a
  moment, `P/NAME` does not exist: a reader sees no folder, never a mix;
- after: the new folder. A reader holding files of the old one open keeps
  reading the old bytes (they are unlinked only when `old/` is deleted).

After a crash or Ctrl-C: `verified.jsonl` lets the next pull of the same run
reuse every verified file (re-hashed, not downloaded); a `ready.json` makes the
next pull finish the swap (or see it was done) and record it first.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import json
import os
import shutil
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reconciler import hooks
from reconciler.outputs.scan import OutputsError, hash_file
from reconciler.outputs.select import STAGING_SUFFIX, Wanted, name_problem
from reconciler.state.files import fsync_folder
from reconciler.state.model import OutputsRecord
from reconciler.state.records import outputs_from_dict, outputs_to_dict

__all__ = ["Staging", "Verified", "etag_path", "start_writeback", "write_file"]

#: Beside a part file: the ETag of the object its bytes came from (resume only then).
ETAG_SUFFIX = ".part.etag"

_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writing dirty pages, do not wait
C_INT = ctypes.c_int


@dataclass(frozen=True, slots=True)
class Verified:
    """One file of `files/`, verified: a line of verified.jsonl."""

    run_id: str
    file_id: str
    path: str
    size: int
    sha256: str


def _real_folder(path: Path) -> None:
    """Make `path` a folder (parents too), removing a file or link found in its place:
    what the staging folder holds is dfr's own, and all of it can be fetched again."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
    path.mkdir(parents=True, exist_ok=True)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def write_file(path: Path, text: str, *, sync: bool = False) -> None:
    """Write `path` afresh: whatever stood there (a link, say, committed to the
    repository in dfr's staging folder) is removed first, never written through."""
    _remove(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    """Delete `path`, a folder with what it holds or a file or link (never followed)."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    if is_dir:
        shutil.rmtree(path)
    else:
        os.unlink(path)


def etag_path(part: Path) -> Path:
    """The file beside `part` holding the ETag its bytes came with."""
    return part.with_name(part.name.removesuffix(".part") + ETAG_SUFFIX)


@functools.cache
def _linux_call(name: str, *argtypes: Any) -> Any:
    """The C library's function `name` with its argument types (Linux), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    call.argtypes = list(argtypes)
    return call


def start_writeback(fd: int) -> None:
    """Have the kernel start writing a finished download's pages to disk now (Linux
    sync_file_range, as PostgreSQL's *_flush_after do), so the one sync before the
    swap has little left to wait for. A hint only: durability is still that sync's."""
    call = _linux_call("sync_file_range", C_INT, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    if call is not None:
        call(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _syncfs(path: Path) -> bool:
    """Flush the whole filesystem of `path` at once (Linux syncfs); False where unknown."""
    syncfs = _linux_call("syncfs", C_INT)
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        return bool(syncfs(fd) == 0)
    finally:
        os.close(fd)


def _sync_tree(tree: Path) -> None:
    """Every file and folder below `tree` on disk: one syncfs on Linux (one journal
    commit, not one per file), else an fsync of each."""
    if _syncfs(tree):
        return
    for dirpath, _, filenames in os.walk(tree):
        for name in filenames:
            with contextlib.suppress(OSError):
                fd = os.open(Path(dirpath) / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fsync_folder(Path(dirpath))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where that is not possible."""
    path = ctypes.c_char_p
    renameat2 = _linux_call("renameat2", C_INT, path, C_INT, path, ctypes.c_uint)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


class Staging:
    """The staging folder of one output folder (see the module docstring)."""

    def __init__(self, folder: Path, *, exchange: bool = True) -> None:
        self.folder = folder
        self.dir = folder.parent / f".{folder.name}{STAGING_SUFFIX}"
        self.tree = self.dir / "files"
        self.parts = self.dir / "parts"
        self.journal = self.dir / "verified.jsonl"
        self.ready = self.dir / "ready.json"
        self.old = self.dir / "old"
        self._exchange = exchange

    # -- opening and resuming

    def _check_dir(self) -> bool:
        """Whether the staging folder exists; an OutputsError if it is not a real folder."""
        try:
            info = os.lstat(self.dir)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            raise OutputsError(
                f"{self.dir} (dfr's staging folder for {self.folder.name}) is not a folder;"
                " remove it and pull again"
            )
        return True

    def open(self, run_id: str, wanted: Iterable[Wanted]) -> dict[str, Verified]:
        """Make the staging folder ready for `run_id`; return the verified files it
        already holds for the files `wanted` (by path), dropping anything else."""
        if self._check_dir() and self._previous_run() not in (None, run_id.lower()):
            self.discard()
        wanted = list(wanted)
        for folder in (self.tree, self.parts):
            _real_folder(folder)
        _remove(self.old)  # a previous folder of a finished swap is recovered before
        self._prune_parts({self.part_path(w).name for w in wanted})
        write_file(self.dir / ".gitignore", "*\n")
        keep = self._reusable(run_id, {w.path: w for w in wanted})
        self._prune_tree(set(keep))
        self._rewrite_journal(keep.values())
        return keep

    def _entries(self) -> list[Verified]:
        try:
            lines = self.journal.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                obj = json.loads(line)
                entries.append(Verified(**{k: obj[k] for k in Verified.__slots__}))
            except (ValueError, TypeError, KeyError):
                continue  # a line torn by a crash: that file is downloaded again
        return entries

    def _previous_run(self) -> str | None:
        entries = self._entries()
        return entries[-1].run_id.lower() if entries else None

    def _reusable(self, run_id: str, wanted: dict[str, Wanted]) -> dict[str, Verified]:
        keep: dict[str, Verified] = {}
        for entry in self._entries():
            want = wanted.get(entry.path)
            if (
                want is None
                or entry.run_id.lower() != run_id.lower()
                or entry.file_id != want.file_id
                or (want.size is not None and entry.size != want.size)
                or (want.sha256 is not None and entry.sha256 != want.sha256)
                or name_problem(entry.path) is not None
            ):
                continue
            target = self.tree / entry.path
            try:
                info = os.lstat(target)
                same_size = stat.S_ISREG(info.st_mode) and info.st_size == entry.size
                if same_size and hash_file(target) == entry.sha256:
                    keep[entry.path] = entry
            except OSError:
                continue
        return keep

    def _prune_tree(self, keep: set[str]) -> None:
        """Delete from files/ whatever is not a kept verified file."""
        for dirpath, dirnames, filenames in os.walk(self.tree, topdown=False):
            base = Path(dirpath)
            for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
                rel = (base / name).relative_to(self.tree).as_posix()
                if rel not in keep:
                    (base / name).unlink()
            if base != self.tree:
                with contextlib.suppress(OSError):
                    base.rmdir()  # only when empty

    def _rewrite_journal(self, entries: Iterable[Verified]) -> None:
        tmp = self.dir / "verified.jsonl.tmp"
        lines = [json.dumps(asdict(entry), sort_keys=True) + "\n" for entry in entries]
        write_file(tmp, "".join(lines), sync=True)
        os.replace(tmp, self.journal)

    # -- filling files/

    def part_path(self, wanted: Wanted) -> Path:
        """Where `wanted` downloads: named by its file id and path, so that an interrupted
        download of the same file is found again, and no two files share one."""
        key = hashlib.sha256(f"{wanted.file_id}\0{wanted.path}".encode()).hexdigest()[:32]
        return self.parts / f"{key}.part"

    def _prune_parts(self, keep: set[str]) -> None:
        """Delete from parts/ what belongs to no file wanted now (and anything odd)."""
        for entry in os.scandir(self.parts):
            name = entry.name
            own = name[: -len(ETAG_SUFFIX)] + ".part" if name.endswith(ETAG_SUFFIX) else name
            if own not in keep or not entry.is_file(follow_symlinks=False):
                _remove(Path(entry.path))

    def _target(self, rel: str) -> Path:
        if name_problem(rel) is not None:  # checked before; never write outside files/
            raise OutputsError(f"refusing to write {rel!r}")
        target = self.tree / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def commit(self, part: Path, entry: Verified) -> None:
        """Move a verified download into files/ and note it (durably) in the journal."""
        os.replace(part, self._target(entry.path))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(etag_path(part))
        self._note(entry)

    def link_from(self, source: Path, entry: Verified) -> None:
        """Put a verified file that is already on disk (in the current folder) into files/."""
        target = self._target(entry.path)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            shutil.copyfile(source, target, follow_symlinks=False)
        self._note(entry)

    def _note(self, entry: Verified) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW
        with os.fdopen(os.open(self.journal, flags, 0o644), "w", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(entry), sort_keys=True) + "\n")
        hooks.hit("pull-file-verified")

    def carry_over(self, tracked: set[str], wanted: Iterable[str]) -> list[str]:
        """Link into files/ what the current folder holds that no record lists (the
        user's own files: a pull never deletes what it did not write). Returns those
        left out because a file of the run takes their place."""
        taken = {p.casefold() for p in wanted}
        folders = {"/".join(p.split("/")[:i]) for p in taken for i in range(1, p.count("/") + 1)}
        skipped: list[str] = []
        if not self.folder.is_dir() or self.folder.is_symlink():
            return skipped
        for dirpath, dirnames, filenames in os.walk(self.folder):
            base = Path(dirpath)
            links = [d for d in dirnames if (base / d).is_symlink()]
            dirnames[:] = [d for d in dirnames if d not in links]
            for name in filenames + links:
                rel = (base / name).relative_to(self.folder).as_posix()
                if rel in tracked:
                    continue
                folded = rel.casefold()
                clash = folded in taken or folded in folders
                clash = clash or any(folded.startswith(p + "/") for p in taken)
                if clash:
                    skipped.append(rel)
                    continue
                self._copy_entry(base / name, self.tree / rel)
        return skipped

    @staticmethod
    def _copy_entry(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
            return
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(source, target, follow_symlinks=False)

    # -- swapping

    def mark_ready(self, record: OutputsRecord) -> None:
        """files/ is complete: make it durable, then say so in ready.json."""
        _sync_tree(self.tree)
        info = os.stat(self.tree)
        payload = {"inode": [info.st_dev, info.st_ino], "record": outputs_to_dict(record)}
        tmp = self.dir / "ready.json.tmp"
        write_file(tmp, json.dumps(payload, sort_keys=True), sync=True)
        os.replace(tmp, self.ready)
        fsync_folder(self.dir)

    def swap(self) -> None:
        """Put files/ in place of the output folder (see the module docstring)."""
        parent = self.folder.parent
        if not os.path.lexists(self.folder):
            os.rename(self.tree, self.folder)
        elif self._exchange and _exchange(self.tree, self.folder):
            hooks.hit("pull-exchanged")
            os.rename(self.tree, self.old)  # files/ now names the old folder
        else:
            os.rename(self.folder, self.old)
            hooks.hit("pull-swap-halfway")
            os.rename(self.tree, self.folder)
        fsync_folder(parent)
        fsync_folder(self.dir)

    def recover(self) -> OutputsRecord | None:
        """After a crash: finish a swap ready.json announced (or see it done); return its
        record for the caller to store. None when there is nothing to recover."""
        if not self._check_dir():
            return None
        try:
            payload: Any = json.loads(self.ready.read_text(encoding="utf-8"))
            inode = tuple(payload["inode"])
            record = outputs_from_dict(payload["record"])
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if record is None:
            return None
        if self._inode(self.folder) == inode:
            return record  # swapped; the record may not be stored yet
        if self._inode(self.tree) == inode:
            self.swap()
            return record
        self.discard()  # neither: ready.json is stale
        return None

    @staticmethod
    def _inode(path: Path) -> tuple[int, int] | None:
        try:
            info = os.lstat(path)
        except OSError:
            return None
        return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None

    def discard(self) -> None:
        """Delete the staging folder and everything in it (the old folder included)."""
        if self._check_dir():
            shutil.rmtree(self.dir)
