"""Shared by the recipe tests: the project's paths, the release build, the forge's repository.

Kept out of conftest.py so that test modules can import it by a name no other test
folder uses (every folder's conftest.py is a module named `conftest`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from recipe_forge import Forge
from recipe_harness import git

from dfr_emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
KEY = "dfr-recipe-api-key-7c41e9"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def pinned_version() -> str:
    """The exact dfr version the recipes install (both must pin the same)."""
    github = yaml.safe_load((CI / "github-actions.yml").read_text())["env"]["DFR_VERSION"]
    gitlab = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["variables"]["DFR_VERSION"]
    assert github == gitlab, (github, gitlab)
    return str(github)


def git_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **GIT_IDENTITY}


def copy_tree(destination: Path) -> None:
    """This working tree's files (tracked, and new ones git does not ignore)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not os.path.lexists(source):
            continue  # deleted in the working tree
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)


@dataclass(frozen=True)
class Release:
    version: str
    dist: Path
    sdist: Path
    wheel: Path


def build_release(workdir: Path, version: str, *, tag: bool = True) -> Release:
    """Build dfr as the release workflow does: from a clone whose HEAD is tagged."""
    source = workdir / "src"
    copy_tree(source)
    env = git_env()
    git("init", "-q", "-b", "main", cwd=source, env=env)
    git("add", "-A", cwd=source, env=env)
    git("commit", "-q", "-m", "release", cwd=source, env=env)
    if tag:
        git("tag", f"v{version}", cwd=source, env=env)
    dist = workdir / "dist"
    build_env = {k: v for k, v in os.environ.items() if not k.startswith("SETUPTOOLS_SCM")}
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        env=build_env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return Release(version=version, dist=dist, sdist=sdist, wheel=wheel)


def dependencies() -> list[Any]:
    """The installed distributions dfr[postgres] needs, and pip: what a runner's
    Python holds after the recipe's install step (found in this test environment)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, Any] = {}
    todo: list[tuple[str, frozenset[str]]] = [
        ("dataframer-reconciler", frozenset({"postgres"})),
        ("pip", frozenset()),
    ]
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if key in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a dependency for another platform or Python
        found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append((requirement.name, frozenset(requirement.extras)))
    found.pop("dataframer-reconciler")
    return list(found.values())


@dataclass
class Project:
    """The data team's repository on the forge."""

    forge: Forge
    path: str  # owner/name
    bare: Path
    sha: str
    seed: Path  # a clone, to push more commits from
    url: str

    def commit(self, files: dict[str, str | None], branch: str = "main") -> str:
        """Push a commit to `branch` (made from main's tip) that writes (None: deletes)
        `files`; main's new tip becomes `sha`."""
        env = git_env()
        git("checkout", "-q", "-B", branch, "main", cwd=self.seed, env=env)
        for name, text in files.items():
            target = self.seed / name
            if text is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
        git("add", "-A", cwd=self.seed, env=env)
        git("commit", "-q", "-m", f"change on {branch}", cwd=self.seed, env=env)
        git("push", "-q", "--force", self.url, branch, cwd=self.seed, env=env)
        sha = git("rev-parse", "HEAD", cwd=self.seed, env=env).strip()
        if branch == "main":
            self.sha = sha
        git("checkout", "-q", "main", cwd=self.seed, env=env)
        return sha

    def state_file(self) -> str | None:
        """dfr.state.json on the dfr-state branch, or None."""
        try:
            return self.forge.git(self.bare, "show", "dfr-state:dfr.state.json")
        except subprocess.CalledProcessError:
            return None

    def locked_by(self) -> str | None:
        try:
            return self.forge.git(self.bare, "show", "dfr-state:LOCKED_BY")
        except subprocess.CalledProcessError:
            return None


MakeProject = Callable[..., Project]


def runs_created(emulator: Emulator) -> int:
    return int(emulator.stats()["runs_created"])


def no_secret_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a secret reached the job's log: {secret[:4]}..."


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
