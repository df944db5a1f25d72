"""The bad-input corpus through the real CLI: `python -m reconciler validate` as a subprocess.

tests/corpus/bad/cases.yaml says, for every case, the exit status and every
diagnostic line. One test runs every case and reports every mismatch at once;
another reads the whole folder in one run and finds the errors of every file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.subproc import run_text

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "corpus" / "bad"
GOOD = (CORPUS / "bom-ok.yaml").read_bytes()[3:]  # a valid manifest (without its BOM)
NOBODY = 65534

EXPECT = re.compile(
    r"^(?:(?P<file>[^:\d][^:]*):)?(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<text>.+)$"
)
DIAGNOSTIC = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): ")


@dataclass
class Case:
    id: str
    args: list[str]
    exit: int
    expect: list[str]
    raw: dict[str, Any]
    cwd: Path = CORPUS
    as_user: int | None = None
    problems: list[str] = field(default_factory=list)


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]
    return cases


def expected_lines(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(prefix 'FILE:LINE:COL: SEVERITY: ', substring) for each expectation."""
    default = (raw.get("files") or [raw.get("file") or raw["args"][0]])[0]
    out = []
    for item in raw.get("expect") or []:
        m = EXPECT.match(item)
        assert m, f"bad expectation in cases.yaml: {item!r}"
        file = m["file"] or default
        out.append((f"{file}:{m['line']}:{m['col']}: {m['sev']}: ", m["text"]))
    return out


