"""Strict mypy over tests/: one run per test folder, as pytest imports them.

The test folders are not packages: pytest puts each test file's folder on
sys.path, so tests import their folder's helpers by bare name, and several
folders have a conftest.py. One mypy run over tests/ would see several modules
named `conftest`; one run per folder, with that folder and tests/ on the path,
sees what pytest sees. tests/support (a package) is checked with the package by
[tool.mypy] in pyproject.toml, whose options (strict) every run here uses.

Usage: python scripts/typecheck_tests.py [MYPY OPTION...]
Prints mypy's output for each folder; exits 1 if any run found an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
#: Checked with the package (pyproject's [tool.mypy] files).
SKIP = {"support"}
#: Folders a helper puts on sys.path itself (pg_helpers: the reliability harness).
EXTRA_PATHS = {"postgres": ["reliability"]}


def runs() -> list[tuple[str, list[Path], list[Path]]]:
    """(name, search path, targets): tests/*.py, then each test folder."""
    found = [("tests", [TESTS], sorted(TESTS.glob("*.py")))]
    for folder in sorted(p for p in TESTS.iterdir() if p.is_dir() and p.name not in SKIP):
        if any(folder.rglob("*.py")):
            extra = [TESTS / name for name in EXTRA_PATHS.get(folder.name, [])]
            found.append((folder.name, [folder, *extra, TESTS], [folder]))
    return found


def check(name: str, path: list[Path], targets: list[Path], options: list[str]) -> int:
    """Run mypy on `targets` with `path` as MYPYPATH; print its output; its exit code."""
    mypypath = os.pathsep.join(str(p.relative_to(ROOT)) for p in path)
    env = {**os.environ, "MYPYPATH": mypypath}
    command = [
        *(sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")),
        *("--explicit-package-bases", "--cache-dir", str(ROOT / ".mypy_cache" / f"tests-{name}")),
        *options,
        *(str(t.relative_to(ROOT)) for t in targets),
    ]
    label = "tests/*.py" if name == "tests" else f"tests/{name}"
    print(f"== mypy {label} (MYPYPATH={mypypath})", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    return result.returncode


def main(options: list[str]) -> int:
    codes = [check(name, path, targets, options) for name, path, targets in runs()]
    return 1 if any(codes) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
