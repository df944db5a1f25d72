"""Fixtures of the recipe tests: a release build of dfr, a runner, a forge, the emulator.

- `release` (once per test session, shared by its workers): this working tree copied into a new git
  repository, tagged `v{the version the recipes pin}`, built with `python -m build`
  (sdist, then the wheel from the sdist), as the release workflow builds it.
- `runner_bin`: a virtual environment standing in for the runner's Python, whose
  package index is a folder holding that wheel (PIP_NO_INDEX, PIP_FIND_LINKS): the
  recipes' own `pip install dataframer-reconciler[postgres]==X.Y.Z` runs for real
  and finds exactly that release. dfr's dependencies come from this test
  environment (linked into one folder on its path), so no job downloads anything.
- `forge`: recipe_forge.Forge, and `project()`: a repository on it holding the
  project's example manifests in dataframer/, a dfr.yaml pointing at the emulator,
  and the recipe where users put it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from recipe_forge import Forge
from recipe_harness import Machine, git
from recipe_support import (
    CI,
    KEY,
    ROOT,
    MakeProject,
    Project,
    Release,
    build_release,
    dependencies,
    git_env,
    pinned_version,
)

from dfr_emulator import Emulator, EmulatorConfig


@contextmanager
def _shared(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A folder shared by the test processes of this session (pytest-xdist's workers),
    made by whichever comes first while the others wait on its lock."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    shared.joinpath(f"{name}.lock").touch()
    with open(shared / f"{name}.lock", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield shared / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    version = pinned_version()
    with _shared(tmp_path_factory, "release") as folder:
        done = folder / "done"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build_release(folder, version)
            done.touch()
        dist = folder / "dist"
        (sdist,) = dist.glob("*.tar.gz")
        (wheel,) = dist.glob("*.whl")
        return Release(version=version, dist=dist, sdist=sdist, wheel=wheel)


@pytest.fixture(scope="session")
def runner_bin(tmp_path_factory: pytest.TempPathFactory, release: Release) -> Path:
    """The runner's Python: a virtual environment holding the release's wheel, and
    dfr's dependencies and pip from this test environment (each linked into one
    folder on its path, so it sees those and nothing else, as a runner's fresh Python
    would); making it takes a fraction of a second and no job downloads anything."""
    with _shared(tmp_path_factory, "runner") as venv:
        if not (venv / "done").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run(
                [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
            )
            deps = venv / "deps"
            deps.mkdir()
            for dist in dependencies():
                base = Path(dist.locate_file(""))
                for entry in {Path(f).parts[0] for f in dist.files or ()}:
                    if entry != ".." and not (deps / entry).exists():
                        (deps / entry).symlink_to(base / entry)
            python = venv / "bin" / "python"
            site = subprocess.run(
                [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout.strip()
            Path(site, "runner-dependencies.pth").write_text(f"{deps}\n")
            for name in ("pip", "pip3"):  # as setup-python puts them on PATH
                script = venv / "bin" / name
                script.write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
                script.chmod(0o755)
            # Installed once here, so that jobs running at once do not install over each
            # other; the recipes' own install step then finds the pinned version there.
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-index",
                    "--no-deps",
                    str(release.wheel),
                ],
                check=True,
                timeout=300,
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
            )
            (venv / "done").touch()
        return venv / "bin"


@pytest.fixture
def machine(runner_bin: Path, release: Release) -> Machine:
    return Machine(
        path=f"{runner_bin}:/usr/local/bin:/usr/bin:/bin",
        env={
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(release.dist),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            # The emulator stores a run before it answers, so a submission lost with a
            # canceled job never lands late there: no need to wait out the grace period.
            "DFR_RECOVERY_GRACE": "0",
        },
    )


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    with Forge(tmp_path / "forge") as running:
        yield running


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(
        EmulatorConfig(
            api_key=KEY,
            pending_seconds=0.2,
            processing_seconds=0.5,
            spec_processing_seconds=0.5,  # the examples' Spec manifest, created by apply
        )
    ) as running:
        yield running


@pytest.fixture
def project(forge: Forge, emulator: Emulator, tmp_path: Path) -> MakeProject:
    def make(recipe: str, *, dfr_yaml: str = "", path: str = "acme/data") -> Project:
        bare = forge.create_repo(path)
        seed = tmp_path / "seed"
        shutil.copytree(ROOT / "examples" / "manifests", seed / "dataframer")
        (seed / "dfr.yaml").write_text(f"api_url: {emulator.base_url}\n{dfr_yaml}")
        target = ".github/workflows/dataframer.yml" if "github" in recipe else ".gitlab-ci.yml"
        (seed / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CI / recipe, seed / target)
        env = git_env()
        git("init", "-q", "-b", "main", cwd=seed, env=env)
        git("add", "-A", cwd=seed, env=env)
        git("commit", "-q", "-m", "manifests", cwd=seed, env=env)
        admin = forge.token("forge-admin-token", "write")
        url = f"http://x:{admin}@127.0.0.1:{forge.port}/{path}"
        git("push", "-q", url, "main", cwd=seed, env=env)
        sha = git("rev-parse", "HEAD", cwd=seed, env=env).strip()
        return Project(forge=forge, path=path, bare=bare, sha=sha, seed=seed, url=url)

    return make
