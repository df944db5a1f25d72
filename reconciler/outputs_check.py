"""Checking manifests' `outputs:` and `evaluate:` sections, and reading them into values.

Three steps, each returning diagnostics (`FILE:LINE:COL: error: ...`), never raising:

- `sections(file, doc)`: a schema-valid document's `outputs:` and `evaluate:` as
  `Outputs` / `Evaluate` values; its glob patterns are checked here (the path's
  syntax is the schema's pattern, worded by `outputs_rules.path_problem`).
- `check_all(manifests, root)`: the rules across manifests and the filesystem,
  run on every validation (never cached): two manifests' output folders may
  not be equal or one inside the other (compared case-insensitively, as a
  checkout on macOS or Windows would, and again after resolving symbolic
  links); a folder that resolves, through a symbolic link, outside the project
  root, or that exists as something other than a folder, is refused.
- `cache_form` / `from_cache_form`: the sections as plain JSON for the
  validation cache (`reconciler.vcache`), so a cached file keeps them.

Only files are read (`os.path.realpath`, `lstat`): no network, no writes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.manifests import Evaluate, Manifest, Outputs
from reconciler.outputs_rules import glob_problem, normalise_path, path_parts
from reconciler.yamlsafe import Document, key_node_of, locate, position

_SECTIONS = ("outputs", "evaluate")


def sections(file: str, doc: Document) -> tuple[dict[str, Any], list[Diagnostic]]:
    """`{"outputs": Outputs, "evaluate": Evaluate}` (those present) of a schema-valid
    document, and the problems of its glob patterns (then the dict is empty)."""
    value = doc.value
    found: dict[str, Any] = {}
    problems: list[Diagnostic] = []
    raw = value.get("outputs")
    if isinstance(raw, dict):
        for index, pattern in enumerate(raw.get("files") or ()):
            problem = glob_problem(pattern)
            if problem is not None:
                line, col = position(locate(doc.node, ("outputs", "files", index)))
                problems.append(
                    diag.error(
                        f"outputs.files[{index}]: {problem}",
                        file,
                        line,
                        col,
                        code="outputs",
                        path=("outputs", "files", index),
                    )
                )
        line, col = position(key_node_of(doc.node, ("outputs",)))
        found["outputs"] = Outputs(
            normalise_path(raw["path"]),
            tuple(dict.fromkeys(raw.get("files") or ())),
            f"{file}:{line}:{col}",
        )
    raw_evaluate = value.get("evaluate")
    if isinstance(raw_evaluate, dict):
        found["evaluate"] = Evaluate(raw_evaluate.get("model"))
    return ({} if problems else found), problems


# -- across manifests, with the filesystem ---------------------------------------------


def _place(outputs: Outputs) -> tuple[str, int, int]:
    file, line, col = outputs.where.rsplit(":", 2)
    return file, int(line), int(col)


def _error(m: Manifest, message: str, code: str = "outputs") -> Diagnostic:
    assert m.outputs is not None
    file, line, col = _place(m.outputs)
    return diag.error(message, file, line, col, code=code, path=("outputs", "path"))


def check_all(
    manifests: Sequence[Manifest], root: str | os.PathLike[str] | None
) -> list[Diagnostic]:
    """Overlapping output folders, and (with `root`) folders the filesystem sends
    elsewhere. Without a root, only the written paths are compared."""
    with_outputs = [m for m in manifests if m.outputs is not None]
    if not with_outputs:
        return []
    out: list[Diagnostic] = []
    resolved: dict[str, tuple[str, ...]] = {}
    if root is not None:
        real_root = os.path.realpath(root)
        for m in with_outputs:
            parts, problem = _resolve(m, real_root)
            if problem is not None:
                out.append(problem)
            elif parts is not None:
                resolved[m.name] = parts
    lexical = _overlaps(with_outputs, lambda m: path_parts(_path(m)), "")
    out.extend(lexical.values())
    # Distinct as written, the same folder once links are followed ('a' -> 'b').
    again = [m for m in with_outputs if m.name in resolved and m.name not in lexical]
    out.extend(_overlaps(again, lambda m: resolved[m.name], " (through a symbolic link)").values())
    return out


def _path(m: Manifest) -> str:
    assert m.outputs is not None
    return m.outputs.path


def _resolve(m: Manifest, real_root: str) -> tuple[tuple[str, ...] | None, Diagnostic | None]:
    """The folder's place below the root after following symbolic links, or a problem."""
    path = _path(m)
    target = os.path.realpath(os.path.join(real_root, *path.split("/")))
    try:
        inside = os.path.commonpath([real_root, target]) == real_root
    except ValueError:  # another drive
        inside = False
    if not inside:
        return None, _error(
            m,
            f"outputs.path {path!r} of manifest {m.name!r} resolves through a symbolic link "
            f"to {target}, outside the project root {real_root}; output folders must stay "
            "inside the repository",
            code="outputs-escape",
        )
    if os.path.lexists(target) and not os.path.isdir(target):
        return None, _error(
            m,
            f"outputs.path {path!r} of manifest {m.name!r} exists and is not a folder; "
            "name a folder (it is created when the run's files are pulled)",
        )
    relative = os.path.relpath(target, real_root)
    if relative == ".":
        return None, _error(
            m,
            f"outputs.path {path!r} of manifest {m.name!r} resolves through a symbolic link "
            "to the project root itself; name a folder below it",
            code="outputs-escape",
        )
    return tuple(p.casefold() for p in Path(relative).parts), None


