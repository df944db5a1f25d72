"""Spec records on a real PostgreSQL workspace: one row each in `dfr_specs` (schema 4).

What `put_spec` means on every backend is in `tests/state/test_contract.py`; here,
what only a database shows: each spec change is one transaction with the serial's
compare-and-set, a hand-edited row is refused like a corrupt file, and a database
of schema version 3 (no specs table) is read as it is and upgraded by the next write.
"""

from __future__ import annotations

import json

import pytest
from pg_helpers import sql
from state_records import sample, spec_sample

from reconciler.errors import StateConflictError, StateCorruptError, StateError
from reconciler.state.pgschema import MIGRATIONS, SCHEMA_VERSION
from reconciler.state.postgres import PostgresBackend


def test_a_spec_is_one_row_written_with_the_serial_cas(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("test") as store:
        store.put(sample("a"))
        store.put_spec(spec_sample("tickets"))
        rows = sql(
            pg_url,
            "SELECT name, serial, record->>'spec_id' FROM dfr_specs WHERE workspace = %s",
            (ws_name,),
        )
        assert rows == [("tickets", 2, "spec-1")]
        sql(pg_url, "UPDATE dfr_workspaces SET serial = serial + 1 WHERE name = %s", (ws_name,))
        with pytest.raises(StateConflictError, match="changed by another writer"):
            store.put_spec(spec_sample("tickets", "spec-2"))
        with pytest.raises(StateError, match="an earlier write failed"):
            store.remove_spec("tickets")
    assert backend.read().specs["tickets"].spec_id == "spec-1"


def test_a_hand_edited_spec_row_is_refused(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("test") as store:
        store.put_spec(spec_sample("tickets"))
    ((text,),) = sql(pg_url, "SELECT record::text FROM dfr_specs WHERE workspace = %s", (ws_name,))
    bad = {**json.loads(text), "versions": [{"number": 0, "by_dfr": True}]}
    sql(pg_url, "UPDATE dfr_specs SET record = %s WHERE workspace = %s", (json.dumps(bad), ws_name))
    with pytest.raises(StateCorruptError, match=r"specs\.tickets\.versions\[0\]\.number"):
        backend.read()


def test_a_schema_3_database_reads_without_specs_and_the_next_write_upgrades_it(
    fresh_schema: str,
) -> None:
    assert SCHEMA_VERSION >= 4 and "dfr_specs" in " ".join(MIGRATIONS[4])
    backend = PostgresBackend(fresh_schema, "w")
    with backend.lock("test") as store:
        store.put(sample("a"))
    # Back to schema version 3, as an older dfr left it.
    sql(fresh_schema, "DROP TABLE dfr_specs")
    sql(fresh_schema, "DELETE FROM dfr_schema_version WHERE version >= 4")
    state = PostgresBackend(fresh_schema, "w").read()
    assert set(state.runs) == {"a"} and state.specs == {}
    with PostgresBackend(fresh_schema, "w").lock("apply") as store:
        store.put_spec(spec_sample("tickets"))
    assert PostgresBackend(fresh_schema, "w").read().specs["tickets"] == spec_sample("tickets")
