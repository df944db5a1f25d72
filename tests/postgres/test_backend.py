"""The postgres backend against a real server: CAS, locks, durability, schema, secrets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from pg_helpers import sql

from reconciler.errors import (
    StateConflictError,
    StateCorruptError,
    StateError,
    StateLockedError,
    StateVersionError,
)
from reconciler.state.model import Intent, RunRecord
from reconciler.state.postgres import (
    SCHEMA_VERSION,
    PostgresBackend,
    PostgresStore,
    redact,
)

#: A child that takes the lock, says so, then obeys commands on stdin.
HOLDER = r"""
import sys
from reconciler.state.postgres import PostgresBackend
from reconciler.state.model import RunRecord, Intent
backend = PostgresBackend(sys.argv[1], sys.argv[2])
with backend.lock(sys.argv[3]) as store:
    print("locked", store.lock_id, flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        try:
            if command == "put":
                store.put(RunRecord.new(arg, intent=Intent.new({"name": arg})))
                print("ok", arg, flush=True)
            elif command == "release":
                break
        except Exception as exc:
            print("error", type(exc).__name__, exc, flush=True)
print("released", flush=True)
"""


def _holder(url: str, workspace: str, operation: str = "apply") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, workspace, operation],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("locked "):
        proc.kill()
        raise AssertionError(f"holder did not lock: {line!r} {proc.communicate()[1]}")
    proc.lock_id = line.split()[1]  # type: ignore[attr-defined]
    return proc


def _tell(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def _record(name: str, **fields: Any) -> RunRecord:
    return RunRecord.new(name, spec={"spec_id": "s", "number_of_samples": 10}, **fields)


# --------------------------------------------------------------------------- basics


def test_round_trip_of_records_intents_and_odd_values(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    assert backend.read().serial == 0
    intent = Intent.new({"spec_id": "s", "number_of_samples": 10})
    with backend.lock("apply") as store:
        store.put(_record("a", intent=intent))
        store.put(_record("b", run_id="run-b", status="IN_PROGRESS", total_cost=0.1))
        store.put(_record("c", last_error={"message": "NUL \x00 and \u2603"}))
        store.remove("c")
        lineage = store.state.lineage
    state = backend.read()
    assert (state.serial, state.lineage) == (4, lineage)
    assert state.runs["a"].intent == intent
    assert state.runs["b"].status == "PROCESSING" and state.runs["b"].total_cost == 0.1
    assert "c" not in state.runs
    # A second session continues the same numbering and lineage.
    with backend.lock("apply") as store:
        assert store.state == state
        store.put(_record("c", last_error={"message": "NUL \x00"}))
    again = backend.read()
    assert again.serial == 5 and again.runs["c"].last_error == {"message": "NUL \x00"}


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


def test_a_newer_schema_is_refused(fresh_schema: str) -> None:
    backend = PostgresBackend(fresh_schema, "default")
    with backend.lock("apply") as store:
        store.put(_record("a"))
    sql(
        fresh_schema,
        "INSERT INTO dfr_schema_version (version, dfr_version) VALUES (%s, '99')",
        (SCHEMA_VERSION + 1,),
    )
    for attempt in (backend.read, lambda: backend.lock("apply").__enter__()):
        with pytest.raises(StateVersionError, match="upgrade dfr"):
            attempt()


def test_a_corrupt_record_is_named_and_never_opened_for_writing(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("apply") as store:
        store.put(_record("a", run_id="run-a"))
    sql(
        pg_url,
        'UPDATE dfr_runs SET record = \'{"name": "a", "run_id": 7}\' WHERE workspace = %s',
        (ws_name,),
    )
    with pytest.raises(StateCorruptError, match=r"runs\.a"):
        backend.read()
    with pytest.raises(StateCorruptError), backend.lock("apply"):
        pytest.fail("a Store opened on a corrupt state")


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


def test_second_locker_fails_fast_naming_the_holder_and_sigkill_frees_it(
    pg_url: str, ws_name: str
) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    holder = _holder(pg_url, ws_name)
    try:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as info, backend.lock("apply"):
            pass
        assert time.monotonic() - started < 2
        message = str(info.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message
        assert f"lock id {holder.lock_id}" in message  # type: ignore[attr-defined]
        assert "dfr apply since" in message
        assert backend.lock_holder()["pid"] == holder.pid  # type: ignore[index]
        # With a timeout it waits that long, then names the holder too.
        started = time.monotonic()
        with (
            pytest.raises(StateLockedError, match=f"pid {holder.pid}"),
            backend.lock("apply", timeout=0.5),
        ):
            pass
        assert 0.4 < time.monotonic() - started < 3
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        # PostgreSQL drops a dead session's advisory lock: no stale lock, no force-unlock.
        with backend.lock("apply", timeout=10) as store:
            store.put(_record("after-kill"))
            assert backend.lock_holder()["pid"] == os.getpid()  # type: ignore[index]
        assert backend.lock_holder() is None
    finally:
        _end(holder)


def test_a_waiting_locker_gets_the_lock_when_the_holder_finishes(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    holder = _holder(pg_url, ws_name)
    try:
        assert _tell(holder, "put first") == "ok first"
        threading.Timer(0.5, lambda: _tell(holder, "release")).start()
        with backend.lock("apply", timeout=20) as store:
            assert "first" in store.state.runs  # sees the holder's write
    finally:
        _end(holder)


def test_force_unlock(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    holder = _holder(pg_url, ws_name)
    lock_id = holder.lock_id  # type: ignore[attr-defined]
    try:
        with pytest.raises(StateError, match="does not match"):
            backend.force_unlock("not-the-id")
        # The holder runs on this host and is alive: refused.
        with pytest.raises(StateError, match="still running"):
            backend.force_unlock(lock_id)
        # As if it ran on another machine that is gone.
        sql(
            pg_url,
            "UPDATE dfr_locks SET info = json_build_object('id', lock_id, 'pid', 1, "
            "'hostname', 'elsewhere') WHERE workspace = %s",
            (ws_name,),
        )
        backend.force_unlock(lock_id)
        # Its session is gone: the orphaned holder can no longer write.
        reply = _tell(holder, "put late")
        assert reply.startswith("error StateError"), reply
        with backend.lock("apply") as store:
            assert "late" not in store.state.runs
        with pytest.raises(StateError, match="not locked"):
            backend.force_unlock(lock_id)
    finally:
        _end(holder)


# --------------------------------------------------------------------------- durability


def test_every_acknowledged_put_survives_a_killed_process(pg_url: str, ws_name: str) -> None:
    holder = _holder(pg_url, ws_name)
    try:
        acknowledged = []
        for i in range(5):
            assert _tell(holder, f"put run-{i}") == f"ok run-{i}"
            acknowledged.append(f"run-{i}")
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        _end(holder)
    backend = PostgresBackend(pg_url, ws_name)
    state = backend.read()
    assert sorted(state.runs) == acknowledged and state.serial == 5
    # The intents (write-ahead notes) are there for the next runner to resolve.
    assert all(r.intent is not None for r in state.runs.values())
    with backend.lock("apply", timeout=10) as store:
        assert store.state == state


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
        _end(holder)
    for text in (backend.describe(), str(info.value), json.dumps(backend.read().lineage)):
        if password:
            assert f":{password}@" not in text
