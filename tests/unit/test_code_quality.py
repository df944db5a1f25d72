"""The project's own checks run in the suite, so CI enforces them: ruff (lint and
format) over code, tests and benchmarks, and strict mypy over the package and tests/support."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


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
    result = _run(_tool("ruff"), "check", "reconciler", "dfr_emulator", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = _run(
        _tool("ruff"), "format", "--check", "reconciler", "dfr_emulator", "tests", "bench"
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = _run(_tool("mypy"), "--no-incremental", "reconciler", "dfr_emulator", "tests/support")
    assert result.returncode == 0, result.stdout + result.stderr
