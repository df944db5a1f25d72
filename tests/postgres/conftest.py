"""Fixtures of the postgres backend tests: a real PostgreSQL server, one workspace per test.

The server comes from DFR_TEST_POSTGRES_URL (see `tests/pg_server.py`): without
it every test here skips with a message saying how to run them; with
DFR_TEST_POSTGRES_REQUIRED=1 (CI) a missing server fails instead, so CI can
never pass by skipping them.

Each test gets its own workspace name (and, where it needs one, its own schema),
removed afterwards, so tests do not collide and run under xdist.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_helpers import PgWorkspace, Started, drop_workspace, sql
from pg_server import database_url, in_schema
from reliability_harness import EmulatorProcess


@pytest.fixture(scope="session")
def pg_url() -> str:
    return database_url()


@pytest.fixture
def ws_name(pg_url: str) -> Iterator[str]:
    """A workspace name no other test uses; its rows are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    drop_workspace(pg_url, name)


@pytest.fixture
def fresh_schema(pg_url: str) -> Iterator[str]:
    """A URL whose search_path is a new, empty schema (dropped afterwards)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sql(pg_url, f"CREATE SCHEMA {schema}")
    yield in_schema(pg_url, schema)
    sql(pg_url, f"DROP SCHEMA {schema} CASCADE")


# start_emulator: the shared fixture of tests/support/fixtures.py.


@pytest.fixture
def pg_workspace(tmp_path: Path, pg_url: str, ws_name: str) -> Callable[..., PgWorkspace]:
    """PgWorkspace(emulator, clone=...) in tmp_path/clone, all on this test's workspace."""

    def make(emu: EmulatorProcess, clone: str = "repo") -> PgWorkspace:
        root = tmp_path / clone
        root.mkdir(exist_ok=True)
        return PgWorkspace(root, emu.url, pg_url=pg_url, name=ws_name)

    return make


@pytest.fixture
def pg_started(
    start_emulator: Callable[..., EmulatorProcess], pg_workspace: Callable[..., PgWorkspace]
) -> Started:
    """(emulator, workspace): an emulator started with OPTIONS, a workspace on it with
    `manifests` manifests written."""

    def make(manifests: int, **options: Any) -> tuple[EmulatorProcess, PgWorkspace]:
        emu = start_emulator(**options)
        ws = pg_workspace(emu)
        ws.write_manifests(manifests)
        return emu, ws

    return make
