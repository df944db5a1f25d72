"""The evaluations of a plan and of an apply, for people (text) and programs (JSON).

`reconciler.render` calls these: each `evaluate` change of `Plan.evaluations`
(`reconciler.evaluate`) as a block, `+ evaluate "NAME"` with its POST body;
the summary line; the plan JSON's `evaluations` list (which a saved plan
keeps, so `dfr apply PLANFILE` refuses a plan whose evaluations moved); and,
after an apply, the evaluations not started, lost, refused, and the runs
`max_distribution_gap` failed. Pure string building.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.evaluate import KNOWN_AFTER_APPLY, EvaluateChange
from reconciler.textsafe import one_line
from reconciler.views.comments import change_comments


def _evaluations(plan: Any) -> tuple[EvaluateChange, ...]:
    return tuple(getattr(plan, "evaluations", ()))


def shown(plan: Any, *, show_noop: bool = False) -> list[EvaluateChange]:
    return [e for e in _evaluations(plan) if e.acts or show_noop]


def render_change(e: EvaluateChange) -> list[str]:
    """One evaluation change as Terraform-like text lines."""
    name = one_line(e.name)
    if e.acts:
        verb = "will be looked up, else started" if e.resolve_intent else "will be started"
        head = f"evaluation of {name} {verb}"
    else:
        head = f"evaluation of {name}: nothing to do"
    lines = change_comments(head, e.reasons, e.where, [("after", e.depends_on)])
    if e.acts:
        body = e.body
        width = max(len(k) for k in body)
        lines.append(f'  + evaluate "{name}" {{')
        lines += [f"      + {k.ljust(width)} = {_value(v)}" for k, v in body.items()]
        lines.append("    }")
    return lines


def _value(value: Any) -> str:
    if value == KNOWN_AFTER_APPLY:
        return KNOWN_AFTER_APPLY
    return one_line(json.dumps(value))


def summary_line(plan: Any) -> str | None:
    """'Evaluations: N to start (M to look up first).' when the plan starts any."""
    acting = [e for e in _evaluations(plan) if e.acts]
    if not acting:
        return None
    look = len([e for e in acting if e.resolve_intent])
    tail = f" ({look} to look up first)" if look else ""
    return f"Evaluations: {len(acting)} to start{tail}; each is paid, like a run."


def plan_json(plan: Any) -> list[dict[str, Any]]:
    return [e.to_json() for e in _evaluations(plan)]


# -- after an apply ------------------------------------------------------------------------


def apply_lines(report: Any) -> list[str]:
    """What went wrong or is left with the evaluations, one line each."""
    evaluations = getattr(report, "evaluations", None)
    if evaluations is None:
        return []
    out = []
    for problem in evaluations.problems:
        out.append(one_line(f"  {problem.name}: {problem.message}"))
    for name, message in sorted(evaluations.failed.items()):
        out.append(one_line(f"  {name}: {message}"))
    for name, message in sorted(evaluations.rejected.items()):
        out.append(one_line(f"  {name}: evaluation not started: {message}"))
    for name, message in sorted(evaluations.unresolved.items()):
        out.append(one_line(f"  {name}: {message}"))
    for name, message in sorted(evaluations.deferred.items()):
        out.append(one_line(f"  {name}: evaluation {message}"))
    if evaluations.unchecked:
        names = ", ".join(evaluations.unchecked)
        out.append(
            one_line(
                f"  max_distribution_gap not checked (no finished evaluation yet): {names}; "
                "`dfr apply` later checks them"
            )
        )
    return out


def apply_parts(report: Any) -> list[str]:
    """Counts for the closing line of an apply."""
    evaluations = getattr(report, "evaluations", None)
    if evaluations is None:
        return []
    parts = []
    if evaluations.started or evaluations.adopted:
        n = len(evaluations.started) + len(evaluations.adopted)
        parts.append(f"{n} evaluation{'s' if n != 1 else ''} started")
    if evaluations.problems:
        runs = len({p.name for p in evaluations.problems})
        parts.append(f"{runs} over max_distribution_gap")
    return parts


# -- dfr status -l -------------------------------------------------------------------------


def status_lines(record: Any) -> list[str]:
    """The run's evaluation for `dfr status -l`: id, status, model, the largest gap and
    each property's (none recorded: no lines)."""
    evaluation = record.evaluation
    if evaluation is None:
        return []
    run = evaluation.run_id
    if run is not None and record.run_id is not None and run.lower() != record.run_id.lower():
        return [one_line(f"evaluation: of an earlier run ({run}); this run has none yet")]
    if evaluation.id is None and evaluation.intent is not None:
        return [
            one_line(
                f"evaluation: requested at {evaluation.intent.at}, answer not recorded "
                "(the next apply looks for it before asking again)"
            )
        ]
    if evaluation.id is None:
        return [one_line(f"evaluation: not started: {evaluation.error or 'unknown reason'}")]
    model = f", model {evaluation.model}" if evaluation.model else ""
    lines = [f"evaluation: {evaluation.id} {evaluation.status or 'status unknown'}{model}"]
    if evaluation.error:
        lines.append(f"  error: {evaluation.error}")
    if evaluation.max_gap is not None:
        lines.append(
            f"  largest gap: {evaluation.max_gap:.1f} points ({evaluation.worst_property}), "
            "requested vs evaluated"
        )
        width = max(len(p) for p in evaluation.gaps)
        lines += [f"    {p.ljust(width)}  {gap:5.1f}" for p, gap in sorted(evaluation.gaps.items())]
    return [one_line(line) for line in lines]


# -- the Markdown plan (a pull-request comment) ------------------------------------------


def markdown_section(plan: Any) -> str:
    """The "Evaluations" section: each one the plan starts (they are paid); "" if none."""
    from reconciler.textsafe import md_code, md_text

    acting = [e for e in _evaluations(plan) if e.acts]
    if not acting:
        return ""
    parts = [f"#### Evaluations to start ({len(acting):,}, each paid like a run)\n"]
    for e in acting:
        model = f" with {md_code(e.model)}" if e.model else ""
        after = f" after {', '.join(md_code(d) for d in e.depends_on)}" if e.depends_on else ""
        look = (
            " (looked up first: an earlier request's answer was lost)" if e.resolve_intent else ""
        )
        parts.append(f"- {md_code(e.name)}{model}{after}{md_text(look)}")
    return "\n".join(parts) + "\n\n"
