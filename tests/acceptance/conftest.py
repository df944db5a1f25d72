"""Shared fixtures of the engine's end-to-end tests: the real CLI against a real emulator.

Each test gets an in-process emulator on 127.0.0.1 with a fast lifecycle and an
API key, `DATAFRAMER_BASE_URL` / `DATAFRAMER_API_KEY` pointing at it, a working
directory in `tmp_path`, a manifest writer and a `dfr(...)` runner that calls
`reconciler.cli.run` in this process and returns (exit code, stdout, stderr).

Every call through the runner checks that no traceback and no API key reached
stdout or stderr; at the end of each test, no file under `tmp_path` (state,
journal, backup, saved plans) holds the key either.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.emulator import SPEC_SUPPORT_TICKETS, Emulator, EmulatorConfig

KEY = "dfr-engine-acceptance-key-8e1f4c2a"
#: Fast enough to finish within a few polls, slow enough to be seen PENDING first.
FAST = {"pending_seconds": 0.05, "processing_seconds": 0.15}
POLL = "0.03s"

#: Commands that take --state (the runner adds it).
_STATEFUL = {"plan", "apply", "refresh", "status", "import", "list", "show", "rm"}


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.code, self.out, self.err))

    @property
    def text(self) -> str:
        return self.out + self.err


def spec(**fields: Any) -> dict[str, Any]:
    """A valid spec: the support-tickets seed spec, 10 samples, plus `fields`."""
    return {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 10, **fields}


def manifest_doc(name: str, spec_: dict[str, Any], labels: dict[str, str] | None = None) -> dict:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": metadata,
        "spec": spec_,
    }


class Workspace:
    """The test's files: manifests under `manifests/`, state in `dfr.state.json`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests = root / "manifests"
        self.manifests.mkdir()
        self.state = root / "dfr.state.json"

    def write(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        **fields: Any,
    ) -> Path:
        """Write manifest `name` (one file per name) with `spec(**fields)`."""
        return self.write_spec(name, spec(**fields), labels)

    def write_spec(
        self, name: str, spec_: dict[str, Any], labels: dict[str, str] | None = None
    ) -> Path:
        path = self.manifests / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest_doc(name, spec_, labels), sort_keys=False))
        return path

    def remove(self, name: str) -> None:
        (self.manifests / f"{name}.yaml").unlink()

    def state_doc(self) -> dict[str, Any]:
        """The state as `dfr state show --json` would see it: read via the backend."""
        from reconciler.state.local import LocalBackend
        from reconciler.state.statefile import state_to_dict

        return state_to_dict(LocalBackend(self.state).read())

    def record(self, name: str) -> dict[str, Any]:
        runs: dict[str, Any] = self.state_doc()["runs"]
        return dict(runs[name])

    def run_ids(self) -> dict[str, str | None]:
        return {name: r.get("run_id") for name, r in self.state_doc()["runs"].items()}


Runner = Callable[..., Result]


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY, seed=3, **FAST)) as emulator:
        yield emulator


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Emulator) -> Iterator[Workspace]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", emu.base_url)
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    for name in ("DFR_STATE", "DFR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    workspace = Workspace(tmp_path)
    yield workspace
    # The key is never written anywhere: state, journal, backup, saved plans.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the API key leaked into {path}"


@pytest.fixture
def dfr(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run `dfr ARGS...` in this process: Result(code, out, err).

    `--state` is added for the commands that read state (pass `state=None` to
    leave it out). stdin is not a terminal, as in CI.
    """
    from reconciler.cli import run

    def runner(*args: str, state: str | Path | None = ws.state) -> Result:
        argv = [str(a) for a in args]
        if state is not None and argv:
            at = 2 if argv[0] == "state" else 1
            if len(argv) >= at and argv[at - 1] in _STATEFUL:
                argv[at:at] = ["--state", str(state)]
        capsys.readouterr()
        code = run(argv)
        out, err = capsys.readouterr()
        for stream in (out, err):
            assert "Traceback" not in stream, stream
            assert KEY not in stream, "the API key reached the output"
        return Result(code, out, err)

    return runner


def apply_args(*extra: str) -> list[str]:
    """`apply --auto-approve --poll-interval POLL` plus `extra`, on the manifests folder."""
    return ["apply", "--auto-approve", "--poll-interval", POLL, *extra]


# -- emulator observations ------------------------------------------------------------


def posts(emu: Emulator) -> int:
    """Create-run POSTs the emulator has seen."""
    return int(emu.stats()["requests"].get("runs.create", 0))


def cancels(emu: Emulator) -> int:
    return int(emu.stats()["requests"].get("runs.cancel", 0))


def requests(emu: Emulator) -> int:
    return int(emu.stats()["requests_total"])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` every 10 ms until true (or fail after `timeout`)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def emu_status(emu: Emulator, run_id: str) -> str | None:
    run = emu.run(run_id)
    return None if run is None else str(run["status"])


def parse_json(text: str) -> Any:
    """stdout must be exactly one JSON document."""
    return json.loads(text)
