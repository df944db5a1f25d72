"""Fixtures of the state contract: each backend kind on a fresh state.

`subject` runs a test on the in-memory, file and PostgreSQL backends;
`persistent` on the two that keep a state beyond one process. The PostgreSQL
parameter uses the server of `tests/pg_server.py`: it skips without
DFR_TEST_POSTGRES_URL and fails without it in CI (DFR_TEST_POSTGRES_REQUIRED=1).
Each PostgreSQL test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import database_url, in_schema, sql
from state_subjects import FileSubject, MemorySubject, PostgresSubject, Subject


def _subject(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Subject]:
    if kind == "memory":
        yield MemorySubject(monkeypatch)
    elif kind == "file":
        yield FileSubject(tmp_path / "state", monkeypatch)
    else:
        url = database_url()
        schema = f"c_{uuid.uuid4().hex[:12]}"
        sql(url, f"CREATE SCHEMA {schema}")
        try:
            yield PostgresSubject(in_schema(url, schema), sql)
        finally:
            sql(url, f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["memory", "file", "postgres"])
def subject(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Subject]:
    yield from _subject(request.param, tmp_path, monkeypatch)


@pytest.fixture(params=["file", "postgres"])
def persistent(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Subject]:
    yield from _subject(request.param, tmp_path, monkeypatch)
