"""The plan as Markdown for a pull-request or merge-request comment.

Layout: a marker comment (so CI can find and update its earlier comment), a
summary line with the counts, the samples to request, then one collapsible
`<details>` block per change with its field diff, grouped as failed, to
replace, to create, orphaned.

One GitHub comment holds at most 65,536 characters. The rendering keeps to a
budget (60,000 by default, leaving room for what CI adds around it): changes
are shown in full while they fit; after that the remaining changes are listed
by name only, and when even the names do not fit, counted ("and 312 more").
The summary line always covers every change.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import MISSING, Action, Change, Plan
from reconciler.textsafe import fence, html_text, md_code, md_text, one_line
from reconciler.views import evaluate_plan, pull_plan, spec_plan

#: GitHub's limit for one comment body.
GITHUB_COMMENT_LIMIT = 65_536
#: What the markdown plan keeps to by default.
DEFAULT_BUDGET = 60_000
#: The first line of every markdown plan: CI uses it to find the comment to update.
MARKER = "<!-- dfr-plan -->"


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (plural or word + 's')}"


def _value(value: Any) -> str:
    # JSON escapes control characters; one_line also the runner's `##[` (the
    # comment's text may be printed in a CI log too).
    return "(unset)" if value is MISSING else one_line(json.dumps(value))


def _fenced(lines: list[str], lang: str = "diff") -> list[str]:
    """A code block (its lines are JSON values and schema keys: one line each)."""
    marks = fence(lines)
    return [f"{marks}{lang}", *lines, marks]


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    return (
        f"**Plan:** {c['create']:,} to create, {c['replace']:,} to replace, "
        f"{c['orphan']:,} orphaned, {c['failed']:,} failed."
    )


def _html_code(text: str) -> str:
    return f"<code>{html_text(text)}</code>"


def _title(change: Change) -> str:
    """The `<summary>` text: HTML, since GitHub does not render Markdown there."""
    name = _html_code(change.name)
    prior = change.prior
    if change.action is Action.CREATE:
        return f"{name} will be created ({_n(change.samples, 'sample')})"
    if change.action is Action.REPLACE:
        old = prior.run_id if prior else None
        what = f"run {_html_code(old)}" if old else "the recorded run"
        cancel = ", canceling the unfinished one" if change.cancel_prior else ""
        return f"{name} will replace {what} ({_n(change.samples, 'sample')}{cancel})"
    if change.action is Action.ORPHAN:
        verb = "will be pruned" if change.prune else "is orphaned (no manifest)"
        return f"{name} {verb}"
    status = html_text(prior.status if prior else "FAILED")
    run = f"run {_html_code(prior.run_id)} " if prior and prior.run_id else ""
    return f"{name}: {run}ended {status}"


def _diff_lines(change: Change) -> list[str]:
    prior = change.prior
    if change.action is Action.CREATE and change.body is not None:
        body = spec_plan.run_body(change)  # with the fields known only after apply
        width = max((len(k) for k in body), default=0)
        return [
            f"+ {k.ljust(width)} = {v if spec_plan.is_unknown(change, k, v) else _value(v)}"
            for k, v in body.items()
        ]
    if change.action is Action.REPLACE and change.body is not None:
        width = max((len(f.field) for f in change.fields), default=0)
        lines: list[str] = []
        if prior is not None and prior.run_id:
            lines.append(f"- run_id = {_value(prior.run_id)}")
            lines.append("+ run_id = (known after apply)")
        for f in change.fields:
            if f.before is not MISSING:
                lines.append(f"- {f.field.ljust(width)} = {_value(f.before)}")
            if f.after is not MISSING:
                lines.append(f"+ {f.field.ljust(width)} = {_value(f.after)}")
        unchanged = len(change.body) - len({f.field for f in change.fields})
        if unchanged > 0:
            lines.append(f"  # ({_n(unchanged, 'unchanged field')} hidden)")
        return lines
    if prior is not None and change.action is Action.ORPHAN:
        mark = "-" if change.action is Action.ORPHAN and change.prune else " "
        return [
            f"{mark} run_id = {_value(prior.run_id)}",
            f"{mark} status = {_value(prior.status)}",
        ]
    return []


def change_block(change: Change) -> str:
    """One change as a collapsible block: title, reasons, manifest place, field diff."""
    out = [f"<details><summary>{_title(change)}</summary>", ""]
    for reason in change.reasons:
        out.append(f"- {md_text(reason)}")
    if change.where:
        out.append(f"- manifest: {md_code(change.where)}")
    if len(out) > 2:
        out.append("")
    diff = _diff_lines(change)
    if diff:
        out += [*_fenced(diff), ""]
    out.append("</details>")
    return "\n".join(out) + "\n"


def _short(change: Change) -> str:
    return f"- {md_code(change.name)}: {change.action.value}{' (failed)' if change.failed else ''}"


_GROUPS: tuple[tuple[str, Any], ...] = (
    ("Failed runs", lambda c: c.failed and c.action is Action.NOOP),
    ("To replace", lambda c: c.action is Action.REPLACE),
    ("To create", lambda c: c.action is Action.CREATE),
    ("Orphaned", lambda c: c.action is Action.ORPHAN),
)


def render_plan_markdown(
    plan: Plan, *, budget: int = DEFAULT_BUDGET, title: str = "dfr plan"
) -> str:
    """The plan as a Markdown comment of at most `budget` characters."""
    head = [MARKER, f"### {md_text(title)}", "", summary_line(plan)]
    if plan.to_submit:
        head.append(
            f"Samples to request: **{plan.samples:,}** in {_n(len(plan.to_submit), 'run')}."
        )
    failed_specs = any(s.failed for s in plan.specs)
    if (
        not plan.has_changes
        and not plan.failed
        and not plan.by_action(Action.ORPHAN)
        and not (failed_specs)
    ):
        total = len(plan.changes)
        head += ["", f"No changes. Manifests and state agree ({_n(total, 'run')})."]
        return "\n".join(head) + "\n"
    notes: list[str] = []
    if plan.failed:
        notes.append("Failed runs are not resubmitted unless asked: `dfr apply --replace NAME`.")
    if plan.by_action(Action.ORPHAN) and not plan.options.prune:
        notes.append(
            "Orphaned runs are only reported; `dfr apply --prune` cancels unfinished ones "
            "and removes them from state."
        )
    specs_line = spec_plan.spec_summary(plan)
    if specs_line:
        head.append(md_text(specs_line))
    text = "\n".join(head) + "\n\n" + spec_plan.markdown_sections(plan)
    text += evaluate_plan.markdown_section(plan)  # paid evaluations this apply starts
    text += pull_plan.markdown_section(plan)  # the data a merge would change
    tail = "".join(f"\n_{note}_\n" for note in notes)
    text = _changes(plan, text, budget, reserve_extra=len(tail))
    return text.rstrip("\n") + "\n" + tail


def _changes(plan: Plan, text: str, budget: int, *, reserve_extra: int) -> str:
    """`text` with the changes by group, in full while the budget allows, then by name,
    then counted; `reserve_extra` characters are kept for what follows."""
    groups = [(label, [c for c in plan.changes if pick(c)]) for label, pick in _GROUPS]
    groups = [(label, changes) for label, changes in groups if changes]
    # Room for every group's heading and "and N more" line, and for the notes.
    reserve = reserve_extra + 160 * len(groups) + 200
    # Names of the changes after each one: kept room for, so that a large plan
    # lists (up to half the budget of) names rather than details of the first few.
    ordered = [c for _, changes in groups for c in changes]
    after: dict[str, int] = {}
    names_cost = 0
    for change in reversed(ordered):
        after[change.name] = min(names_cost, budget // 2)
        names_cost += len(_short(change)) + 1
    mode = "full"
    hidden = 0
    for label, changes in groups:
        text += f"#### {label} ({len(changes):,})\n\n"
        lines: list[str] = []
        more = 0
        for change in changes:
            if mode == "full":
                block = change_block(change)
                if len(text) + len(block) + reserve + after[change.name] <= budget:
                    text += block
                    continue
                mode = "names"
            if mode == "names":
                line = _short(change) + "\n"
                if len(text) + sum(map(len, lines)) + len(line) + reserve <= budget:
                    lines.append(line)
                    continue
                mode = "count"
            more += 1
        if more:
            lines.append(f"- _… and {more:,} more_\n")
        if lines:
            text += ("\n" if not text.endswith("\n\n") else "") + "".join(lines)
        text += "\n"
        hidden += more
    if mode != "full":
        text += (
            "_To stay within one comment (GitHub allows "
            f"{GITHUB_COMMENT_LIMIT:,} characters), some changes are listed by name only"
            + (f" and {_n(hidden, 'change')} only counted" if hidden else "")
            + "; `dfr plan` shows every one in full._\n"
        )
    return text
