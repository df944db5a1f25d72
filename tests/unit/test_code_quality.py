"""The project's own checks run in the suite, so CI enforces them: ruff (lint and
format) over code, tests, benchmarks and scripts; strict mypy over the package,
tests/support and scripts (pyproject's [tool.mypy] files), and over the rest of
tests/ one folder at a time, as pytest imports it (scripts/typecheck_tests.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CODE = ("reconciler", "dfr_emulator", "tests", "bench", "scripts")


def _tool(name: str) -> str:
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; it is in the 'test' extra")
    return found


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_ruff_lint() -> None:
    result = _run(_tool("ruff"), "check", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(_tool("ruff"), "format", "--check", *CODE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    # No paths: the files pyproject's [tool.mypy] names (the package, tests/support, scripts).
    result = _run(_tool("mypy"), "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_over_tests() -> None:
    # Every test folder, one strict run each, with the paths pytest gives it.
    result = _run(sys.executable, str(ROOT / "scripts" / "typecheck_tests.py"), "--no-incremental")
    assert result.returncode == 0, result.stdout + result.stderr
    folders = [p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and any(p.rglob("*.py"))]
    # Each checked on its own; tests/support is checked with the package (above).
    for label in ["tests/*.py", *(f"tests/{name}" for name in folders if name != "support")]:
        assert f"== mypy {label} " in result.stdout, result.stdout
