"""Helpers of the postgres backend tests (a module of its own: `conftest` names clash)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# The reliability suite's harness: emulator processes, dfr subprocesses, invariants.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

import pytest
from pg_server import drop_workspace, sql
from reliability_harness import EmulatorProcess, Workspace

from reconciler.state.model import State

__all__ = [
    "PgWorkspace",
    "Started",
    "clear_settings",
    "drop_workspace",
    "in_process_dfr",
    "sql",
]

SETTINGS = ("DFR_BACKEND", "DFR_STATE", "DFR_WORKSPACE", "DFR_CONFIG")


def clear_settings(monkeypatch: pytest.MonkeyPatch, cwd: Path, *more: str) -> None:
    """No dfr setting (nor any of `more`) from outside the test; the working folder is `cwd`."""
    for name in (*SETTINGS, *more):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(cwd)


def in_process_dfr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`dfr ARGS` run in this process: its exit code, stdout and stderr."""
    from reconciler.cli import run

    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class PgWorkspace(Workspace):
    """The harness's workspace, with state in a postgres workspace instead of a file."""

    def __init__(self, root: Path, api_url: str, *, pg_url: str, name: str) -> None:
        super().__init__(root, api_url)
        self.pg_url = pg_url
        self.name = name

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = super().env(extra)
        env.pop("DFR_STATE", None)
        env.setdefault("DFR_BACKEND", self.pg_url)
        env.setdefault("DFR_WORKSPACE", self.name)
        return env

    def read_state(self) -> State:
        from reconciler.state.postgres import PostgresBackend

        return PostgresBackend(self.pg_url, self.name).read()


#: pg_started(manifests, **emulator_options): an emulator and one workspace on it.
Started = Callable[..., tuple[EmulatorProcess, PgWorkspace]]
