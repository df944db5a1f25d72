"""The code stays in small rooms: every module of reconciler/ and dfr_emulator/ under 500
lines, no function over 60 (issue 15: split by meaning, not by line count)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("reconciler", "dfr_emulator")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def long_functions(source: str) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length in lines) of each function over the limit;
    a function's lines run from its `def` to its last statement, docstring included."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        found.append((name, child.lineno, length))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_packages_have_modules() -> None:
    assert len(modules()) > 50  # the walk finds the code it measures


def test_every_module_is_under_500_lines() -> None:
    over = [
        f"{relative(p)}: {n} lines"
        for p in modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) >= MAX_MODULE_LINES
    ]
    assert not over, f"modules of {MAX_MODULE_LINES} lines or more (split them by meaning): {over}"


def test_no_function_is_over_60_lines() -> None:
    over = [
        f"{relative(p)}:{line}: {name} is {length} lines"
        for p in modules()
        for name, line, length in long_functions(p.read_text(encoding="utf-8"))
    ]
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"


@pytest.mark.parametrize(
    ("body_lines", "flagged"), [(MAX_FUNCTION_LINES - 1, False), (MAX_FUNCTION_LINES, True)]
)
def test_the_measure_counts_from_def_to_the_last_line(body_lines: int, flagged: bool) -> None:
    source = "class A:\n    def f(self) -> None:\n" + "".join(
        f"        x{i} = {i}\n" for i in range(body_lines)
    )
    found = long_functions(source)
    assert found == ([("A.f", 2, body_lines + 1)] if flagged else [])
