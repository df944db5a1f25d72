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
from support.subproc import run_text

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


def try_repo(
    project: Path, hook_repo: Path, home: Path, *, all_files: bool = True
) -> subprocess.CompletedProcess[str]:
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
    return run_text(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(hook_repo),
            "dfr-validate",
            *(["--all-files"] if all_files else []),
            "--color",
            "never",
        ],
        cwd=project,
        env=env,
        timeout=600,
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


def named(name: str, samples: int = 100) -> str:
    return GOOD.replace("name: good", f"name: {name}").replace("100", str(samples))


def hook_output(result: subprocess.CompletedProcess[str]) -> str:
    out = result.stdout + result.stderr
    if "An unexpected error has occurred" in out:
        pytest.fail(f"pre-commit could not install the hook (network?):\n{out}")
    assert "Traceback" not in out
    return out


def test_a_staged_manifest_reusing_a_committed_name_fails_the_commit(
    project: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    """On a normal commit only the staged files are passed: the clash with a file
    committed earlier used to pass unnoticed."""
    git("rm", "-q", "--cached", "manifests/bad.yaml", cwd=project)
    (project / "manifests" / "bad.yaml").write_text(BAD)  # broken, but not staged
    git("commit", "-q", "--no-verify", "-m", "good", cwd=project)
    (project / "manifests" / "team").mkdir()
    (project / "manifests" / "team" / "again.yaml").write_text(named("good"))
    git("add", "manifests/team/again.yaml", cwd=project)
    out = hook_output(try_repo(project, hook_repo, pre_commit_home, all_files=False))
    assert "Failed" in out, out
    assert (
        "manifests/team/again.yaml:4:9: error: metadata.name 'good' is also used by the "
        "manifest at manifests/good.yaml:4:9; names must be unique across all manifests"
    ) in out, out
    assert "manifests/bad.yaml" not in out  # not staged: not this commit's problem


def test_all_files_in_parallel_batches_still_see_every_duplicate(
    project: Path, hook_repo: Path, pre_commit_home: Path
) -> None:
    """With --all-files pre-commit split the files into batches run in parallel, and a
    name used in two batches passed."""
    git("rm", "-q", "-f", "manifests/bad.yaml", cwd=project)
    folder = project / "manifests"
    for i in range(12):
        (folder / f"run-{i:02d}.yaml").write_text(named(f"run-{i:02d}"))
    (folder / "zz-last.yaml").write_text(named("run-00"))
    git("add", "-A", cwd=project)
    result = try_repo(project, hook_repo, pre_commit_home)
    out = hook_output(result)
    assert result.returncode == 1, out
    assert "metadata.name 'run-00' is" in out and "manifests/zz-last.yaml" in out, out


# -- the hook's command in this process (fast): what it reads, what it reports ----------


def hook(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    from reconciler.cli.precommit import run

    capsys.readouterr()
    code = run(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err
    return code, out + err


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("DFR_CONFIG", "DFR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".git").mkdir()  # the project file is looked for up to here
    return tmp_path


def test_roots_are_the_manifest_folders_above_the_files() -> None:
    from reconciler.commands.precommit import manifest_roots

    assert manifest_roots(
        [
            "manifests/a.yaml",
            "manifests/team/b.yaml",
            "x/dataframer/c/d.yml",
            "top.yaml",
            "y/z.yaml",
        ]
    ) == ["manifests", "x/dataframer", ".", "y"]


def test_dfr_yaml_folders_are_the_name_space(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "dfr.yaml").write_text("manifests: [runs]\n")
    for folder, name in (("runs/a", "same"), ("runs/b", "same"), ("runs/c", "broken")):
        (repo / folder).mkdir(parents=True)
        text = named(name, 0 if name == "broken" else 5)
        (repo / folder / "m.yaml").write_text(text)
    code, text = hook(capsys, "runs/a/m.yaml")
    assert code == 1, text
    assert (
        "runs/a/m.yaml:4:9: error: metadata.name 'same' is also used by the manifest at "
        "runs/b/m.yaml:4:9; names must be unique across all manifests"
    ) in text
    assert "runs/b" not in text.split("also used", 1)[1].split("\n", 1)[1]
    assert "runs/c" not in text  # not given: its error is not this commit's
    code, text = hook(capsys, "runs/c/m.yaml")
    assert code == 1 and "runs/c/m.yaml:7:22: error" in text and "same" not in text


def test_two_given_files_with_one_name_get_one_error_as_validate_gives(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "manifests").mkdir()
    (repo / "manifests" / "a.yaml").write_text(named("same"))
    (repo / "manifests" / "b.yaml").write_text(named("same"))
    code, text = hook(capsys, "manifests/a.yaml", "manifests/b.yaml")
    assert code == 1
    assert text.count("error:") == 1
    assert "manifests/b.yaml:4:9: error: metadata.name 'same' is already used by" in text
    code, text = hook(capsys, "manifests/a.yaml")
    assert code == 1 and "manifests/a.yaml:4:9: error: metadata.name 'same' is also used" in text


def test_a_file_named_like_an_option_is_a_file(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "manifests").mkdir()
    (repo / "manifests" / "--config=x.yaml").write_text(named("odd"))
    (repo / "-q.yaml").write_text("not: [yaml\n")
    code, text = hook(capsys, "--skip-non-manifests", "manifests/--config=x.yaml")
    assert code == 0, text
    code, text = hook(capsys, "-q.yaml", "manifests/--config=x.yaml")
    assert code == 1 and "-q.yaml:2:1: error: invalid YAML" in text, text


def test_a_clean_commit_passes_quietly(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "manifests").mkdir()
    (repo / "manifests" / "a.yaml").write_text(named("a"))
    (repo / "manifests" / "b.yaml").write_text(named("b", 0))  # broken, not given
    code, text = hook(capsys, "manifests/a.yaml")
    assert code == 0 and text == "", text
