"""README's promises: the quickstart's `dfr demo` runs the whole loop, and
`.ci/run` runs exactly the test command README gives."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support.subproc import run_text

ROOT = Path(__file__).resolve().parents[2]


def _demo(env_extra: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DFR_", "DATAFRAMER_"))}
    env.update(env_extra)
    return run_text([sys.executable, "-m", "reconciler", "demo"], cwd=cwd, env=env, timeout=120)


def test_demo_runs_the_whole_loop_over_the_examples() -> None:
    result = _demo({})
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "Traceback" not in text
    for step in ("$ dfr validate", "$ dfr plan", "$ dfr apply", "$ dfr status", "$ dfr pull"):
        assert step in result.stdout
    assert "Plan: 7 to create, 0 to replace, 0 orphaned." in result.stdout
    # The spec of examples/manifests/support/tickets-from-spec.yaml first, then its runs.
    assert "Specs: 1 to create, 0 to update, 0 unchanged." in result.stdout
    assert "1. spec/support-tickets-seedless (spec-create)" in result.stdout
    assert "Apply complete: 7 submitted, 0 adopted, 7 succeeded, 0 failed" in result.stdout
    # apply --pull wrote the data of the one manifest with outputs, in the demo's copy
    # of the examples (never in the checkout), and pull --check found it intact.
    assert "support-tickets-baseline: pulled 3 files into data/support/tickets-baseline" in (
        result.stderr
    )
    assert "1 output folder(s) match state." in result.stdout + result.stderr
    assert not (ROOT / "data" / "support").exists()
    # The second plan submits nothing, leaves the spec alone and pulls nothing.
    second = result.stdout.rsplit("$ dfr plan", 1)[1]
    assert "No changes. Manifests and state agree (7 runs, 1 spec)." in second, second


def test_demo_outside_a_checkout_runs_the_examples_installed_with_dfr(tmp_path: Path) -> None:
    """`pip install` and `dfr demo` anywhere: the examples come with dfr (the wheel
    carries them; an editable install finds its checkout's), and nothing lands here."""
    result = _demo({}, cwd=tmp_path)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "$ dfr validate manifests\n" in result.stdout
    assert "7 manifests in 6 files: valid." in text
    assert "Apply complete: 7 submitted, 0 adopted, 7 succeeded, 0 failed" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_demo_names_a_missing_path_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DFR_", "DATAFRAMER_"))}
    result = run_text(
        [sys.executable, "-m", "reconciler", "demo", "nowhere"], cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr == "error: nowhere: no such file or directory\n"


def test_demo_ignores_a_backend_chosen_in_the_environment(tmp_path: Path) -> None:
    # A team database in the environment must never receive the emulator's runs.
    result = _demo(
        {
            "DFR_BACKEND": "postgresql://nobody@127.0.0.1:1/none",
            "DFR_STATE": str(tmp_path / "not-this.json"),
        }
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "not-this.json").exists()


def test_ci_runs_the_readme_test_command_exactly() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", quickstart, flags=re.S)
    assert commands[0].startswith("python3 -m venv .venv") and "dfr demo" in commands[0]
    test_command = commands[1]
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()
