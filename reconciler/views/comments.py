"""The comment lines over one change in a text plan, for every kind of change.

    # evaluation of a will be started      <- the head
    #   the manifest asks for one          <- each reason
    #   manifest: runs/a.yaml:3            <- where it is declared
    #   after: run/a                       <- each (label, names) that has names

Pure string building; every value is made one line (`textsafe.one_line`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from reconciler.textsafe import one_line

__all__ = ["change_comments"]


def change_comments(
    head: str,
    reasons: Iterable[str],
    where: str | None,
    links: Iterable[tuple[str, Sequence[str]]] = (),
) -> list[str]:
    """`  # HEAD`, `  #   REASON` each, `  #   manifest: WHERE`, `  #   LABEL: A, B`.

    `head` is shown as given (its names already made one line by the caller)."""
    lines = [f"  # {head}"]
    lines += [f"  #   {one_line(reason)}" for reason in reasons]
    if where:
        lines.append(f"  #   manifest: {one_line(where)}")
    for label, names in links:
        if names:
            lines.append(f"  #   {label}: {one_line(', '.join(names))}")
    return lines
