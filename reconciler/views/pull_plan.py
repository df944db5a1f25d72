"""The `pull` changes of a plan, for people (text, Markdown) and programs (JSON).

`reconciler.render` and `reconciler.views.markdown` call these with a plan whose
`pulls` (`reconciler.outputs.needs.PullChange`) say which output folders a pull
would write and why, so a pull request shows which data will change.
"""

from __future__ import annotations

from typing import Any

from reconciler.outputs.needs import PullChange
from reconciler.textsafe import md_text, one_line
from reconciler.views.comments import change_comments

__all__ = ["markdown_section", "plan_json", "render_change", "summary_line"]

#: Files listed under one pull before "and N more".
SHOWN_FILES = 10


def _pulls(plan: Any) -> tuple[PullChange, ...]:
    return tuple(getattr(plan, "pulls", ()))


def render_change(p: PullChange) -> list[str]:
    """One pull as Terraform-like text lines."""
    name, path = one_line(p.name), one_line(p.path)
    lines = change_comments(
        f"files of {name} will be pulled into {path}",
        [p.reason],
        p.where,
        [("after", p.depends_on)],
    )
    lines.append(f'  ↓ pull "{name}" {{')
    lines.append(f"      run_id = {one_line(p.run_id or '(known after apply)')}")
    lines += [f"      ~ {one_line(f)}" for f in p.files[:SHOWN_FILES]]
    if len(p.files) > SHOWN_FILES:
        lines.append(f"      ... and {len(p.files) - SHOWN_FILES} more files")
    lines.append("    }")
    return lines


def render_all(plan: Any) -> list[str]:
    """Every pull of the plan, each followed by an empty line."""
    out: list[str] = []
    for pull in _pulls(plan):
        out += [*render_change(pull), ""]
    return out


def summary_line(plan: Any) -> str | None:
    """'Outputs: N folders to pull (`dfr pull`, or `dfr apply --pull`).' when any."""
    pulls = _pulls(plan)
    if not pulls:
        return None
    n = len(pulls)
    return f"Outputs: {n} folder{'s' if n != 1 else ''} to pull (`dfr pull` or `dfr apply --pull`)."


def plan_json(plan: Any) -> list[dict[str, Any]]:
    return [p.to_json() for p in _pulls(plan)]


def markdown_section(plan: Any) -> str:
    """'#### Data to pull (N)' with one line per folder, or '' when there is none."""
    pulls = _pulls(plan)
    if not pulls:
        return ""
    lines = [f"#### Data to pull ({len(pulls)})", ""]
    for p in pulls:
        files = f" ({len(p.files)} files differ)" if p.files else ""
        lines.append(
            f"- `{md_text(p.name)}` → `{md_text(p.path)}`: {md_text(p.reason)}{md_text(files)}"
        )
    return "\n".join(lines) + "\n\n"
