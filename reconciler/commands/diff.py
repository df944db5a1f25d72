"""`dfr diff NAME [PATH...]`: what differs between a manifest and its recorded run.

Offline: the manifest NAME found under PATHS (its body as written, as apply
would send it) against the run recorded in state for NAME (sent and used).
The field diff is the plan's (`reconciler.plan.changed_fields`), rendered as
`dfr plan` renders a change. Labels are compared too: they are updated in state
without a new run. Exit 0, or with --detailed-exitcode 2 when something
differs; 1 when NAME is neither in the manifests nor in state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.engine.backends import open_backend
from reconciler.engine.loading import load_manifests
from reconciler.errors import EXIT_CHANGES, EXIT_OK, UsageError
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@dataclass(frozen=True, slots=True)
class DiffArgs:
    name: str
    paths: tuple[str, ...] = ()
    detailed_exitcode: bool = False


def run_diff(inv: Invocation, args: DiffArgs, out: TextIO, err: TextIO) -> int:
    from reconciler.plan import Action, make_plan
    from reconciler.render import render_change

    name, paths, detailed_exitcode = args.name, args.paths, args.detailed_exitcode
    manifests = load_manifests(inv, paths, err)
    state = open_backend(inv).read()
    manifest = next((m for m in manifests if m.name == name), None)
    record = state.runs.get(name)
    if manifest is None and record is None:
        raise UsageError(
            f"{name!r} names no manifest under {', '.join(paths or ('.',))} and no run in state"
        )
    if manifest is None:
        assert record is not None
        out.write(
            f"{one_line(name)} is in state (run {one_line(record.run_id or '-')}, "
            f"{one_line(record.status or 'no status')}) "
            "but no manifest names it: `dfr plan` shows it as orphaned.\n"
        )
        return EXIT_CHANGES if detailed_exitcode else EXIT_OK
    change = next(c for c in make_plan([manifest], state).changes if c.name == name)
    differs = change.action is not Action.NOOP
    run = "no run recorded"
    if record is not None and record.run_id:
        run = f"run {record.run_id} ({record.status or 'status unknown'})"
    out.write(f"{one_line(name)}: manifest {one_line(manifest.where)}, {one_line(run)}\n\n")
    if change.action is Action.NOOP:
        out.write("  The manifest's spec matches the recorded run's.\n")
        for reason in change.reasons:
            out.write(f"  {reason}\n")
    else:
        out.write("\n".join(render_change(change)) + "\n")
    if record is not None and record.labels != manifest.labels:
        differs = True
        out.write(
            f"\n  labels: {json.dumps(record.labels, sort_keys=True)} -> "
            f"{json.dumps(manifest.labels, sort_keys=True)} "
            "(updated in state by the next apply; no new run)\n"
        )
    return EXIT_CHANGES if differs and detailed_exitcode else EXIT_OK
