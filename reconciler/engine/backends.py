"""The state backend of a command: `--backend`/`--state`, their variables, dfr.yaml."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import UsageError
from reconciler.invocation import ENV, FILE, FLAG

if TYPE_CHECKING:
    from reconciler.invocation import Invocation
    from reconciler.project import Project
    from reconciler.state.backend import Backend

DEFAULT_STATE = "dfr.state.json"


def open_backend(inv: Invocation) -> Backend:
    """The state backend of this command.

    `--backend` (a postgresql:// URL, or a state file), else `--state`; then the
    same from the environment (DFR_BACKEND, DFR_STATE), then from dfr.yaml
    (`backend`, `state`), then dfr.state.json. A flag beats a variable beats the
    file; naming a backend and a state file at the same level is refused, since
    picking one in silence could send a run's id to the wrong state. So is a
    variable (DFR_BACKEND, DFR_STATE, DFR_WORKSPACE) that selects another state
    than dfr.yaml declares (`_check_declared`): only a flag overrides the file.
    """
    project, workspace = inv.project, inv.workspace
    candidates: list[tuple[int, str, str]] = []  # (level, option, value)
    if inv.backend is not None:
        candidates.append((inv.backend.level, "backend", inv.backend.value))
    if inv.state is not None:
        candidates.append((inv.state.level, "state", inv.state.value))
    if project.backend:
        candidates.append((FILE, "backend", project.backend))
    if project.state:
        candidates.append((FILE, "state", project.state))
    name = workspace.value if workspace is not None else project.workspace
    target = DEFAULT_STATE
    chosen: list[tuple[int, str, str]] = []
    if candidates:
        level = min(c[0] for c in candidates)
        chosen = [c for c in candidates if c[0] == level]
        if len({c[1] for c in chosen}) > 1:
            where = ("--state and --backend", "DFR_STATE and DFR_BACKEND", "state and backend")[
                level
            ]
            place = " in " + (project.file or "dfr.yaml") if level == FILE else ""
            raise UsageError(
                f"{where} are both set{place}: give one (a postgresql:// URL or a state file)"
            )
        target = chosen[0][2]
    else:
        _check_default_here()
    # A workspace from the environment or dfr.yaml only concerns a database;
    # `--workspace` with a state file is refused (it would be ignored).
    if not _is_url(target) and not (workspace is not None and workspace.level == FLAG):
        name = None
    from_env = bool(chosen) and chosen[0][0] == ENV
    variable_workspace = (
        workspace.value if workspace is not None and workspace.level == ENV else None
    )
    if (from_env or variable_workspace) and not (chosen and chosen[0][0] == FLAG):
        _check_declared(
            project, chosen[0][1] if from_env else None, target, name, variable_workspace
        )
    return backend_for(target, name)


def _check_default_here() -> None:
    """Refuse the default state of a subfolder when the repository's is further up.

    Without dfr.yaml, `--state` or DFR_STATE, the state is dfr.state.json in the
    current folder; run from a subfolder of the repository, that is an empty state
    beside the real one, and an apply there would pay for every run again.
    """
    from reconciler.project import git_root

    here = Path.cwd()
    if (here / DEFAULT_STATE).exists():
        return
    root = git_root(here)
    if root is None or root == here:
        return
    for folder in here.parents:
        found = folder / DEFAULT_STATE
        if found.exists():
            raise UsageError(
                f"no {DEFAULT_STATE} here, but {found} is this repository's state: run dfr"
                f" from {folder}, pass --state {found}, or name it in a dfr.yaml"
                " (nothing was read or sent)"
            )
        if folder == root:
            return


def _check_declared(
    project: Project,
    option: str | None,
    target: str,
    workspace: str | None,
    variable_workspace: str | None,
) -> None:
    """Refuse a state chosen through the environment that is not the one dfr.yaml declares.

    `option` is "backend" or "state" when DFR_BACKEND/DFR_STATE chose `target`, None
    when dfr.yaml did (and DFR_WORKSPACE may have changed the workspace). People read
    dfr.yaml, CI sets variables: two states would each submit the other's runs again.
    """
    declared = project.backend or project.state
    if not declared:
        return  # dfr.yaml says nothing about the state: the environment decides
    from reconciler.state.postgres import DEFAULT_WORKSPACE

    if _state_identity(target, workspace) == _state_identity(
        declared, project.workspace or DEFAULT_WORKSPACE
    ):
        return
    setting = "backend" if project.backend else "state"
    theirs = f"{setting}: {_shown_target(declared)}"
    if _is_url(declared):
        theirs += f" (workspace {project.workspace or DEFAULT_WORKSPACE})"
    if option is not None:
        variable = "DFR_BACKEND" if option == "backend" else "DFR_STATE"
        ours = f"{variable}={_shown_target(target)}"
        if _is_url(target):
            ours += f" (workspace {workspace or DEFAULT_WORKSPACE})"
    else:
        ours = f"DFR_WORKSPACE={variable_workspace}"
    raise UsageError(
        f"{ours} selects another state than {project.file or 'dfr.yaml'} declares "
        f"({theirs}): people and CI would each keep a state and submit each other's runs "
        "again. Make both name the same state, or override dfr.yaml explicitly on the "
        "command line (--backend, --state, --workspace)"
    )


def _state_identity(target: str, workspace: str | None) -> tuple[str, str | None]:
    """What makes two backends the same state: the database (its URL without the
    password) and workspace, or the state file's real path."""
    if _is_url(target):
        from reconciler.state.postgres import PostgresBackend

        location, name = PostgresBackend(target, workspace or "default").address()
        rest = location.partition("://")[2]
        return f"postgresql://{rest}", name
    path = target[len("file://") :] if target.lower().startswith("file://") else target
    return os.path.realpath(path), None


def _shown_target(target: str) -> str:
    """A backend value fit for a message: a URL's password is hidden."""
    if _is_url(target):
        from reconciler.state.postgres import redact

        return redact(target)
    return target


def _is_url(value: str) -> bool:
    from reconciler.state.postgres import is_postgres_url

    return is_postgres_url(value)


def backend_for(target: str, workspace: str | None = None) -> Backend:
    """The backend a `--backend`/`--to` value names: a postgresql:// URL or a state file."""
    from reconciler.state.postgres import DEFAULT_WORKSPACE, PostgresBackend, is_postgres_url

    if is_postgres_url(target):
        return PostgresBackend(target, workspace or DEFAULT_WORKSPACE)
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", target) and not target.lower().startswith(
        "file://"
    ):
        raise UsageError(
            f"unsupported state backend {target.split('://', 1)[0]}://: use a postgresql:// "
            "URL or a state file path"
        )
    if workspace not in (None, DEFAULT_WORKSPACE):
        raise UsageError(
            f"workspace {workspace!r}: workspaces belong to the postgres backend; with a state "
            "file, use one file per workspace (--state)"
        )
    from reconciler.state.local import LocalBackend

    path = target[len("file://") :] if target.lower().startswith("file://") else target
    return LocalBackend(path)
