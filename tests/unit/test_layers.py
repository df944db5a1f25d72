"""Every import goes down the layers docs/architecture.md draws:

    cli -> commands -> engine -> core (plan, apply, validate, views, ...) -> api, state

A module imports modules of its own layer or of a lower one, never of a higher one
(imports inside functions included: lazy is still an arrow). The foundation
(errors, hooks, durations, textsafe, the version) is below everything. Only the
package's entry (`reconciler/__init__.py`'s `main`, `__main__.py`) reaches the CLI.
And nothing but `reconciler/cli/` imports click.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"

#: Layer of each top-level part of the package (0 is the top); unnamed parts are core.
LAYERS = {"cli": 0, "commands": 1, "engine": 2, "api": 4, "state": 4}
CORE = 3
FOUNDATION = {"errors", "hooks", "durations", "textsafe", "_version"}
ENTRY = {"reconciler", "reconciler.__main__"}  # `dfr`'s entry: it starts the CLI


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(name: str) -> int:
    parts = name.split(".")
    if len(parts) == 1 or parts[1] in FOUNDATION:
        return 5
    return LAYERS.get(parts[1], CORE)


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of the file, at any depth; `from X import y`
    names X.y when that is a module, else X."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield node.lineno, full if is_module(full) else node.module


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_arrow_goes_down_the_layers() -> None:
    upward = []
    for path in modules():
        me = module_name(path)
        if me in ENTRY:
            continue
        for line, target in imports(path):
            if target.startswith("reconciler.") and layer(target) < layer(me):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {me} imports {target}")
    assert not upward, "imports that go up a layer:\n" + "\n".join(upward)


def test_the_core_and_the_bottom_never_import_engine_or_cli() -> None:
    """The issue's own wording: api/, state/, plan.py, matching.py know nothing above."""
    for path in modules():
        me = module_name(path)
        if not (
            me.startswith(("reconciler.api", "reconciler.state"))
            or me
            in (
                "reconciler.plan",
                "reconciler.matching",
            )
        ):
            continue
        for line, target in imports(path):
            assert not target.startswith(("reconciler.engine", "reconciler.cli")), (
                f"{path.relative_to(ROOT)}:{line}: {me} imports {target}"
            )


def test_only_the_cli_imports_click() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("reconciler", "dfr_emulator")
        for path in sorted((ROOT / package).rglob("*.py"))
        if not module_name(path).startswith("reconciler.cli")
        for line, target in imports(path)
        if target == "click" or target.startswith("click.")
    ]
    assert not found, f"click imported outside reconciler/cli/: {found}"


def test_the_walk_sees_the_layers() -> None:
    """The measure itself: each layer has modules, and a known downward arrow is seen."""
    names = {module_name(p) for p in modules()}
    assert {layer(n) for n in names} == {0, 1, 2, 3, 4, 5}
    arrows = {
        t for p in modules() if module_name(p) == "reconciler.cli.plan" for _, t in imports(p)
    }
    assert "reconciler.commands.plan" in arrows and "click" in arrows


def test_validate_loads_neither_the_planner_nor_the_network(tmp_path: Path) -> None:
    """`dfr validate` stays quick: the engine's pipeline, the planner, apply, the state
    and the API client (httpx) are not imported by it."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "run.yaml").write_text(
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata:\n  name: run\n"
        "spec:\n  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a\n  number_of_samples: 1\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler", "validate", "run.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "DFR_NO_CACHE": "1"},
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "reconciler.validate" in imported, proc.stderr[-2000:]
    for heavy in (
        "httpx",
        "reconciler.engine.pipeline",
        "reconciler.plan",
        "reconciler.apply",
        "reconciler.api.client",
        "reconciler.state.backend",
    ):
        assert heavy not in imported, f"dfr validate imports {heavy}"


def test_the_api_client_does_not_load_httpx_command_line_client() -> None:
    """httpx imports its own CLI (click, rich, pygments) when click is installed;
    `reconciler.api` turns that import off, and httpx still works."""
    code = (
        "import sys, reconciler.api, httpx\n"
        "assert sys.modules['httpx._main'] is None\n"
        "assert 'pygments' not in sys.modules, 'pygments loaded'\n"
        "assert callable(httpx.main)\n"
        "print(httpx.Client(base_url='http://127.0.0.1:9').base_url)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "http://127.0.0.1:9"
