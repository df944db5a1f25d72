"""The postgres backend against a real server: workspaces, schema, CAS, sessions, secrets.

What every backend promises (reads, writes, serials, locks and their holders,
force-unlock, killed holders, corruption and a newer dfr refused) is in
`tests/state/test_contract.py` and `test_contract_processes.py`, which run on a
PostgreSQL workspace too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest
from pg_helpers import sql
from state_holder import Holder

from reconciler.errors import (
    StateConflictError,
    StateError,
    StateLockedError,
)
from reconciler.state.model import RunRecord
from reconciler.state.postgres import (
    SCHEMA_VERSION,
    PostgresBackend,
    PostgresStore,
    redact,
)


def _holder(url: str, workspace: str) -> Holder:
    return Holder(["postgres", url, workspace])


def _record(name: str, **fields: Any) -> RunRecord:
    return RunRecord.new(name, spec={"spec_id": "s", "number_of_samples": 10}, **fields)


# --------------------------------------------------------------------------- basics


def test_workspaces_are_separate_states(pg_url: str, ws_name: str) -> None:
    one, two = PostgresBackend(pg_url, ws_name), PostgresBackend(pg_url, ws_name + "-b")
    try:
        with one.lock("apply") as s1, two.lock("apply") as s2:  # different locks
            s1.put(_record("x"))
            s2.put(_record("y"))
        assert set(one.read().runs) == {"x"} and set(two.read().runs) == {"y"}
        assert one.read().lineage != two.read().lineage
    finally:
        from pg_helpers import drop_workspace

        drop_workspace(pg_url, ws_name + "-b")


def test_invalid_workspace_name(pg_url: str) -> None:
    with pytest.raises(StateError, match="invalid workspace name"):
        PostgresBackend(pg_url, "; DROP TABLE x")


# --------------------------------------------------------------------------- schema


def test_schema_created_on_first_use_once_even_when_raced(fresh_schema: str) -> None:
    backend = PostgresBackend(fresh_schema, "default")
    # Reading creates nothing (a read-only role can read an empty database).
    assert backend.read().serial == 0
    assert sql(fresh_schema, "SELECT to_regclass('dfr_workspaces') IS NULL") == [(True,)]
    errors: list[BaseException] = []

    def first_use(i: int) -> None:
        try:
            with PostgresBackend(fresh_schema, f"w{i}").lock("apply") as store:
                store.put(_record(f"r{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sql(fresh_schema, "SELECT version FROM dfr_schema_version ORDER BY 1") == [
        (v,) for v in range(1, SCHEMA_VERSION + 1)
    ]
    assert len(sql(fresh_schema, "SELECT name FROM dfr_workspaces")) == 6


def test_a_version_1_database_is_read_as_it_is_and_upgraded_by_the_first_write(
    fresh_schema: str,
) -> None:
    from reconciler.state.postgres import MIGRATIONS

    for statement in MIGRATIONS[1]:
        sql(fresh_schema, statement)
    sql(fresh_schema, "INSERT INTO dfr_schema_version (version, dfr_version) VALUES (1, '0')")
    sql(
        fresh_schema,
        "INSERT INTO dfr_workspaces (name, lineage, serial, format_version, dfr_version) "
        "VALUES ('default', 'lin-1', 1, 1, '0')",
    )
    from reconciler.state import statefile

    record, _ = statefile.canonical_record(_record("a", run_id="run-a"))
    sql(fresh_schema, "INSERT INTO dfr_runs VALUES ('default', 'a', %s, 1)", (record,))
    backend = PostgresBackend(fresh_schema, "default")
    assert backend.read().runs["a"].run_id == "run-a"
    # Reading changed nothing (a role that may only read can read).
    assert sql(fresh_schema, "SELECT max(version) FROM dfr_schema_version") == [(1,)]
    with backend.lock("apply") as store:
        store.put(_record("b"))
    assert sql(fresh_schema, "SELECT max(version) FROM dfr_schema_version") == [(SCHEMA_VERSION,)]
    assert set(backend.read().runs) == {"a", "b"}


def test_a_missing_schema_in_search_path_is_a_clear_error(pg_url: str) -> None:
    url = pg_url + ("&" if "?" in pg_url else "?") + "options=-csearch_path%3Dno_such_schema"
    with pytest.raises(StateError, match="no schema") as info:
        PostgresBackend(url, "default").lock("apply").__enter__()
    assert info.value.hint


# --------------------------------------------------------------------------- CAS


def _raw_store(backend: PostgresBackend) -> PostgresStore:
    """A Store on its own connection, *without* the lock: two of these race."""
    conn = backend._connect()
    backend.ensure_schema(conn)
    return PostgresStore(backend, conn, backend._load(conn, SCHEMA_VERSION)[0], "raw")


def test_compare_and_set_fails_the_writer_that_lost_the_race(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("apply") as store:
        store.put(_record("base"))
    one, two = _raw_store(backend), _raw_store(backend)  # both read serial 1
    try:
        one.put(_record("from-one", run_id="run-1"))
        with pytest.raises(StateConflictError, match="changed by another writer"):
            two.put(_record("from-two", run_id="run-2"))
        # The loser wrote nothing and stops writing; the winner's change stands.
        with pytest.raises(StateError, match="earlier write failed"):
            two.put(_record("again"))
        state = backend.read()
        assert state.serial == 2 and set(state.runs) == {"base", "from-one"}
    finally:
        one._conn.close()
        two._conn.close()


def test_compare_and_set_on_a_new_workspace(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    one, two = _raw_store(backend), _raw_store(backend)  # both: empty, own lineage
    try:
        one.put(_record("a"))
        with pytest.raises(StateConflictError):
            two.put(_record("b"))
        assert backend.read().lineage == one.state.lineage
    finally:
        one._conn.close()
        two._conn.close()


# --------------------------------------------------------------------------- lock


def test_force_unlock_ends_the_holders_session_so_it_can_write_no_more(
    pg_url: str, ws_name: str
) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    holder = _holder(pg_url, ws_name)
    lock_id = holder.lock_id
    try:
        # The holder runs on this host and is alive: refused (the policy is the
        # contract's, tests/state); as if it ran on another machine that is gone:
        with pytest.raises(StateError, match="still running"):
            backend.force_unlock(lock_id)
        sql(
            pg_url,
            "UPDATE dfr_locks SET info = json_build_object('id', lock_id, 'pid', 1, "
            "'hostname', 'elsewhere') WHERE workspace = %s",
            (ws_name,),
        )
        backend.force_unlock(lock_id)
        # Its session is gone: the orphaned holder can no longer write.
        reply = holder.ask("put late")
        assert reply.startswith("error StateError"), reply
        assert sql(pg_url, "SELECT lock_id FROM dfr_locks WHERE workspace = %s", (ws_name,)) == []
        with backend.lock("apply") as store:
            assert "late" not in store.state.runs
        with pytest.raises(StateError, match="not locked"):
            backend.force_unlock(lock_id)
    finally:
        holder.end()


# --------------------------------------------------------------------------- secrets

SECRET = "Wr0ng-S3cret!pw"


def test_the_password_is_never_in_a_message(pg_url: str, ws_name: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(pg_url)
    host, port, db = params.get("host"), params.get("port", "5432"), params.get("dbname")
    user = params.get("user", "dfr")
    urls = [
        f"postgresql://{user}:{SECRET.replace('!', '%21')}@{host}:{port}/{db}",  # wrong password
        f"postgresql://{user}:{SECRET}@127.0.0.1:1/{db}",  # nothing listening
        f"postgres://{user}@{host}:{port}/{db}?password={SECRET}&connect_timeout=5",
        f"postgresql://{user}:{SECRET}@{host}:{port}/no_such_db_{ws_name[-6:]}",
    ]
    for url in urls:
        backend = PostgresBackend(url, ws_name)
        assert SECRET not in backend.describe() and "%21" not in backend.describe()
        for attempt in (backend.read, lambda b=backend: b.lock("apply").__enter__()):
            with pytest.raises(StateError) as info:
                attempt()
            text = f"{info.value} {info.value.hint or ''}"
            assert SECRET not in text and "S3cret" not in text, text
            assert str(host) in text or "127.0.0.1" in text, text  # names the server
    assert redact(f"x postgresql://u:{SECRET}@h/db y") == "x postgresql://u:***@h/db y"
    assert SECRET not in redact(f"host=h password={SECRET} dbname=d")
    assert SECRET not in redact(f"postgres://u@h/db?sslmode=require&password={SECRET}")


def test_the_password_is_not_in_cli_output(pg_url: str, ws_name: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(pg_url)
    url = f"postgresql://{params.get('user')}:{SECRET}@127.0.0.1:1/{params.get('dbname')}"
    for args in (["status"], ["state", "list", "--json"], ["state", "rm", "x"]):
        proc = subprocess.run(
            [sys.executable, "-m", "reconciler", *args, "--backend", url],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("DFR_")},
        )
        assert proc.returncode == 1
        assert "cannot connect" in proc.stderr and "127.0.0.1" in proc.stderr, proc.stderr
        assert SECRET not in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr


def test_the_password_is_not_in_messages_of_a_working_backend(pg_url: str, ws_name: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    password = conninfo_to_dict(pg_url).get("password")
    backend = PostgresBackend(pg_url, ws_name)
    holder = _holder(pg_url, ws_name)
    try:
        with pytest.raises(StateLockedError) as info, backend.lock("apply"):
            pass
    finally:
        holder.end()
    for text in (backend.describe(), str(info.value), json.dumps(backend.read().lineage)):
        if password:
            assert f":{password}@" not in text
