"""Fixtures of the guardrails tests (issue 9): a project folder, an emulator, a `dfr` runner.

The project lives in `tmp_path/repo`, which holds a `.git` folder so that the
search for `dfr.yaml` stops there, as it does in a real repository; the test
runs with that folder as its current directory. `DATAFRAMER_BASE_URL` and
`DATAFRAMER_API_KEY` point at an in-process emulator (`gr_emu`), and
`DFR_CONFIG` / `DFR_STATE` are unset. `gr_dfr(...)` runs `reconciler.cli.run`
in-process and checks that no traceback and no key reached the output.

Import the fixtures by name: `from guardrails_helpers import gr_dfr, gr_emu, gr_ws`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.emulator import Emulator, EmulatorConfig

KEY = "dfr-guardrails-test-key-5b2e9c"
SUPPORT = "3c90c3cc-0d44-4b50-8888-8dd25736052a"  # SUCCEEDED, versions 1-3
REVIEWS = "6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c"  # SUCCEEDED, versions 1-2
MEDICAL = "b2d4f6a8-1c3e-4a5b-8d7f-9e0a1b2c3d4e"  # PROCESSING
LEGAL = "d9e8f7a6-b5c4-4d3e-a2f1-0e9d8c7b6a5f"  # FAILED
UNKNOWN = "00000000-1111-4222-8333-444444444444"  # no such spec

FAST = {"pending_seconds": 0.05, "processing_seconds": 0.1}
POLL = "0.03s"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def lines(self, marker: str) -> list[str]:
        """Lines of stderr that contain `marker` (e.g. ': error: ')."""
        return [line for line in self.err.splitlines() if marker in line]


def manifest(
    name: str,
    *,
    spec_id: str = SUPPORT,
    samples: int = 10,
    version: int | None = 1,
    labels: dict[str, str] | None = None,
    extra: str = "",
) -> str:
    """One manifest document as text, in a fixed layout (line numbers are stable):

    1 apiVersion, 2 kind, 3 metadata:, 4 name, [5 labels:, one line per label],
    then spec:, spec_id, [spec_version], number_of_samples, then `extra` lines.
    """
    out = ["apiVersion: dataframer.ai/v1", "kind: GenerationRun", "metadata:", f"  name: {name}"]
    if labels:
        out.append("  labels:")
        out += [f"    {k}: {v}" for k, v in labels.items()]
    out += ["spec:", f"  spec_id: {spec_id}"]
    if version is not None:
        out.append(f"  spec_version: {version}")
    out.append(f"  number_of_samples: {samples}")
    text = "\n".join(out) + "\n"
    return text + extra


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / ".git").mkdir(parents=True)
        self.runs = root / "runs"
        self.runs.mkdir()

    def config(self, text: str, where: Path | None = None) -> Path:
        path = (where or self.root) / "dfr.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def write(self, name: str, text: str | None = None, **fields: Any) -> Path:
        """runs/NAME.yaml with `text`, or `manifest(NAME, **fields)`."""
        path = self.runs / f"{name}.yaml"
        path.write_text(text if text is not None else manifest(name, **fields), encoding="utf-8")
        return path

    def file(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path


Runner = Callable[..., Result]


@pytest.fixture
def gr_emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY, seed=9, **FAST)) as emulator:
        yield emulator


@pytest.fixture
def gr_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gr_emu: Emulator) -> Workspace:
    workspace = Workspace(tmp_path / "repo")
    monkeypatch.chdir(workspace.root)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", gr_emu.base_url)
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    for name in ("DFR_STATE", "DFR_CONFIG", "DFR_DEBUG", "GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    return workspace


@pytest.fixture
def gr_dfr(gr_ws: Workspace, capsys: pytest.CaptureFixture[str]) -> Runner:
    from reconciler.cli import run

    def runner(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        out, err = capsys.readouterr()
        for stream in (out, err):
            assert "Traceback" not in stream, stream
            assert "internal error" not in stream, stream
            assert KEY not in stream
        return Result(code, out, err)

    return runner


def apply_args(*extra: str) -> list[str]:
    return ["apply", "--auto-approve", "--poll-interval", POLL, *extra]


def count(emu: Emulator, kind: str) -> int:
    """Requests of one kind the emulator has answered: runs.create, specs.get, ..."""
    return int(emu.stats()["requests"].get(kind, 0))
