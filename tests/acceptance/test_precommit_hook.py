"""The `dfr-validate` hook through the real `pre-commit try-repo`.

pre-commit builds a virtualenv and pip-installs this repository into it (from
PyPI's build backend and dependencies: it needs the network, as CI has), so
this is the one test that sees `dfr` as users of the hook get it: installed
from a wheel, not from the source tree.

The hook repository is a snapshot of the working tree committed into a fresh
git repository, so the test checks the code under test, committed or not
(`try-repo` itself would take HEAD, or HEAD plus tracked changes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
GOOD = (
    "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata:\n  name: good\n"
    f"spec:\n  spec_id: {SPEC_ID}\n  number_of_samples: 100\n  spec_version: 1\n"
)
BAD = GOOD.replace("name: good", "name: bad").replace(
    "number_of_samples: 100", "number_of_samples: 0"
)
GIT_ID = ["-c", "user.name=dfr tests", "-c", "user.email=tests@example.invalid"]

pytestmark = pytest.mark.slow


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *GIT_ID, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=True
    )
    return proc.stdout


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One pre-commit home for the session (try-repo itself uses a fresh store per run)."""
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree (tracked and untracked, not ignored files), committed."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO)
    dest = tmp_path_factory.mktemp("hook-repo")
    for name in sorted(set(filter(None, listed.split("\0")))):
        src, dst = REPO / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            dst.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dst)
    git("init", "-q", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "--no-verify", "-m", "snapshot of the working tree", cwd=dest)
    return dest


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A user's repository with manifests/good.yaml and manifests/bad.yaml staged."""
    root = tmp_path / "project"
    (root / "manifests").mkdir(parents=True)
    (root / "manifests" / "good.yaml").write_text(GOOD)
    (root / "manifests" / "bad.yaml").write_text(BAD)
    (root / "README.md").write_text("not a manifest\n")
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    yield root


def try_repo(project: Path, hook_repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DFR_DEBUG", "GITHUB_ACTIONS")
    }
    env.update(
        PRE_COMMIT_HOME=str(home),
        PRE_COMMIT_COLOR="never",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(hook_repo),
            "dfr-validate",
            "--all-files",
            "--color",
            "never",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_hook_fails_on_the_bad_manifest_then_passes_without_it(
    project: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    failed = try_repo(project, hook_repo, pre_commit_home)
    out = failed.stdout + failed.stderr
    if "An unexpected error has occurred" in out and (
        "pip" in out or "Could not" in out or "network" in out.lower()
    ):
        pytest.fail(f"pre-commit could not install the hook (network?):\n{out}")
    assert failed.returncode == 1, out
    assert "validate Dataframer manifests" in out and "Failed" in out, out
    assert (
        "manifests/bad.yaml:7:22: error: spec.number_of_samples must be at least 1, not 0" in out
    ), out
    assert "manifests/good.yaml" not in out.split("Failed", 1)[1], out
    assert "Traceback" not in out

    git("rm", "-q", "-f", "manifests/bad.yaml", cwd=project)
    passed = try_repo(project, hook_repo, pre_commit_home)
    out = passed.stdout + passed.stderr
    assert passed.returncode == 0, out
    assert "validate Dataframer manifests" in out and "Passed" in out, out
