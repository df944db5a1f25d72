"""Reading the manifests of a command: checked against the project's policy, with the
plan's scope (which files were read, relative to the project root)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from reconciler import diagnostics as diag
from reconciler.errors import ValidationFailed

if TYPE_CHECKING:
    from reconciler.engine.pipeline import Loaded
    from reconciler.invocation import Invocation
    from reconciler.manifests import Manifest, SpecManifest
    from reconciler.plan import Scope
    from reconciler.policy import DocumentCheck, Policy
    from reconciler.project import Project
    from reconciler.validate import ValidationResult


def load_manifests(inv: Invocation, paths: Sequence[str], err: TextIO) -> list[Manifest]:
    """Valid manifests, or ValidationFailed after every problem was reported on `err`.

    No PATHS: the project file's `manifests`, else the current directory. The
    project's policy is checked on every manifest (`reconciler.policy`).
    """
    return load_scoped(inv, paths, err)[0]


def validate_for(
    inv: Invocation, paths: Sequence[str], checks: Sequence[DocumentCheck], **options: Any
) -> ValidationResult:
    """`validate_paths` with this command's cache, jobs and dfr.yaml's extra models."""
    from reconciler import vcache
    from reconciler.engine.specnames import recorded_spec_names
    from reconciler.validate import validate_paths

    options.setdefault("known_specs", recorded_spec_names(inv))  # for spec_ref names
    options.setdefault("root", inv.project.root())  # where outputs.path folders resolve
    return validate_paths(
        paths,
        checks=checks,
        cache=vcache.open_cache(disabled=inv.no_cache),
        jobs=inv.jobs,
        extra_models=inv.project.extra_models,
        **options,
    )


def load_scoped(
    inv: Invocation,
    paths: Sequence[str],
    err: TextIO,
    *,
    whole: bool | None = None,
    policy: Policy | None = None,
    found: list[SpecManifest] | None = None,
) -> tuple[list[Manifest], Scope]:
    """`load_manifests`, and the plan's scope: which files were read, relative to the
    project root, which of them held skipped documents, and each manifest's file.

    `whole`: the project's own manifests are read (default: when no PATH is named).
    `policy`: the policy to check them against (default: dfr.yaml's; `plan` passes
    the one in force for its state). `found`, if given, receives the Spec manifests.
    """
    from reconciler.policy import manifest_checks

    project = inv.project
    where = project.manifest_paths(paths)
    result = validate_for(
        inv, where, project.checks() if policy is None else manifest_checks(policy)
    )
    diag.write_text(result.diagnostics, err)
    if not result.ok:
        raise ValidationFailed(
            f"{result.errors} error{'s' if result.errors != 1 else ''} in the manifests; "
            "nothing was planned or submitted"
        )
    if not result.manifests:
        # Most often the wrong folder: say so rather than report "no changes".
        from reconciler.textsafe import one_line

        err.write(f"warning: no manifests found under {one_line(', '.join(where))}\n")
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
        spec_sources={s.name: project_relative(s.file, root) for s in result.specs},
    )
    if found is not None:
        found.extend(result.specs)
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
    inv: Invocation,
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
        from reconciler.policy import manifest_checks
        from reconciler.views.plan_output import report_annotated

        where = inv.project.manifest_paths(paths)
        checks = inv.project.checks() if policy is None else manifest_checks(policy)
        result = validate_for(inv, where, checks)
        warnings = report_annotated(result, out, err)
        scope = scope_of(inv.project, result.manifests, where, named=bool(paths))
        loaded = Loaded(result.manifests, scope, warnings, specs=result.specs)
    else:
        specs: list[SpecManifest] = []
        manifests, scope = load_scoped(inv, paths, err, whole=whole, policy=policy, found=specs)
        loaded = Loaded(manifests, scope, specs=specs)
    check_replace_names(replace, loaded.names)
    return loaded


def scope_of(
    project: Project, manifests: Sequence[Manifest], paths: Sequence[str], *, named: bool
) -> Scope:
    """The plan's scope for manifests loaded another way (the annotated loader)."""
    from reconciler.plan import Scope

    root = project.root()
    return Scope(
        roots=tuple(project_relative(p, root) for p in paths),
        whole=not named,
        sources={m.name: project_relative(m.file, root) for m in manifests},
    )