def _overlaps(
    manifests: Iterable[Manifest], parts_of: Callable[[Manifest], tuple[str, ...]], how: str
) -> dict[str, Diagnostic]:
    """An error for each manifest (by name) whose folder equals, holds or lies inside an
    earlier one's."""
    exact: dict[tuple[str, ...], Manifest] = {}
    below: dict[tuple[str, ...], Manifest] = {}  # every proper prefix of a folder seen
    out: dict[str, Diagnostic] = {}
    for m in manifests:
        parts = parts_of(m)
        other, relation = _clash(parts, exact, below)
        if other is not None:
            out[m.name] = _overlap_error(m, other, relation + how)
            continue
        exact.setdefault(parts, m)
        for depth in range(1, len(parts)):
            below.setdefault(parts[:depth], m)
    return out


def _clash(
    parts: tuple[str, ...],
    exact: dict[tuple[str, ...], Manifest],
    below: dict[tuple[str, ...], Manifest],
) -> tuple[Manifest | None, str]:
    if parts in exact:
        return exact[parts], "is the same folder as"
    for depth in range(1, len(parts)):
        if parts[:depth] in exact:
            return exact[parts[:depth]], "is inside"
    if parts in below:
        return below[parts], "holds"
    return None, ""


def _overlap_error(m: Manifest, other: Manifest, relation: str) -> Diagnostic:
    assert other.outputs is not None
    return _error(
        m,
        f"outputs.path of manifest '{m.name}' ({_path(m)!r}) {relation} outputs.path of "
        f"manifest '{other.name}' ({_path(other)!r}, {other.outputs.where}); two runs' files "
        "would mix: give each manifest its own folder, neither inside the other (folder names "
        "are compared ignoring case, as on macOS and Windows)",
        code="outputs-overlap",
    )


# -- the validation cache ---------------------------------------------------------------


def cache_form(m: Manifest) -> dict[str, Any]:
    """`m`'s sections as plain JSON (with the outputs' place), {} when it has none."""
    out: dict[str, Any] = {}
    if m.outputs is not None:
        out["outputs"] = {**m.outputs.to_json(), "where": m.outputs.where}
    if m.evaluate is not None:
        out["evaluate"] = m.evaluate.to_json()
    return out


def from_cache_form(data: Any, file: str) -> dict[str, Any]:
    """Keyword arguments of `Manifest` back from `cache_form`'s JSON ({} if malformed).

    The cache is keyed by content: a file with the same bytes elsewhere hits the
    same entry, so the outputs' place is given `file`, the one read now.
    """
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    raw = data.get("outputs")
    if isinstance(raw, dict) and isinstance(raw.get("path"), str):
        files = tuple(f for f in raw.get("files") or () if isinstance(f, str))
        line_col = str(raw.get("where", "")).rsplit(":", 2)[1:]
        if len(line_col) != 2 or not all(p.isdigit() for p in line_col):
            line_col = ["1", "1"]
        out["outputs"] = Outputs(raw["path"], files, ":".join([file, *line_col]))
    raw_evaluate = data.get("evaluate")
    if isinstance(raw_evaluate, dict):
        model = raw_evaluate.get("model")
        out["evaluate"] = Evaluate(model if isinstance(model, str) else None)
    return out


def cache_ok(data: Any) -> bool:
    """Whether a cache entry's sections have the shape `cache_form` writes."""
    return isinstance(data, dict) and set(data) <= set(_SECTIONS)
