"""Rendering plans for people (Terraform-like text) and for programs (JSON).

Pure string building: callers choose the stream.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import MISSING, Action, Change, Plan
from reconciler.specplan import KNOWN_AFTER_APPLY
from reconciler.textsafe import one_line
from reconciler.views import evaluate_plan, pull_plan, spec_plan


def _value(value: Any) -> str:
    if value is MISSING:
        return "(unset)"
    if value == KNOWN_AFTER_APPLY:
        return KNOWN_AFTER_APPLY  # a value of this plan's spec change (reconciler.specplan)
    return one_line(json.dumps(value))  # JSON escapes controls, not the runner's `##[`


def _fields(body: dict[str, Any], mark: str, indent: str) -> list[str]:
    width = max((len(k) for k in body), default=0)
    return [f"{indent}{mark} {k.ljust(width)} = {_value(v)}" for k, v in body.items()]


def _header(change: Change) -> str:
    name = one_line(change.name)  # a name from state or a status from the API: any text
    if change.action is Action.CREATE:
        return f"# {name} will be created"
    if change.action is Action.REPLACE:
        return f"# {name} must be replaced"
    if change.action is Action.ORPHAN:
        return f"# {name} is orphaned"
    return f"# {name} is {one_line(change.prior.status if change.prior else 'recorded')}"


def render_change(change: Change) -> list[str]:
    lines = [f"  {_header(change)}"]
    lines += [f"  #   {one_line(reason)}" for reason in change.reasons]
    if change.where:
        lines.append(f"  #   manifest: {one_line(change.where)}")
    prior = change.prior
    lines += spec_plan.run_graph_lines(change)
    if change.action is Action.CREATE and change.body is not None:
        lines.append(f'  + run "{one_line(change.name)}" {{')
        lines += _fields(spec_plan.run_body(change), "+", "      ")
        if change.resolve_intent and change.fields:
            lines.append("      # since the unconfirmed submission:")
            lines += _field_changes(change, "      ")
        lines.append("    }")
    elif change.action is Action.REPLACE and change.body is not None:
        old = prior.run_id if prior else None
        lines.append(f'-/+ run "{one_line(change.name)}" {{')
        if old:
            lines.append(f"      - run_id = {_value(old)} -> (known after apply)")
        changed = {f.field for f in change.fields}
        lines += _field_changes(change, "      ")
        unchanged = [k for k in change.body if k not in changed]
        if unchanged:
            lines.append(f"        # ({len(unchanged)} unchanged fields hidden)")
        lines.append("    }")
    elif change.action is Action.ORPHAN and prior is not None:
        mark = "-" if change.prune else "?"
        lines.append(f'  {mark} run "{one_line(change.name)}" {{')
        lines.append(f"      run_id = {_value(prior.run_id)}")
        lines.append(f"      status = {_value(prior.status)}")
        lines.append("    }")
    return lines


def _field_changes(change: Change, indent: str) -> list[str]:
    """`~ field = before -> after` lines (`+` added, `-` dropped), aligned on the body."""
    width = max((len(k) for k in change.body or {}), default=0)
    width = max([width, *(len(f.field) for f in change.fields)])
    lines = []
    for f in change.fields:
        mark = (
            "~"
            if f.before is not MISSING and f.after is not MISSING
            else ("+" if f.before is MISSING else "-")
        )
        lines.append(
            f"{indent}{mark} {f.field.ljust(width)} = {_value(f.before)} -> {_value(f.after)}"
        )
    return lines


def render_plan(plan: Plan, *, show_noop: bool = False) -> str:
    shown = [
        c
        for c in plan.changes
        if c.action is not Action.NOOP or c.failed or show_noop or c.affected_by or c.blocked_by
    ]
    specs = spec_plan.shown_specs(plan, show_noop=show_noop)
    out: list[str] = []
    if not plan.has_changes and not shown and not specs:
        total = len(plan.changes)
        n = len(plan.specs)
        runs = f"{total} run{'s' if total != 1 else ''}"
        also = f", {n} spec{'s' if n != 1 else ''}" if n else ""
        out.append(f"No changes. Manifests and state agree ({runs}{also}).")
        out += scope_lines(plan)
        return "\n".join(out) + "\n"
    if plan.has_changes:
        out.append("dfr will perform these actions:")
        out.append("")
    for spec in specs:
        out += [*spec_plan.render_spec_change(spec), ""]
    for change in shown:
        out += render_change(change)
        out.append("")
    for evaluation in evaluate_plan.shown(plan, show_noop=show_noop):
        out += [*evaluate_plan.render_change(evaluation), ""]
    out += pull_plan.render_all(plan)
    out += _totals(plan)
    order = spec_plan.order_lines(plan)
    if order:
        out += ["", *order]
    out += scope_lines(plan)
    return "\n".join(out) + "\n"


def _totals(plan: Plan) -> list[str]:
    """The plan's summary lines, the samples to request and the notes on what apply
    will not do (FAILED runs, orphans, unconfirmed submissions)."""
    counts = plan.counts()
    out = [summary_line(plan)]
    evaluations_line = evaluate_plan.summary_line(plan)
    if evaluations_line:
        out.append(evaluations_line)
    pulls_line = pull_plan.summary_line(plan)
    if pulls_line:
        out.append(pulls_line)
    specs_line = spec_plan.spec_summary(plan)
    if specs_line:
        out.append(specs_line)
    if plan.to_submit:
        more = plan.samples_at_most - plan.samples
        if more:
            found = len([c for c in plan.to_resolve if c.resolve_only])
            out.append(
                f"Samples to request: {plan.samples:,} (up to {more:,} more if the {found} "
                f"unconfirmed submission{'s are' if found != 1 else ' is'} not found)."
            )
        else:
            out.append(f"Samples to request: {plan.samples:,}.")
    if counts["failed"]:
        out.append(
            f"{counts['failed']} run{'s' if counts['failed'] != 1 else ''} ended FAILED or "
            "CANCELED and will not be resubmitted; use --replace NAME to resubmit."
        )
    if counts["orphan"] and not plan.options.prune:
        out.append(
            "Orphaned runs are only reported; `dfr apply --prune` cancels unfinished ones "
            "and removes them from state."
        )
    if counts["resolve"]:
        n = counts["resolve"]
        out.append(
            f"{n} submission{'s' if n != 1 else ''} of an earlier apply "
            f"{'are' if n != 1 else 'is'} unconfirmed: apply looks for those runs before "
            "submitting anything for them."
        )
    return out


def scope_lines(plan: Plan) -> list[str]:
    """What this plan leaves alone: runs outside the PATHs read, prunes refused."""
    out = []
    if plan.out_of_scope:
        n = len(plan.out_of_scope)
        out.append(
            f"{n} recorded run{'s' if n != 1 else ''} came from manifest files outside the "
            f"PATHs read and {'are' if n != 1 else 'is'} out of this plan's scope (never "
            f"pruned): {', '.join(plan.out_of_scope)}."
        )
    if plan.orphan_specs:
        out.append(
            "Kept, though no Spec manifest names them (dfr never deletes a spec): "
            + ", ".join(f"spec/{name}" for name in plan.orphan_specs)
            + " (`dfr state rm spec/NAME` forgets a spec's record)."
        )
    if plan.prune_refused:
        out.append(
            "Not pruned, though --prune was given: "
            + ", ".join(plan.prune_refused)
            + " (their manifest files still exist but were skipped: fix them, or "
            "`dfr state rm NAME` to forget a run on purpose)."
        )
    return out


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    line = f"Plan: {c['create']} to create, {c['replace']} to replace, {c['orphan']} orphaned"
    return line + (f", {c['resolve']} to resolve." if c["resolve"] else ".")


def plan_to_json(plan: Plan) -> dict[str, Any]:
    def change(c: Change) -> dict[str, Any]:
        prior = c.prior
        return {
            **c.json_of("name", "action", "manifest", "body", "labels"),
            "fields": [
                {
                    "field": f.field,
                    "before": None if f.before is MISSING else f.before,
                    "after": None if f.after is MISSING else f.after,
                }
                for f in c.fields
            ],
            **c.json_of("reasons", "failed", "cancel_prior", "prune", "resolve_intent"),
            "rename_of": c.rename_of,
            "prior": None if prior is None else {"run_id": prior.run_id, "status": prior.status},
            **spec_plan.change_graph_json(c),
        }

    return {
        "format_version": 1,
        "state": {"lineage": plan.lineage, "serial": plan.serial},
        "manifests_digest": plan.manifests_digest,
        "summary": {
            **plan.counts(),
            "samples": plan.samples,
            "samples_at_most": plan.samples_at_most,
            "has_changes": plan.has_changes,
            "specs": spec_plan.spec_counts(plan),
        },
        "out_of_scope": list(plan.out_of_scope),
        "prune_refused": list(plan.prune_refused),
        "orphan_specs": list(plan.orphan_specs),
        "changes": [change(c) for c in plan.changes],
        "evaluations": evaluate_plan.plan_json(plan),
        "pulls": pull_plan.plan_json(plan),
        **spec_plan.plan_graph_json(plan),
    }


def render_apply_report(report: Any, *, state_name: str) -> str:
    """The closing summary of an apply, with what to do about each problem."""
    out = [""]
    if report.interrupted:
        out.append(
            f"Interrupted. Every run id known so far is recorded in {state_name}; "
            "run `dfr apply` again to resume (it never submits a run twice)."
        )
    elif report.timed_out:
        out.append(
            "Stopped waiting (--timeout); the runs go on. `dfr refresh` or "
            "`dfr apply` later records their final statuses."
        )
    records = report.records
    for name in report.failed:
        r = records[name]
        out.append(one_line(f"  {name}: run {r.run_id} ended {r.status}{r.end_note}"))
        out.append(one_line(f"    resubmit with: dfr apply --replace {name}"))
    for name, message in sorted(report.rejected.items()):
        out.append(one_line(f"  {name}: not submitted: {message}"))
    for name, message in sorted(report.unresolved.items()):
        out.append(one_line(f"  {name}: {message}"))
    for name in report.desired:
        r = records.get(name)
        if r is not None and r.drift:
            out.append(
                f"  {name}: run {one_line(r.run_id)} no longer exists in the API; "
                "`dfr plan` shows it as a create"
            )
    out += evaluate_plan.apply_lines(report)
    parts = [
        f"{len(report.submitted)} submitted",
        f"{len(report.adopted)} adopted",
        f"{len(report.succeeded)} succeeded",
        f"{len(report.failed)} failed",
        f"{len(report.running)} still running",
    ]
    if report.pruned:
        parts.append(f"{len(report.pruned)} pruned")
    parts += evaluate_plan.apply_parts(report)
    if report.rejected or report.unresolved:
        parts.append(f"{len(report.rejected) + len(report.unresolved)} not submitted")
    out.append(
        ("Apply complete: " if report.ok else "Apply finished with problems: ")
        + ", ".join(parts)
        + "."
    )
    return "\n".join(out) + "\n"
