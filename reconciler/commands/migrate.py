"""`dfr state migrate --to DEST`: move the state to another backend (file <-> database)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.engine.backends import backend_for, open_backend
from reconciler.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@dataclass(frozen=True, slots=True)
class MigrateArgs:
    destination: str  # postgresql://... or a state file
    to_workspace: str | None = None
    force: bool = False


def run_migrate(inv: Invocation, args: MigrateArgs, out: TextIO, err: TextIO) -> int:
    from reconciler.state.migrate import migrate

    destination = args.destination
    source = open_backend(inv)
    from reconciler.state.postgres import is_postgres_url

    # Default: the same workspace name on the other side (for database to database).
    workspace = args.to_workspace
    if workspace is None and is_postgres_url(destination):
        workspace = getattr(source, "workspace", None)
    if not is_postgres_url(destination):
        _check_file_destination(destination)
    target = backend_for(destination, workspace)
    result = migrate(source, target, force=args.force, timeout=inv.lock_timeout)
    src, dst = source.describe(), target.describe()
    runs = f"{result.runs} run{'s' if result.runs != 1 else ''}"
    if result.was_moved_to is not None:
        err.write(
            f"warning: {src} had been moved to {result.was_moved_to}; with --force it now "
            f"points at {dst}: retire {result.was_moved_to}\n"
        )
    for name in result.replaced:
        err.write(
            f"warning: {dst} recorded another run for {name}; it is forgotten, not canceled\n"
        )
    if result.copied:
        out.write(
            f"Migrated {runs} (serial {result.serial}, lineage {result.lineage}) from {src} to "
            f"{dst}, and read them back.\n"
        )
    else:
        out.write(
            f"{dst} already holds this state ({runs}, serial {result.serial}); nothing to copy.\n"
        )
    if result.returned:
        out.write(f"{dst} had been moved away before; it is the current state again.\n")
    out.write(
        f"{src} keeps its records but is marked as moved to {dst}: every dfr command now "
        f"refuses it, naming {dst}. Point dfr at {dst} (--backend, DFR_BACKEND or dfr.yaml).\n"
    )
    return EXIT_OK


def _check_file_destination(destination: str) -> None:
    """Refuse a state file at '', a folder, a device or a manifest's name before any lock.

    Each reached the backend, which left `NAME.lock` beside it (in the manifests
    folder, or `/dev/null.lock` as root) before it found that it could not be a state.
    """
    from reconciler.textsafe import one_line

    path = (
        destination[len("file://") :] if destination.lower().startswith("file://") else destination
    )
    shown = one_line(repr(destination))
    if path.strip() == "":
        raise UsageError(f"--to {shown} names no file: give a state file or a postgresql:// URL")
    if path.lower().endswith((".yaml", ".yml")):
        raise UsageError(
            f"--to {shown} is a manifest's name (*.yaml): a state file is JSON; name it *.json"
        )
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # a new file (the backend reports a missing folder)
    if stat.S_ISDIR(mode):
        raise UsageError(f"--to {shown} is a folder: name a state file in it (e.g. dfr.state.json)")
    if not stat.S_ISREG(mode):
        raise UsageError(f"--to {shown} is not a regular file: a state must be a file")
    if not _may_be_state(path):
        raise UsageError(
            f"--to {shown} is a file that is not a dfr state (no lineage in its first 4 KiB):"
            " name a new file, or an existing state"
        )


def _may_be_state(path: str) -> bool:
    """An empty file, or one that begins as dfr's state documents do (a damaged state
    too: the backend then says what is wrong with it, naming its backup)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return True  # the backend reports it
    return not head.strip() or (b'"lineage"' in head or b'"format_version"' in head)
