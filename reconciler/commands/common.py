"""Wiring shared by the commands: manifests, state backend, API client, durations."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reconciler import diagnostics as diag
from reconciler.errors import UsageError, ValidationFailed

if TYPE_CHECKING:
    from reconciler.api import DataframerClient, PacingConfig
    from reconciler.manifests import Manifest
    from reconciler.plan import Scope
    from reconciler.policy import Policy
    from reconciler.project import Project
    from reconciler.state.backend import Backend

DEFAULT_STATE = "dfr.state.json"
DEFAULT_API_URL = "https://df-api.dataframer.ai"


def load_manifests(paths: Sequence[str], err: TextIO) -> list[Manifest]:
    """Valid manifests, or ValidationFailed after every problem was reported on `err`.

    No PATHS: the project file's `manifests`, else the current directory. The
    project's policy is checked on every manifest (`reconciler.policy`).
    """
    return load_scoped(paths, err)[0]


def load_scoped(
    paths: Sequence[str], err: TextIO, *, whole: bool | None = None, policy: Policy | None = None
) -> tuple[list[Manifest], Scope]:
    """`load_manifests`, and the plan's scope: which files were read, relative to the
    project root, which of them held skipped documents, and each manifest's file.

    `whole`: the project's own manifests are read (default: when no PATH is named).
    `policy`: the policy to check them against (default: dfr.yaml's; `plan` passes
    the one in force for its state).
    """
    from reconciler import vcache
    from reconciler.policy import manifest_checks
    from reconciler.project import current
    from reconciler.validate import jobs_from_cli, validate_paths

    project = current()
    where = project.manifest_paths(paths)
    result = validate_paths(
        where,
        checks=project.checks() if policy is None else manifest_checks(policy),
        cache=vcache.from_cli(),
        jobs=jobs_from_cli(),
        extra_models=project.extra_models,
    )
    diag.write_text(result.diagnostics, err)
    if not result.ok:
        raise ValidationFailed(
            f"{result.errors} error{'s' if result.errors != 1 else ''} in the manifests; "
            "nothing was planned or submitted"
        )
    if not result.manifests:
        # Most often the wrong folder: say so rather than report "no changes".
        err.write(f"warning: no manifests found under {', '.join(where)}\n")
    root = project.root()
    skipped = {
        project_relative(d.file, root)
        for d in result.diagnostics
        if d.code == "not-a-manifest" and d.file
    }
    from reconciler.plan import Scope

    scope = Scope(
        roots=tuple(project_relative(p, root) for p in where),
        whole=not paths if whole is None else whole,
        skipped=frozenset(skipped),
        sources={m.name: project_relative(m.file, root) for m in result.manifests},
    )
    return result.manifests, scope


def project_relative(path: str, root: Path) -> str:
    """`path` (relative to the current folder) relative to the project root, '/'-separated;
    "" for the root itself; an absolute path when it lies outside the project."""
    # The folder is resolved like the root (symbolic links), the file name is kept:
    # a symlinked manifest is recorded where the user keeps it.
    absolute = Path(os.path.abspath(path))
    absolute = (
        Path(os.path.realpath(absolute.parent)) / absolute.name if absolute.name else absolute
    )
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        return absolute.as_posix()
    text = relative.as_posix()
    return "" if text == "." else text


def open_backend(state: str | None) -> Backend:
    """The state backend of this command.

    `--backend` (a postgresql:// URL, or a state file), else `--state`; then the
    same from the environment (DFR_BACKEND, DFR_STATE), then from dfr.yaml
    (`backend`, `state`), then dfr.state.json. A flag beats a variable beats the
    file; naming a backend and a state file at the same level is refused, since
    picking one in silence could send a run's id to the wrong state. So is a
    variable (DFR_BACKEND, DFR_STATE, DFR_WORKSPACE) that selects another state
    than dfr.yaml declares (`_check_declared`): only a flag overrides the file.
    """
    import click

    from reconciler.project import current

    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    project = current()
    backend = meta.get("dfr.backend")
    state_source = ctx.get_parameter_source("state") if ctx is not None and state else None
    candidates: list[tuple[int, str, str]] = []  # (level, option, value)
    if backend is not None:
        candidates.append((_level(backend[1]), "backend", backend[0]))
    if state:
        candidates.append((_level(state_source), "state", state))
    if project.backend:
        candidates.append((2, "backend", project.backend))
    if project.state:
        candidates.append((2, "state", project.state))
    workspace = meta.get("dfr.workspace")
    name = workspace[0] if workspace is not None else project.workspace
    target = DEFAULT_STATE
    chosen: list[tuple[int, str, str]] = []
    if candidates:
        level = min(c[0] for c in candidates)
        chosen = [c for c in candidates if c[0] == level]
        if len({c[1] for c in chosen}) > 1:
            where = ("--state and --backend", "DFR_STATE and DFR_BACKEND", "state and backend")[
                level
            ]
            place = " in " + (project.file or "dfr.yaml") if level == 2 else ""
            raise UsageError(
                f"{where} are both set{place}: give one (a postgresql:// URL or a state file)"
            )
        target = chosen[0][2]
    # A workspace from the environment or dfr.yaml only concerns a database;
    # `--workspace` with a state file is refused (it would be ignored).
    if not _is_url(target) and not (workspace is not None and _level(workspace[1]) == 0):
        name = None
    from_env = bool(chosen) and chosen[0][0] == 1
    variable_workspace = (
        workspace[0] if workspace is not None and _level(workspace[1]) == 1 else None
    )
    if (from_env or variable_workspace) and not (chosen and chosen[0][0] == 0):
        _check_declared(
            project, chosen[0][1] if from_env else None, target, name, variable_workspace
        )
    return backend_for(target, name)


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


def _level(source: object) -> int:
    """0 command line (or a caller's explicit value), 1 environment."""
    import click

    return 1 if source == click.core.ParameterSource.ENVIRONMENT else 0


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


def make_client(api_url: str | None, *, allow_insecure_http: bool = False) -> DataframerClient:
    """The API client; the key comes from `--api-key-file` if given, else the environment."""
    from reconciler.api import client_from_env
    from reconciler.project import current

    # --api-url or DATAFRAMER_BASE_URL, then the project file, then the default.
    api_url = api_url or os.environ.get("DATAFRAMER_BASE_URL") or current().api_url
    return client_from_env(
        api_url,
        allow_insecure_http=allow_insecure_http,
        api_key=_key_from_file(),
        pacing=_pacing(),
    )


def _pacing() -> PacingConfig:
    """Client pacing: `--max-rps N` (or DFR_MAX_RPS, or max_rps in dfr.yaml) spaces
    requests evenly at N per second; without it the client learns the API's rate
    from its first 429."""
    import click

    from reconciler.api import PacingConfig
    from reconciler.project import current

    ctx = click.get_current_context(silent=True)
    rate = ctx.meta.get("dfr.max_rps") if ctx is not None else None
    if rate is None:
        rate = current().max_rps
    if rate is None:
        return PacingConfig(learn=True)
    return PacingConfig(max_requests_per_second=float(rate), burst=1.0)


def _key_from_file() -> str | None:
    """The key in the file named by `--api-key-file`, or None when the flag was not given."""
    import click

    ctx = click.get_current_context(silent=True)
    path = ctx.meta.get("dfr.api_key_file") if ctx is not None else None
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(64 * 1024)
    except OSError as exc:
        raise UsageError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
    try:
        key = data.decode("ascii").strip()
    except UnicodeDecodeError:
        key = ""
    # Never echo the contents: say what is wrong, not what it holds.
    if not key or not key.isprintable() or any(c.isspace() for c in key):
        raise UsageError(
            f"the API key file {path} must hold the key alone on one line (ASCII, no spaces)"
        )
    return key


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def same_api(a: str, b: str) -> bool:
    """Do two API base URLs name the same service (case of scheme and host, a trailing
    slash and a default port aside)?"""
    import httpx

    def key(url: str) -> tuple[str, str, int | None, str]:
        parsed = httpx.URL(url.strip())
        default = {"https": 443, "http": 80}.get(parsed.scheme)
        port = None if parsed.port == default else parsed.port
        return parsed.scheme.lower(), (parsed.host or "").lower(), port, parsed.path.rstrip("/")

    try:
        return key(a) == key(b)
    except (httpx.InvalidURL, ValueError):
        return a.rstrip("/") == b.rstrip("/")


def check_api(state: Any, client: Any, *, switch: bool, store: Any = None) -> None:
    """Refuse to act on a state whose runs belong to another API URL, unless `switch`.

    A run id means nothing to another API: refreshing against a staging URL would
    mark every run gone, and the next apply would pay for them again. With
    `switch` (`--switch-api`), the new API must know the state's runs (one list,
    and a GET of up to three runs the list lacks) before they are recorded as its
    own (when a `store` is given: refresh and apply; plan --refresh only reads).
    """
    from reconciler.errors import NotFoundError, WrongAPIError

    api = client.base_url
    records = [r for r in state.runs.values() if r.api and (r.run_id or r.intent)]
    others = sorted({r.api for r in records if not same_api(r.api, api)})
    if not others:
        return
    if not switch:
        raise WrongAPIError(
            f"this state's runs belong to {others[0]}"
            + (f" (and {len(others) - 1} other API)" if len(others) > 1 else "")
            + f", not {api}: a run id means nothing to another API, and dfr would take "
            "them for gone. Check --api-url / DATAFRAMER_BASE_URL; if the service really "
            "moved, run the command again with --switch-api"
        )
    moving = [r for r in records if not same_api(r.api, api)]
    ids = [r.run_id for r in moving if r.run_id]
    if ids:
        listed = {run.id.lower() for run in client.list_runs()}
        known = any(i.lower() in listed for i in ids)
        for run_id in ids[:3]:
            if known:
                break
            try:
                client.get_run(run_id)
                known = True
            except NotFoundError:
                pass
        if not known:
            raise WrongAPIError(
                f"--switch-api: the API at {api} knows none of this state's runs (they belong "
                f"to {others[0]}); not switching. Check the URL and the key"
            )
    if store is not None:
        store.put_many([r.evolve(api=api) for r in moving])
