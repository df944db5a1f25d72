"""Which of a run's generated files a pull writes, and where: pure, no filesystem.

A file's `path` comes from the API, so it is untrusted: it is written below
the output folder only if `name_problem` finds nothing wrong with it. Refused:
an empty path, an absolute one (`/x`, `C:x`, `//host/x`, `~/x`), a `..` or `.`
segment, an empty segment (`a//b`, a trailing `/`), a backslash, a control
character (a newline, NUL, ...), a segment longer than 255 bytes, a `.git`
segment, and a name dfr uses for its own staging (`*.dfr-pull`). Across the
files of one run: two paths equal but for letter case or Unicode form
(composed 'é' and decomposed 'e\u0301'; one would overwrite the other on macOS
and Windows), and a path that is both a file and a folder
(`a` and `a/b`). A refused name is an error naming the run and the file (its
`repr`, so that a newline shows as `\\n`); nothing of that run is written.

`select_files` keeps the files the manifest's `outputs.files` globs keep
(all when there are none), with the rules of `reconciler.outputs_rules`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from reconciler.errors import DfrError

__all__ = [
    "STAGING_SUFFIX",
    "UnsafeName",
    "Wanted",
    "check_complete",
    "name_problem",
    "select_files",
]

#: The suffix of a pull's staging folder, beside the output folder.
STAGING_SUFFIX = ".dfr-pull"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
#: Most filesystems' limit on one name, in bytes.
MAX_NAME_BYTES = 255


class UnsafeName(DfrError):
    """A generated file's path that must not be written (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file a pull writes: its path below the output folder, as checked."""

    path: str
    file_id: str
    size: int | None  # the API's size_bytes (None when it gave none)
    sha256: str | None = None  # when the API gives a checksum


def name_problem(path: object) -> str | None:
    """Why `path` may not be written below the output folder, or None."""
    if not isinstance(path, str) or path == "":
        return "it has no path"
    if _CONTROL.search(path):
        return "its path holds a control character (a newline, a tab, NUL, ...)"
    if "\\" in path:
        return "its path holds a backslash"
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        return "its path is absolute"
    segments = path.split("/")
    for segment in segments:
        problem = _segment_problem(segment)
        if problem is not None:
            return problem
    return None


def _segment_problem(segment: str) -> str | None:
    if segment in ("", "."):
        return "its path has an empty or '.' folder name"
    if segment == "..":
        return "its path leaves the output folder ('..')"
    if segment.casefold() == ".git":
        return "its path names a '.git' folder"
    if segment.endswith(STAGING_SUFFIX):
        return f"its path ends a name with {STAGING_SUFFIX!r}, which dfr keeps for itself"
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"its path has a name longer than {MAX_NAME_BYTES} bytes"
    return None


def _fold(path: str) -> str:
    """`path` as a case-insensitive, normalising file system sees it (macOS, Windows:
    'A' is 'a', and a decomposed 'e\u0301' is 'é')."""
    return unicodedata.normalize("NFC", path).casefold()


def _clashes(paths: Sequence[str]) -> str | None:
    """The first clash between the paths of one run (case, or file vs folder), or None."""
    seen: dict[str, str] = {}
    for path in paths:
        folded = _fold(path)
        if folded in seen:
            other = seen[folded]
            if other == path:
                return f"{path!r} is listed twice"
            if other.casefold() == path.casefold():
                return f"{other!r} and {path!r} differ only in letter case"
            return f"{other!r} and {path!r} are one name in two Unicode forms"
        seen[folded] = path
    for path in paths:
        parts = _fold(path).split("/")
        for depth in range(1, len(parts)):
            prefix = "/".join(parts[:depth])
            if prefix in seen:
                return f"{seen[prefix]!r} is a file and also a folder of {path!r}"
    return None


def select_files(
    run_name: str,
    files: Iterable[tuple[str | None, str | None, int | None, str | None]],
    keeps: Callable[[str], bool],
) -> tuple[Wanted, ...]:
    """The files of run `run_name` to write: `(path, file_id, size_bytes, sha256)`
    tuples filtered by `keeps` (the manifest's globs), sorted by path.

    Raises UnsafeName for the first path that may not be written, kept or not
    (a listing with a hostile name is not trusted for the others either), and
    for a kept file without an id (it cannot be downloaded).
    """
    wanted: list[Wanted] = []
    for path, file_id, size, sha256 in files:
        problem = name_problem(path)
        if problem is not None:
            raise UnsafeName(
                f"run {run_name}: the API lists a file dfr will not write: {path!r}: {problem}"
            )
        assert isinstance(path, str)
        if not keeps(path):
            continue
        if not file_id:
            raise UnsafeName(f"run {run_name}: the API lists {path!r} without a file id")
        wanted.append(Wanted(path, file_id, size, sha256))
    wanted.sort(key=lambda w: w.path)
    clash = _clashes([w.path for w in wanted])
    if clash is not None:
        raise UnsafeName(f"run {run_name}: the API's file list cannot be written: {clash}")
    return tuple(wanted)


def check_complete(run_name: str, listed: Sequence[object], pulled_before: Iterable[str]) -> None:
    """Refuse a listing of a SUCCEEDED run that cannot be its whole output: no file
    at all, or without a file an earlier pull of this same run wrote (`pulled_before`).
    A run's files do not change once it SUCCEEDED, so such an answer is a broken
    API's, and swapping it in would empty the folder of verified data."""
    if not listed:
        raise UnsafeName(
            f"run {run_name}: the API lists no generated files for this SUCCEEDED run;"
            " nothing is pulled (try again later, or see the run in the web app)"
        )
    lost = sorted(set(pulled_before) - {p for p in listed if isinstance(p, str)})
    if lost:
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        raise UnsafeName(
            f"run {run_name}: the API no longer lists {lost[0]!r}{more}, written by an"
            " earlier pull of this same run; its answer looks incomplete, so nothing is"
            " changed (try again later)"
        )
