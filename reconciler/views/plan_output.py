"""`dfr plan --format markdown|github` and `--summary-file`: the plan for CI and review."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError, ValidationFailed
from reconciler.plan import Plan

if TYPE_CHECKING:
    from reconciler.validate import ValidationResult


def report_annotated(result: ValidationResult, out: TextIO, err: TextIO) -> list[Diagnostic]:
    """The manifests' findings for `plan --format github`, with GitHub annotations.

    Errors: every finding as a plain line on `err`, the first ones as annotations
    on `out`, then ValidationFailed. Otherwise the warnings (written on `err`),
    which the caller annotates together with the plan's own (one limit per step).
    """
    from reconciler import diagnostics as diag
    from reconciler.views.github import write_diagnostics

    if not result.ok:
        write_diagnostics(result.diagnostics, out, err)
        raise ValidationFailed(
            f"{result.errors} error{'s' if result.errors != 1 else ''} in the manifests; "
            "nothing was planned or submitted"
        )
    diag.write_text(result.diagnostics, err)
    return list(result.diagnostics)


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
