"""Helpers of the postgres backend tests (a module of its own: `conftest` names clash)."""

from __future__ import annotations

import sys
from pathlib import Path

# The reliability suite's harness: emulator processes, dfr subprocesses, invariants.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from pg_server import drop_workspace, sql
from reliability_harness import Workspace

from reconciler.state.model import State

__all__ = ["PgWorkspace", "drop_workspace", "sql"]


class PgWorkspace(Workspace):
    """The harness's workspace, with state in a postgres workspace instead of a file."""

    def __init__(self, root: Path, api_url: str, *, pg_url: str, name: str) -> None:
        super().__init__(root, api_url)
        self.pg_url = pg_url
        self.name = name

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = super().env(extra)
        env.pop("DFR_STATE", None)
        env.setdefault("DFR_BACKEND", self.pg_url)
        env.setdefault("DFR_WORKSPACE", self.name)
        return env

    def read_state(self) -> State:
        from reconciler.state.postgres import PostgresBackend

        return PostgresBackend(self.pg_url, self.name).read()
