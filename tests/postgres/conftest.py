"""Fixtures of the postgres backend tests: a real PostgreSQL server, one workspace per test.

The server comes from DFR_TEST_POSTGRES_URL (`.ci/run` starts one on loopback
with `.ci/postgres.sh` and sets it). Without it every test here skips with a
message saying how to run them; with DFR_TEST_POSTGRES_REQUIRED=1 (CI) a
missing server fails instead, so CI can never pass by skipping them.

Each test gets its own workspace name (and, where it needs one, its own schema),
removed afterwards, so tests do not collide and run under xdist.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_helpers import PgWorkspace, drop_workspace, sql
from reliability_harness import LIFECYCLE, EmulatorProcess

ENV_URL = "DFR_TEST_POSTGRES_URL"
HOW = (
    f"set {ENV_URL}=postgresql://USER:PASSWORD@127.0.0.1:5432/DB to run the postgres backend "
    "tests (as root, `.ci/postgres.sh` installs and starts a loopback server and prints such "
    "a URL; `.ci/run` does this)"
)


def _required() -> bool:
    return os.environ.get("DFR_TEST_POSTGRES_REQUIRED", "") not in ("", "0")


@pytest.fixture(scope="session")
def pg_url() -> str:
    url = os.environ.get(ENV_URL)
    if not url:
        if _required():
            pytest.fail(f"{ENV_URL} is not set but DFR_TEST_POSTGRES_REQUIRED is: {HOW}")
        pytest.skip(HOW)
    try:
        import psycopg
    except ImportError:
        message = "psycopg is not installed: pip install -e '.[test]'"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        message = f"cannot reach the test database in {ENV_URL}: {exc}"
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    return url


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
    separator = "&" if "?" in pg_url else "?"
    yield f"{pg_url}{separator}options=-csearch_path%3D{schema}"
    sql(pg_url, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    """`python -m reconciler.emulator` processes, every one killed at teardown."""
    started: list[EmulatorProcess] = []

    def start(**knobs: Any) -> EmulatorProcess:
        emu = EmulatorProcess(**{**LIFECYCLE, **knobs})
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def pg_workspace(tmp_path: Path, pg_url: str, ws_name: str) -> Callable[..., PgWorkspace]:
    """PgWorkspace(emulator, clone=...) in tmp_path/clone, all on this test's workspace."""

    def make(emu: EmulatorProcess, clone: str = "repo") -> PgWorkspace:
        root = tmp_path / clone
        root.mkdir(exist_ok=True)
        return PgWorkspace(root, emu.url, pg_url=pg_url, name=ws_name)

    return make
