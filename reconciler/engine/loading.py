"""Reading the manifests of a command: checked against the project's policy, with the
plan's scope (which files were read, relative to the project root)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from reconciler import diagnostics as diag
from reconciler.errors import ValidationFailed

if TYPE_CHECKING:
    from reconciler.engine.pipeline import Loaded
    from reconciler.manifests import Manifest
    from reconciler.plan import Scope
    from reconciler.policy import Policy


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


def load(
    paths: Sequence[str],
    out: TextIO,
    err: TextIO,
    *,
    policy: Policy | None = None,
    whole: bool | None = None,
    annotate: bool = False,
    replace: Sequence[str] = (),
) -> Loaded:
    """The load and check steps of plan and apply: the manifests under `paths` (else the
    project's), checked against `policy` (default: dfr.yaml's); `annotate`: findings as
    GitHub annotations too (`plan --format github`); `replace` must name manifests."""
    from reconciler.engine.pipeline import Loaded, check_replace_names

    if annotate:
        from reconciler.project import current
        from reconciler.views.plan_output import load_manifests_annotated

        where = current().manifest_paths(paths)
        manifests, warnings = load_manifests_annotated(where, out, err, policy=policy)
        loaded = Loaded(manifests, scope_of(manifests, where, named=bool(paths)), warnings)
    else:
        manifests, scope = load_scoped(paths, err, whole=whole, policy=policy)
        loaded = Loaded(manifests, scope)
    check_replace_names(replace, loaded.names)
    return loaded


def scope_of(manifests: Sequence[Manifest], paths: Sequence[str], *, named: bool) -> Scope:
    """The plan's scope for manifests loaded another way (the annotated loader)."""
    from reconciler.plan import Scope
    from reconciler.project import current

    root = current().root()
    return Scope(
        roots=tuple(project_relative(p, root) for p in paths),
        whole=not named,
        sources={m.name: project_relative(m.file, root) for m in manifests},
    )
