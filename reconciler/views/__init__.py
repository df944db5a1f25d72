"""Outputs for places other than a terminal: pull requests, CI systems, tables.

- `markdown`: the plan as a pull-request comment (fits one GitHub comment);
- `github`: GitHub Actions annotations for diagnostics and plan warnings, within
  GitHub's per-step limits;
- `gitlab`: the Code Quality report for diagnostics and the merge-request widget
  summary of a plan;
- `status`: the `dfr status` table (rich on a terminal, plain text otherwise).

Pure string building except `status`, which writes to the stream it is given.
None of these modules is imported by `dfr validate` in text mode or `dfr --version`.
"""

from __future__ import annotations

import os


def in_github_actions() -> bool:
    """True inside a GitHub Actions job (the runner sets GITHUB_ACTIONS=true)."""
    return os.environ.get("GITHUB_ACTIONS", "").strip().lower() not in ("", "0", "false")


def resolve_format(fmt: str) -> str:
    """`auto` is `github` inside GitHub Actions and `text` everywhere else."""
    if fmt == "auto":
        return "github" if in_github_actions() else "text"
    return fmt
