"""GitHub Actions workflow commands: annotations on the pull request's diff.

GitHub shows at most 10 error and 10 warning annotations per step (the rest
are dropped silently). So every finding is also written as a plain
`FILE:LINE:COL: severity: MESSAGE` line on the log stream, the first 10 of
each severity become `::error`/`::warning` commands on the command stream, and
a last line says how many were not annotated.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO

from reconciler.diagnostics import Diagnostic
from reconciler.plan import Action, Plan
from reconciler.textsafe import github_data, github_property, line_start, one_line

#: Annotations GitHub shows per step and severity.
ANNOTATION_LIMIT = 10


def running_in_github_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS", "").lower() == "true"


@dataclass(frozen=True, slots=True)
class Annotation:
    severity: str  # "error" or "warning"
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    title: str | None = None

    @classmethod
    def of(cls, d: Diagnostic) -> Annotation:
        return cls(d.severity, d.message, d.file, d.line, d.column)

    def plain(self) -> str:
        place = ""
        if self.file:
            place = f"{line_start(self.file)}:{self.line or 1}:{self.column or 1}: "
        return f"{place}{self.severity}: {one_line(self.message)}"

    def command(self) -> str:
        given = {"file": self.file, "line": self.line, "col": self.column} if self.file else {}
        props = ",".join(
            f"{k}={github_property(v)}" for k, v in {**given, "title": self.title}.items() if v
        )
        return f"::{self.severity}{' ' + props if props else ''}::{github_data(self.message)}"


def _place(where: str | None) -> tuple[str | None, int | None, int | None]:
    """'FILE:LINE:COL' -> its parts (FILE may itself hold colons)."""
    if not where:
        return None, None, None
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return where, None, None


def plan_annotations(plan: Plan) -> list[Annotation]:
    """Warnings a reviewer should see on the diff: failed runs, replacements, orphans."""
    out: list[Annotation] = []
    for change in plan.changes:
        file, line, col = _place(change.where)
        prior = change.prior
        if change.failed and prior is not None:
            out.append(
                Annotation(
                    "warning",
                    f"run {prior.run_id} of {change.name} ended {prior.status}{prior.end_note}; "
                    f"it is not resubmitted unless asked: dfr apply --replace {change.name}",
                    file,
                    line,
                    col,
                    title=f"dfr: {change.name} {str(prior.status).lower()}",
                )
            )
        elif change.action is Action.REPLACE and change.cancel_prior and prior is not None:
            out.append(
                Annotation(
                    "warning",
                    f"{change.name} will be replaced: its unfinished run {prior.run_id} "
                    f"({prior.status}) will be canceled and a new one submitted",
                    file,
                    line,
                    col,
                    title=f"dfr: {change.name} replaced",
                )
            )
        elif change.action is Action.ORPHAN and prior is not None:
            what = (
                "will be canceled if unfinished and removed from state (--prune)"
                if change.prune
                else "has no manifest any more; it is only reported (dfr apply --prune acts on it)"
            )
            out.append(
                Annotation(
                    "warning",
                    f"run {prior.run_id} of {change.name} {what}",
                    title=f"dfr: {change.name} orphaned",
                )
            )
    return out + _spec_annotations(plan)


def _spec_annotations(plan: Plan) -> list[Annotation]:
    """A spec that ended FAILED (its runs are blocked) or was edited outside dfr."""
    out = []
    for spec in plan.specs:
        file, line, col = _place(spec.where)
        if spec.failed:
            message = (
                f"spec {spec.name} ended FAILED: {spec.error}; the runs that use it are blocked"
            )
            title = f"dfr: spec {spec.name} failed"
        elif spec.drift:
            message = f"spec {spec.name} has a version made outside dfr (the web app?); " + (
                "apply puts the manifest's content back" if spec.acts else "it is kept"
            )
            title = f"dfr: spec {spec.name} edited outside dfr"
        else:
            continue
        out.append(Annotation("warning", message, file, line, col, title=title))
    return out


def write_annotations(
    annotations: Iterable[Annotation], commands: TextIO, log: TextIO | None = None
) -> int:
    """Commands for the first ANNOTATION_LIMIT of each severity; returns how many were left."""
    shown = {"error": 0, "warning": 0}
    left = {"error": 0, "warning": 0}
    for a in annotations:
        if log is not None:
            log.write(a.plain() + "\n")
        if shown.get(a.severity, 0) < ANNOTATION_LIMIT:
            shown[a.severity] = shown.get(a.severity, 0) + 1
            commands.write(a.command() + "\n")
        else:
            left[a.severity] = left.get(a.severity, 0) + 1
    unshown = [f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in left.items() if n]
    if unshown:
        where = "every one is listed as a plain line" if log is not None else "see dfr's output"
        (log or commands).write(
            f"{' and '.join(unshown)} not annotated: GitHub shows at most {ANNOTATION_LIMIT} "
            f"errors and {ANNOTATION_LIMIT} warnings per step; {where}.\n"
        )
    return sum(left.values())


def write_diagnostics(
    diagnostics: Sequence[Diagnostic], commands: TextIO, log: TextIO | None = None
) -> int:
    return write_annotations((Annotation.of(d) for d in diagnostics), commands, log)