def run_dfr(
    args: list[str], cwd: Path, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("DFR_DEBUG", None)
    env.pop("GITHUB_ACTIONS", None)
    env.pop("GITLAB_CI", None)
    return run_text(
        [sys.executable, "-m", "reconciler", "validate", *args],
        cwd=cwd,
        env=env,
        timeout=60,
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
    )


# -- cases built at test time ---------------------------------------------------------------


def make_oversize(where: Path) -> None:
    padding = b"# padding\n" * (1024 * 1024 // 10 + 10)
    (where / "oversize.yaml").write_bytes(GOOD + padding)


def make_symlink_loop(where: Path) -> None:
    (where / "loop" / "sub").mkdir(parents=True)
    (where / "loop" / "sub" / "run.yaml").write_bytes(GOOD)
    (where / "loop" / "sub" / "back").symlink_to("..")


def make_broken_symlink(where: Path) -> None:
    (where / "dangling.yaml").symlink_to("nowhere.yaml")


def make_nonexistent(where: Path) -> None:
    pass


def make_unreadable_file(where: Path) -> None:
    (where / "locked.yaml").write_bytes(GOOD)
    (where / "locked.yaml").chmod(0)


def make_unreadable_dir(where: Path) -> None:
    (where / "locked" / "inner").mkdir(parents=True)
    (where / "locked" / "inner" / "hidden.yaml").write_bytes(GOOD)
    (where / "locked" / "inner").chmod(0)


MAKERS = {
    "oversize": make_oversize,
    "symlink-loop": make_symlink_loop,
    "broken-symlink": make_broken_symlink,
    "nonexistent": make_nonexistent,
    "unreadable-file": make_unreadable_file,
    "unreadable-dir": make_unreadable_dir,
}
NEEDS_PERMISSIONS = {"unreadable-file", "unreadable-dir"}


def _can_drop_to_nobody() -> bool:
    """As root, permission cases run as 'nobody' (root reads everything)."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import reconciler"],
            cwd="/",
            capture_output=True,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A scratch folder anyone can enter (permission cases may run as 'nobody')."""
    with tempfile.TemporaryDirectory(prefix="dfr-corpus-") as name:
        path = Path(name)
        path.chmod(0o755)
        try:
            yield path
        finally:
            for p in path.rglob("*"):  # let TemporaryDirectory remove what we locked
                if not p.is_symlink():
                    p.chmod(0o755)


def build_cases(work: Path, *, permissions: bool) -> list[Case]:
    """The cases (`permissions`: only those about unreadable paths; else all others)."""
    cases = []
    for raw in load_cases():
        if "make" in raw:
            name = raw["make"]
            if (name in NEEDS_PERMISSIONS) != permissions:
                continue
            user = NOBODY if permissions and os.geteuid() == 0 else None
            where = work / name
            where.mkdir()
            where.chmod(0o755)
            MAKERS[name](where)
            cases.append(
                Case(name, raw["args"], raw.get("exit", 1), [], raw, cwd=where, as_user=user)
            )
        elif not permissions:
            files = raw.get("files") or [raw["file"]]
            cases.append(Case(" ".join(files), files, raw.get("exit", 1), [], raw))
    return cases


def run_cases(cases: list[Case]) -> None:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        done = list(pool.map(check_case, cases))
    failures = [f"[{c.id}] " + "\n  ".join(c.problems) for c in done if c.problems]
    assert not failures, f"{len(failures)} of {len(done)} cases failed:\n\n" + "\n\n".join(failures)


def check_case(case: Case) -> Case:
    proc = run_dfr(case.args, case.cwd, case.as_user)
    out = proc.stdout + proc.stderr
    if "Traceback" in out or "internal error" in out:
        case.problems.append(f"crashed:\n{out}")
    if proc.returncode != case.exit:
        case.problems.append(f"exit {proc.returncode}, expected {case.exit}")
    if proc.stdout:
        case.problems.append(f"text output on stdout: {proc.stdout!r}")
    lines = [line for line in proc.stderr.splitlines() if DIAGNOSTIC.match(line)]
    wanted = expected_lines(case.raw)
    if len(lines) != len(wanted):
        case.problems.append(f"{len(lines)} diagnostics, expected {len(wanted)}")
    for (prefix, text), line in zip(wanted, lines, strict=False):
        if not (line.startswith(prefix) and text in line[len(prefix) :]):
            case.problems.append(f"expected {prefix}...{text}...\n     got {line}")
    for prefix, text in wanted[len(lines) :]:
        case.problems.append(f"missing {prefix}...{text}...")
    summary = proc.stderr.splitlines()[-1:] or [""]
    if not re.match(r"^\d+ manifests? in \d+ files?: ", summary[0]):
        case.problems.append(f"no summary line: {summary[0]!r}")
    if case.problems:
        case.problems.append(f"stderr was:\n{proc.stderr}")
    return case


def test_corpus_is_big_and_covers_every_file() -> None:
    cases = load_cases()
    named = {f for raw in cases for f in (raw.get("files") or [raw.get("file")]) if f}
    on_disk = {p.name for p in CORPUS.iterdir()} - {"cases.yaml"}
    assert named == on_disk, "every corpus file has a case, every case's file exists"
    assert len(on_disk) >= 40
    assert all(raw.get("why") for raw in cases)
    assert all(raw["make"] in MAKERS for raw in cases if "make" in raw)
    assert not any(p.stat().st_size > 64 * 1024 for p in CORPUS.iterdir())


def test_every_corpus_case_through_the_cli(work_dir: Path) -> None:
    cases = build_cases(work_dir, permissions=False)
    assert len(cases) >= 70
    run_cases(cases)


def test_unreadable_paths_through_the_cli(work_dir: Path) -> None:
    """Root reads everything: as root these run as 'nobody', or are skipped."""
    if os.geteuid() == 0 and not _can_drop_to_nobody():
        pytest.skip("running as root and cannot run the CLI as 'nobody'")
    cases = build_cases(work_dir, permissions=True)
    assert {c.id for c in cases} == NEEDS_PERMISSIONS
    run_cases(cases)


def test_whole_corpus_in_one_run_reports_every_file(tmp_path: Path) -> None:
    """All errors of all files: reading the folder finds what each file alone finds."""
    shutil.copytree(CORPUS, tmp_path / "bad")
    proc = run_dfr(["bad"], tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    lines = proc.stderr.splitlines()
    missing = []
    expected_count = 0
    for raw in load_cases():
        if "make" in raw or raw.get("directory") == "skipped":
            continue
        for prefix, text in expected_lines(raw):
            expected_count += 1
            full = "bad/" + prefix
            for name in raw.get("files") or [raw["file"]]:  # places named in messages
                text = text.replace(f" {name}:", f" bad/{name}:")
            if not any(line.startswith(full) and text in line for line in lines):
                missing.append(full + text)
    assert not missing, "\n".join(missing) + "\n\nstderr:\n" + proc.stderr
    # Files whose documents do not claim to be manifests are skipped in a folder,
    # silently; so is cases.yaml.
    for raw in load_cases():
        if raw.get("directory") == "skipped":
            assert f"bad/{raw['file']}:" not in proc.stderr
    assert "cases.yaml" not in proc.stderr
    diagnostics = [line for line in lines if DIAGNOSTIC.match(line)]
    assert len(diagnostics) == expected_count
    assert re.search(rf": {expected_count} errors, 0 warnings\.$", lines[-1])
