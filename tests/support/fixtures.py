"""The fixtures every suite shares (a pytest plugin: `pytest_plugins` in tests/conftest.py).

- `emu`: an in-process emulator on 127.0.0.1 with the tests' API key and a fast
  lifecycle; `@pytest.mark.emulator(**knobs)` (on a test or as a module's
  `pytestmark`) changes its `EmulatorConfig`.
- `ws`: the test's `Workspace`, the current directory, with `DATAFRAMER_BASE_URL`
  and `DATAFRAMER_API_KEY` pointing at `emu` and the variables that would change
  what dfr does unset; `@pytest.mark.repo` makes it a project in a git repository.
  At the end, no file under `tmp_path` (state, journal, backup, saved plans) may
  hold the key.
- `dfr(*args)`: runs `reconciler.cli.run` in this process -> `Result(code, out, err)`,
  checking that no traceback, internal error or key reached the output; it adds
  `--state` for the commands that read state (not in a repo; `state=None` leaves
  it out). stdin is not a terminal, as in CI.
- `start_emulator(**knobs)`: `python -m dfr_emulator` processes, every one
  killed at teardown; `workspace(emulator_process)`: a `Workspace` on one.
- `clock`: a `ManualClock`, for emulators whose time moves only by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from dfr_emulator import Emulator, ManualClock
from support import emulators, runner
from support.emulators import LIFECYCLE, EmulatorProcess
from support.runner import Result, Runner
from support.workspace import Workspace

#: Commands that take --state (the runner adds it).
_STATEFUL = {"plan", "apply", "refresh", "status", "import", "list", "show", "rm", "pull"}
#: Unset for every test: each would change what dfr does.
_UNSET = (
    "DFR_STATE",
    "DFR_CONFIG",
    "DFR_DEBUG",
    "DFR_PROGRESS_INTERVAL",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "NO_COLOR",
    "FORCE_COLOR",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator(**knobs): EmulatorConfig knobs of the emu fixture for these tests"
    )
    config.addinivalue_line(
        "markers",
        "repo: the ws fixture is a project in a git repository (tmp_path/repo, .git, "
        "manifests in runs/, state where dfr.yaml says)",
    )


@pytest.fixture
def emu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    marker = request.node.get_closest_marker("emulator")
    with emulators.emulator(**(marker.kwargs if marker else {})) as emulator:
        yield emulator


def api_key(emu: Emulator) -> str:
    """The key the emulator accepts (and dfr is given)."""
    return emu.config.api_key or emulators.KEY


@pytest.fixture
def ws(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emu: Emulator
) -> Iterator[Workspace]:
    repo = request.node.get_closest_marker("repo") is not None
    workspace = Workspace(tmp_path / "repo" if repo else tmp_path, emu.base_url, repo=repo)
    monkeypatch.chdir(workspace.root)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", emu.base_url)
    key = api_key(emu)  # the test may change the emulator's later
    monkeypatch.setenv("DATAFRAMER_API_KEY", key)
    yield workspace
    # The key is never written anywhere: state, journal, backup, saved plans.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"the API key leaked into {path}"


def with_state(args: Sequence[str | Path], state: str | Path | None) -> list[str]:
    """`args` with `--state STATE` after the command, if it reads state."""
    argv = [str(a) for a in args]
    if state is not None and argv:
        at = 2 if argv[0] == "state" else 1
        if len(argv) >= at and argv[at - 1] in _STATEFUL:
            argv[at:at] = ["--state", str(state)]
    return argv


@pytest.fixture
def dfr(ws: Workspace, emu: Emulator, capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run `dfr ARGS...` in this process: Result(code, out, err)."""
    secrets = (api_key(emu),)

    def run(*args: str | Path, state: str | Path | None = None if ws.repo else ws.state) -> Result:
        result = runner.in_process(with_state(args, state), capsys, secrets)
        ws.outputs.append(result.text)
        return result

    return run


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    """Start `python -m dfr_emulator` with knobs; every one is killed at teardown."""
    started: list[EmulatorProcess] = []

    def start(**knobs: Any) -> EmulatorProcess:
        emu = EmulatorProcess(**{**LIFECYCLE, **knobs})
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[EmulatorProcess], Workspace]:
    """A `Workspace` in tmp_path on an emulator process (dfr runs there as a process)."""

    def make(emu: EmulatorProcess) -> Workspace:
        return Workspace(tmp_path, emu.url)

    return make


@pytest.fixture
def clock() -> ManualClock:
    """Time that moves only when the test says so (an emulator built with it: `emu.advance`)."""
    return ManualClock()
