"""`dfr plan --format markdown|github` and `--summary-file`: the plan for CI and review."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TextIO

from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError, ValidationFailed
from reconciler.manifests import Manifest
from reconciler.plan import Plan
from reconciler.policy import Policy


def load_manifests_annotated(
    paths: Sequence[str], out: TextIO, err: TextIO, *, policy: Policy | None = None
) -> tuple[list[Manifest], list[Diagnostic]]:
    """Like `engine.loading.load_manifests`, with GitHub annotations for the findings.

    Errors: every finding as a plain line on `err`, the first ones as annotations
    on `out`, then ValidationFailed. Otherwise the manifests and the warnings,
    which the caller annotates together with the plan's own (one limit per step).
    `policy`: the one to check against (default: dfr.yaml's).
    """
    from reconciler import diagnostics as diag
    from reconciler import vcache
    from reconciler.policy import manifest_checks
    from reconciler.project import current
    from reconciler.validate import jobs_from_cli, validate_paths
    from reconciler.views.github import write_diagnostics

    project = current()
    result = validate_paths(
        paths or (".",),
        checks=project.checks() if policy is None else manifest_checks(policy),
        cache=vcache.from_cli(),
        jobs=jobs_from_cli(),
        extra_models=project.extra_models,
    )
    if not result.ok:
        write_diagnostics(result.diagnostics, out, err)
        raise ValidationFailed(
            f"{result.errors} error{'s' if result.errors != 1 else ''} in the manifests; "
            "nothing was planned or submitted"
        )
    diag.write_text(result.diagnostics, err)
    return result.manifests, list(result.diagnostics)


def write_plan(plan: Plan, fmt: str, out: TextIO, *, warnings: Sequence[Diagnostic] = ()) -> None:
    """The plan in `fmt` (markdown or github) on `out`."""
    if fmt == "markdown":
        from reconciler.views.markdown import render_plan_markdown

        out.write(render_plan_markdown(plan))
    elif fmt == "github":
        from reconciler.render import render_plan
        from reconciler.views.github import Annotation, plan_annotations, write_annotations

        out.write(render_plan(plan))
        annotations = [Annotation.of(d) for d in warnings] + plan_annotations(plan)
        write_annotations(annotations, out)
    else:  # pragma: no cover - the CLI's choices prevent it
        raise UsageError(f"unknown plan format {fmt!r}")


def write_summary_file(plan: Plan, path: str) -> None:
    """GitLab's merge-request widget summary (`artifacts: reports: terraform:`)."""
    from reconciler.views.gitlab import mr_summary

    directory = os.path.dirname(path)
    try:
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(mr_summary(plan), handle)
            handle.write("\n")
    except OSError as exc:
        raise UsageError(f"cannot write --summary-file {path}: {exc.strerror or exc}") from exc
