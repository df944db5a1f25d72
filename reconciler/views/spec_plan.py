"""The spec half of a plan and its graph, for people (text, Markdown) and programs (JSON).

`reconciler.render` (text, JSON) and `reconciler.views.markdown` call these:
each spec change as a block (`spec "NAME"` with `+` for a create, `~` for an
update), a run's body with the fields known only after apply, the order the
changes run in (dependencies first) and the counts. Pure string building.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.plan import Action, Change, Plan
from reconciler.specplan import KNOWN_AFTER_APPLY, SpecAction, SpecChange
from reconciler.textsafe import md_code, md_text, one_line
from reconciler.views.comments import change_comments


def _value(value: Any) -> str:
    return one_line(json.dumps(value))


def _short_sha(sha: str | None) -> str:
    return f"sha256 {sha[:12]}" if sha else "sha256 unknown"


def spec_header(s: SpecChange) -> str:
    name = one_line(s.name)
    if s.action is SpecAction.CREATE:
        verb = "will be looked up by name, else created" if s.resolve_intent else "will be created"
        return f"spec {name} {verb}"
    if s.action is SpecAction.UPDATE:
        return f"spec {name} will be updated" + (
            f" (version {s.new_version})" if s.new_version else ""
        )
    if s.failed:
        return f"spec {name} ended FAILED"
    return f"spec {name} is {one_line(s.status or 'recorded')}"


def _body_lines(s: SpecChange, indent: str) -> list[str]:
    lines: list[tuple[str, str, str]] = []
    if s.action is SpecAction.CREATE and s.body is not None:
        lines += [("+", k, _value(v)) for k, v in s.body.items()]
        lines.append(("+", "spec_id", KNOWN_AFTER_APPLY))
    if s.content_yaml is not None and s.acts:
        version = s.new_version
        before = f"version {s.base_version}" if s.base_version else "(none)"
        after = f"version {version}" if version else "a new version"
        mark = "~" if s.action is SpecAction.UPDATE else "+"
        shown = f"{after} ({_short_sha(s.content_sha256)})"
        if s.action is SpecAction.UPDATE:
            shown = f"{before} -> {shown}"
        lines.append((mark, "content", shown))
    width = max((len(k) for _, k, _ in lines), default=0)
    return [f"{indent}{m} {k.ljust(width)} = {v}" for m, k, v in lines]


def render_spec_change(s: SpecChange) -> list[str]:
    """One spec change as Terraform-like text lines."""
    out = change_comments(spec_header(s), s.reasons, s.where, [("used by", s.dependants)])
    if s.acts:
        mark = "+" if s.action is SpecAction.CREATE else "~"
        out.append(f'  {mark} spec "{one_line(s.name)}" {{')
        out += _body_lines(s, "      ")
        out.append("    }")
    return out


def shown_specs(plan: Plan, *, show_noop: bool = False) -> list[SpecChange]:
    """Spec changes worth showing: those that act, failed, drifted, wait, or all."""
    return [s for s in plan.specs if show_noop or s.acts or s.failed or s.drift or s.waits]


def run_body(change: Change) -> dict[str, Any]:
    """A run's body as shown: the fields known after apply first, then the body."""
    unknown = {
        k: KNOWN_AFTER_APPLY for k in change.unknown if not change.body or k not in change.body
    }
    return {**unknown, **(change.body or {})}


def is_unknown(change: Change, key: str, value: Any) -> bool:
    return key in change.unknown and value == KNOWN_AFTER_APPLY


def run_graph_lines(change: Change) -> list[str]:
    """`#   after: spec/x` (what a run waits for), as text lines."""
    lines = []
    if change.depends_on:
        lines.append(f"  #   after: {one_line(', '.join(change.depends_on))}")
    if change.spec_ref is not None:
        ref = change.spec_ref.to_json()
        lines.append(f"  #   spec_ref: {one_line(str(ref['name']))} version {ref['version']}")
    return lines


def _acting_keys(plan: Plan) -> set[str]:
    keys = {s.key for s in plan.specs if s.acts}
    keys |= {c.key for c in plan.changes if c.submits or (c.action is Action.ORPHAN and c.prune)}
    return keys


