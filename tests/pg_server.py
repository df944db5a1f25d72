"""The PostgreSQL server of the tests: its URL, skipping or failing without one, plain SQL.

The server comes from DFR_TEST_POSTGRES_URL (`.ci/run` starts one on loopback
with `.ci/postgres.sh` and sets it). Without it a test that needs it skips with a
message saying how to run it; with DFR_TEST_POSTGRES_REQUIRED=1 (CI) a missing
server fails instead, so CI can never pass by skipping. Used by `tests/postgres`
and by the postgres parameter of the state contract (`tests/state`).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

ENV_URL = "DFR_TEST_POSTGRES_URL"
HOW = (
    f"set {ENV_URL}=postgresql://USER:PASSWORD@127.0.0.1:5432/DB to run the postgres backend "
    "tests (as root, `.ci/postgres.sh` installs and starts a loopback server and prints such "
    "a URL; `.ci/run` does this)"
)

_reached: set[str] = set()


def _required() -> bool:
    return os.environ.get("DFR_TEST_POSTGRES_REQUIRED", "") not in ("", "0")


def _unavailable(message: str) -> None:
    if _required():
        pytest.fail(message)
    pytest.skip(message)


def database_url() -> str:
    """The test server's URL, once it answered; else skip the test (fail it in CI)."""
    url = os.environ.get(ENV_URL)
    if not url:
        if _required():
            pytest.fail(f"{ENV_URL} is not set but DFR_TEST_POSTGRES_REQUIRED is: {HOW}")
        pytest.skip(HOW)
    if url in _reached:
        return url
    try:
        import psycopg
    except ImportError:
        _unavailable("psycopg is not installed: pip install -e '.[test]'")
        raise
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _unavailable(f"cannot reach the test database in {ENV_URL}: {exc}")
    _reached.add(url)
    return url


def in_schema(url: str, schema: str) -> str:
    """`url` with `schema` as its search_path (where the dfr_ tables go)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in its own autocommit connection; its rows (if any)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.encode(), params)
        return cur.fetchall() if cur.description else []


def drop_workspace(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('dfr_workspaces') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute("DELETE FROM dfr_workspaces WHERE name = %s", (name,))
            conn.execute("DELETE FROM dfr_locks WHERE workspace = %s", (name,))
