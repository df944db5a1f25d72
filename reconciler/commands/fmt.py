"""`dfr fmt [PATH...] [--check] [--diff]`: manifests in a canonical key order, comments kept.

The order, and how it is reached (whole lines moved, nothing else changed), are
`reconciler.keyorder`'s. A file is rewritten only when its order changes, through a
new file beside it that replaces it once complete (its mode and owner kept; a link
stays a link and the file it points to is formatted), and only if it still holds
what was read.
A read-only file is reported, not changed. Files that dfr's own strict reader
refuses (YAML errors, traps) are reported and left alone: `dfr validate`
explains them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_OK
from reconciler.keyorder import BOM, NotFormatted, bare, format_text, is_manifest, split_lines
from reconciler.state.files import fsync_folder
from reconciler.textsafe import line_start, one_line

if TYPE_CHECKING:
    from reconciler.invocation import Invocation
    from reconciler.manifests import SourceFile


# -- the command -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FmtArgs:
    paths: tuple[str, ...] = ()
    check: bool = False  # change nothing; exit 1 listing the files that would change
    diff: bool = False  # print what would change as a unified diff


def run_fmt(inv: Invocation, args: FmtArgs, out: TextIO, err: TextIO) -> int:
    from reconciler import diagnostics as diag
    from reconciler.manifests import discover

    sources, problems = discover(args.paths or (".",))
    diag.write_text(problems, err)
    failed = bool(diag.count_errors(problems))
    changed = 0
    for source in sources:
        outcome = _format_one(source, args, out, err)
        failed = failed or outcome is None
        changed += outcome is True
    if args.check and changed:
        err.write(
            f"{changed} file{'s' if changed != 1 else ''} not in canonical key order; "
            "run `dfr fmt` to fix\n"
        )
        return EXIT_ERROR
    return EXIT_ERROR if failed else EXIT_OK


def _format_one(source: SourceFile, args: FmtArgs, out: TextIO, err: TextIO) -> bool | None:
    """True when the file changed (or would), False when not, None when it failed."""
    from reconciler import diagnostics as diag
    from reconciler.manifests import parse_bytes, read_bytes
    from reconciler.yamlsafe import YAMLProblem

    shown = line_start(source.display)
    data, problem = read_bytes(source)
    docs, bad = (
        parse_bytes(source, data) if data is not None else ([], [problem] if problem else [])
    )
    if bad:
        diag.write_text(bad, err)
        if diag.count_errors(bad):
            err.write(f"{shown}: not formatted; `dfr validate` explains the problem\n")
            return None
    if data is None or not any(is_manifest(d.value) for d in docs):
        return False
    bom = data.startswith(BOM)
    try:
        text = format_text(data[len(BOM) if bom else 0 :].decode("utf-8"))
    except (NotFormatted, YAMLProblem) as exc:
        err.write(f"{shown}: not formatted: {one_line(exc)}\n")
        return None
    if text is None:
        return False
    new = (BOM if bom else b"") + text.encode("utf-8")
    if args.diff:
        _write_diff(source.display, data, new, out)
    if args.check:
        out.write(f"would reformat {shown}\n")
        return True
    return _replace(source, data, new, out, err)


def _replace(source: SourceFile, old: bytes, new: bytes, out: TextIO, err: TextIO) -> bool | None:
    shown = line_start(source.display)
    try:
        target = write_if_unchanged(source.path, old, new)
    except NotFormatted as exc:
        err.write(f"{shown}: not formatted: {one_line(exc)}\n")
        return None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc.filename, str):
            reason += f": {_shown(exc.filename)}"
        err.write(f"{shown}: not formatted: cannot write ({one_line(reason)})\n")
        return None
    note = ""
    if os.path.islink(source.path):
        note = f" (the file it links to: {one_line(_shown(target))})"
    out.write(f"reformatted {shown}{note}\n")
    return True


def _write_diff(display: str, old: bytes, new: bytes, out: TextIO) -> None:
    """A unified diff of the change, each line made printable."""
    import difflib

    before = split_lines(old.decode("utf-8-sig"))
    after = split_lines(new.decode("utf-8-sig"))
    for line in difflib.unified_diff(
        [bare(x) for x in before],
        [bare(x) for x in after],
        f"{display} (now)",
        f"{display} (formatted)",
        lineterm="",
    ):
        out.write(one_line(line) + "\n")


def write_if_unchanged(path: Any, old: bytes, new: bytes) -> str:
    """Replace the file at `path` (a link: the file it points to) with `new`, if it still
    holds `old`; keep its mode and owner; return the path written.

    The new text goes to `FILE.dfr-fmt.tmp` beside it (created, never reused: a file
    of that name is in the way), synced, then renamed over the file, so a crash or a
    full disk leaves the old file or the new one, never a part.
    """
    target: str = os.path.realpath(os.fspath(path))
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):  # a pipe: read once, nothing to write back to
        raise NotFormatted("not a regular file; nothing to write the formatted text to")
    if not info.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        raise NotFormatted("the file is read-only; make it writable to let dfr fmt change it")
    temporary = f"{target}.dfr-fmt.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, 0o600)
    except FileExistsError:
        raise NotFormatted(
            f"cannot write ({one_line(_shown(temporary))} is in the way: left by an interrupted "
            "dfr fmt? remove it)"
        ) from None
    try:
        with open(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            _keep_owner(handle.fileno(), info)
            os.fsync(handle.fileno())
        if _read_all(target) != old:
            raise NotFormatted("the file changed while dfr fmt ran; run dfr fmt again")
        os.replace(temporary, target)
    except BaseException:
        if os.path.lexists(temporary) and not os.path.isdir(temporary):
            os.unlink(temporary)
        raise
    fsync_folder(os.path.dirname(target) or ".")
    return target


def _keep_owner(fd: int, info: os.stat_result) -> None:
    os.fchmod(fd, stat.S_IMODE(info.st_mode))
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give a file away
            os.fchown(fd, info.st_uid, info.st_gid)
        os.fchmod(fd, stat.S_IMODE(info.st_mode))  # chown clears set-id bits


def _read_all(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _shown(path: str) -> str:
    """`path` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