def order_entries(plan: Plan) -> list[tuple[str, str, tuple[str, ...]]]:
    """(key, action, depends_on) of each acting change, in the order apply runs them."""
    acting = _acting_keys(plan)
    specs = {s.key: s for s in plan.specs}
    runs = {c.key: c for c in plan.changes}
    out = []
    for key in plan.order:
        if key not in acting:
            continue
        if key in specs:
            s = specs[key]
            out.append((key, s.action.value, s.depends_on))
        else:
            c = runs[key]
            deps = tuple(d for d in c.depends_on if d in acting)
            out.append((key, c.action.value, deps))
    return out


def order_lines(plan: Plan) -> list[str]:
    """The text section "Order:" (only when some change waits for another)."""
    entries = order_entries(plan)
    if not any(deps for _, _, deps in entries):
        return []
    out = ["Order (each after what it waits for; the others in parallel):"]
    for n, (key, action, deps) in enumerate(entries, 1):
        after = f" after {', '.join(deps)}" if deps else ""
        out.append(one_line(f"  {n}. {key} ({action}){after}"))
    return out


def spec_summary(plan: Plan) -> str | None:
    """ "Specs: 1 to create, 0 to update, 1 unchanged." (None without Spec manifests)."""
    if not plan.specs:
        return None
    create = sum(s.action is SpecAction.CREATE for s in plan.specs)
    update = sum(s.action is SpecAction.UPDATE for s in plan.specs)
    failed = sum(s.failed for s in plan.specs)
    same = len(plan.specs) - create - update
    line = f"Specs: {create} to create, {update} to update, {same} unchanged"
    line += f", {failed} failed" if failed else ""
    affected = [c.name for c in plan.changes if c.affected_by]
    if affected:
        line += f"; runs on latest affected: {', '.join(affected)}"
    return one_line(line + ".")


def spec_counts(plan: Plan) -> dict[str, int]:
    return {
        "create": sum(s.action is SpecAction.CREATE for s in plan.specs),
        "update": sum(s.action is SpecAction.UPDATE for s in plan.specs),
        "noop": sum(s.action is SpecAction.NOOP for s in plan.specs),
        "failed": sum(s.failed for s in plan.specs),
        "resolve": sum(s.resolve_intent for s in plan.specs),
        "affected_runs": sum(1 for c in plan.changes if c.affected_by),
    }


def change_graph_json(c: Change) -> dict[str, Any]:
    """The graph fields of a run change in `plan --json` and saved plans."""
    return {
        **c.json_of("key", "depends_on", "unknown"),
        "spec_ref": c.spec_ref.to_json() if c.spec_ref else None,
        **c.json_of("affected_by", "blocked_by"),
    }


def plan_graph_json(plan: Plan) -> dict[str, Any]:
    """The plan-level graph fields: the spec changes and the order."""
    if not plan.specs and not any(c.depends_on for c in plan.changes):
        return {"specs": [], "order": [c.key for c in plan.changes]}
    return {"specs": [s.to_json() for s in plan.specs], "order": list(plan.order)}


# -- Markdown -------------------------------------------------------------------------


def markdown_sections(plan: Plan) -> str:
    """The "Specs" and "Order" sections of the Markdown plan ("" when there is neither)."""
    parts: list[str] = []
    specs = shown_specs(plan)
    if specs:
        parts.append(f"#### Specs ({len(specs):,})\n")
        for s in specs:
            parts.append(f"- {md_code(s.name)}: {md_text(spec_header(s))}")
            parts += [f"  - {md_text(r)}" for r in s.reasons]
            if s.dependants:
                parts.append(f"  - used by: {', '.join(md_code(d) for d in s.dependants)}")
        parts.append("")
    entries = order_entries(plan)
    if any(deps for _, _, deps in entries):
        parts.append("#### Order\n")
        for n, (key, action, deps) in enumerate(entries, 1):
            after = f" after {', '.join(md_code(d) for d in deps)}" if deps else ""
            parts.append(f"{n}. {md_code(key)} ({md_text(action)}){after}")
        parts.append("")
    affected = [c for c in plan.changes if c.affected_by and not c.submits]
    if affected:
        parts.append("#### Affected (runs on latest of a changed spec; kept)\n")
        for c in affected:
            parts.append(
                f"- {md_code(c.name)}: affected: uses latest of {md_code(str(c.affected_by))}"
            )
        parts.append("")
    return "\n".join(parts) + ("\n" if parts else "")
