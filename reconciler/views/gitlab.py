"""GitLab: the Code Quality report (validation findings) and the MR widget summary.

Code Quality: a JSON array of issues (`description`, `check_name`,
`fingerprint`, `severity`, `location.path`, `location.lines.begin`), read from
`artifacts: reports: codequality:`. GitLab compares fingerprints between the
target branch and the merge request to tell new findings from fixed ones, so a
fingerprint must not change when unrelated lines move: it is a SHA-256 of the
file, the check name, the place in the document (`spec.number_of_samples`) and
the message with every number masked (so neither line numbers nor values
count). Two findings that still share a key get an ordinal so none is hidden.

MR widget: `{"create": N, "update": N, "delete": N}`, the format of
`artifacts: reports: terraform:`. dfr's actions map onto it as:
- create: `create` (a manifest with no run yet: a new run is submitted);
- update: `replace` (a manifest whose spec changed: a new run is submitted in
  place of the recorded one, which is canceled if unfinished);
- delete: orphans that this plan prunes (`--prune`: canceled if unfinished and
  removed from state; generated data is never deleted). Orphans only reported
  and failed runs left alone are not counted: nothing happens to them.
So `create + update` is the number of runs that will be submitted (and paid for).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from typing import Any, TextIO

from reconciler.diagnostics import Diagnostic
from reconciler.plan import Action, Plan

SEVERITY = {"error": "major", "warning": "minor"}
_DIGITS = re.compile(r"\d+")


def _doc_path(d: Diagnostic) -> str:
    return ".".join(str(p) for p in d.path)


def fingerprint(file: str, check: str, place: str) -> str:
    # surrogatepass: a file name with undecodable bytes (os.fsdecode's surrogates) still hashes.
    data = "\0".join((file, check, place)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _repo_path(file: str) -> str:
    """GitLab wants paths relative to the repository: make absolute ones under cwd relative."""
    if os.path.isabs(file):
        relative = os.path.relpath(file)
        if not relative.startswith(".."):
            return relative
    return file


def code_quality(diagnostics: Sequence[Diagnostic]) -> list[dict[str, Any]]:
    """The Code Quality report for these diagnostics (run dfr from the repository root)."""
    seen: dict[str, int] = {}
    issues: list[dict[str, Any]] = []
    for d in diagnostics:
        file = _repo_path(d.file)
        # The message with its numbers masked tells apart findings at one place
        # ("missing 'name'" vs "missing 'kind'") without depending on lines or values.
        place = f"{_doc_path(d)}|{_DIGITS.sub('#', d.message)}"
        key = fingerprint(file, d.code, place)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = fingerprint(file, d.code, f"{place}|{seen[key]}")
        issues.append(
            {
                "type": "issue",
                "check_name": f"dfr/{d.code}",
                "description": d.message,
                "categories": ["Bug Risk"] if d.is_error else ["Style"],
                "fingerprint": key,
                "severity": SEVERITY.get(d.severity, "info"),
                "location": {"path": file, "lines": {"begin": d.line}},
            }
        )
    return issues


def mr_summary(plan: Plan) -> dict[str, int]:
    """What GitLab's merge-request widget reads from a `terraform` report."""
    specs = [s.action.value for s in plan.specs]  # spec-create / spec-update count too
    return {
        "create": len(plan.by_action(Action.CREATE)) + specs.count("spec-create"),
        "update": len(plan.by_action(Action.REPLACE)) + specs.count("spec-update"),
        "delete": sum(1 for c in plan.by_action(Action.ORPHAN) if c.prune),
    }


def write_code_quality(diagnostics: Sequence[Diagnostic], out: TextIO, log: TextIO) -> None:
    """The report as JSON on `out`; the findings as FILE:LINE:COL lines on `log`."""
    from reconciler.diagnostics import write_text

    write_text(diagnostics, log)
    json.dump(code_quality(diagnostics), out, indent=2)
    out.write("\n")
