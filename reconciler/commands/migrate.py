"""`dfr state migrate --to DEST`: move the state to another backend (file <-> database)."""

from __future__ import annotations

from typing import TextIO

from reconciler.commands.common import backend_for, open_backend
from reconciler.errors import EXIT_OK


def run_migrate(
    state_path: str | None,
    destination: str,
    to_workspace: str | None,
    force: bool,
    lock_timeout: float,
    out: TextIO,
    err: TextIO,
) -> int:
    from reconciler.state.migrate import migrate

    source = open_backend(state_path)
    from reconciler.state.postgres import is_postgres_url

    # Default: the same workspace name on the other side (for database to database).
    workspace = to_workspace
    if workspace is None and is_postgres_url(destination):
        workspace = getattr(source, "workspace", None)
    target = backend_for(destination, workspace)
    result = migrate(source, target, force=force, timeout=lock_timeout)
    src, dst = source.describe(), target.describe()
    runs = f"{result.runs} run{'s' if result.runs != 1 else ''}"
    if not result.copied:
        out.write(
            f"{dst} already holds this state ({runs}, serial {result.serial}); nothing to do.\n"
        )
        return EXIT_OK
    for name in result.replaced:
        err.write(
            f"warning: {dst} recorded another run for {name}; it is forgotten, not canceled\n"
        )
    out.write(
        f"Migrated {runs} (serial {result.serial}, lineage {result.lineage}) from {src} to {dst}, "
        "and read them back.\n"
        f"{src} is unchanged. Point dfr at {dst} now (--backend, DFR_BACKEND or dfr.yaml) and "
        "retire the old state, so that nobody applies against both.\n"
    )
    return EXIT_OK
