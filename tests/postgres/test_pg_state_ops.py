"""Store operations beyond put and remove (`move`) on a real PostgreSQL workspace.

What they mean on every backend is in `tests/state/test_contract.py`; here, what
only a database shows: a move is one transaction with the serial's
compare-and-set, so a writer behind another's back moves nothing.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from pg_helpers import clear_settings, sql
from state_records import policy, sample

from reconciler.errors import StateConflictError, StateError
from reconciler.state.postgres import PostgresBackend


def test_the_policy_is_a_column_of_the_workspace(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("test") as store:
        store.put(sample("a"))
        store.set_policy(policy())
    ((serial, text),) = sql(
        pg_url, "SELECT serial, policy::text FROM dfr_workspaces WHERE name = %s", (ws_name,)
    )
    assert serial == 2 and json.loads(text)["sha256"] == policy().sha256
    # Edited by hand in the database: refused like a corrupt file.
    sql(
        pg_url,
        "UPDATE dfr_workspaces SET policy = %s WHERE name = %s",
        (json.dumps({**json.loads(text), "settings": {}}), ws_name),
    )
    with pytest.raises(StateError, match=r"policy\.sha256: does not match"):
        backend.read()


def test_a_move_is_one_transaction_with_the_serial_cas(pg_url: str, ws_name: str) -> None:
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("test") as store:
        store.put_many([sample("a"), sample("b", "run-2")])
        store.move("a", "c")
        rows = sql(
            pg_url,
            "SELECT name, serial, record->>'name' FROM dfr_runs WHERE workspace = %s ORDER BY name",
            (ws_name,),
        )
        assert rows == [("b", 2, "b"), ("c", 3, "c")]
        # Someone writes behind this session's back: its next move changes nothing.
        sql(pg_url, "UPDATE dfr_workspaces SET serial = serial + 1 WHERE name = %s", (ws_name,))
        with pytest.raises(StateConflictError, match="changed by another writer"):
            store.move("c", "d")
        with pytest.raises(StateError, match="an earlier write failed"):
            store.move("b", "e")
    assert set(backend.read().runs) == {"b", "c"} and backend.read().serial == 4


# --------------------------------------------------------------------------- dfr state mv


def _dfr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from reconciler.cli import run

    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_state_mv_through_the_cli_on_a_workspace(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    ws_name: str,
) -> None:
    clear_settings(monkeypatch, tmp_path)
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("test") as store:
        store.put_many([sample("old"), sample("taken", "run-2")])
    before = backend.read()
    where = ("--backend", pg_url, "--workspace", ws_name)
    code, out, err = _dfr(capsys, "state", "mv", *where, "old", "new")
    assert (code, out, err) == (0, "Moved old to new (run run-1).\n", "")
    after = backend.read()
    assert after.serial == before.serial + 1
    assert after.runs["new"] == dataclasses.replace(before.runs["old"], name="new")
    for args, message in (
        (("old", "x"), "'old' is not in state"),
        (("new", "taken"), "'taken' is already in state"),
        (("new", "Bad"), "is not a valid manifest name"),
    ):
        code, out, err = _dfr(capsys, "state", "mv", *where, *args)
        assert code == 1 and out == "" and message in err
        assert pg_url.split("@")[0].rsplit(":", 1)[1] not in err  # never the password
    assert backend.read() == after
    # Another session holds the workspace's lock (an apply, say): refused at once,
    # naming it; with --lock-timeout the move waits its turn.
    with backend.lock("apply"):
        code, _, err = _dfr(capsys, "state", "mv", *where, "new", "newer")
        assert code == 1 and "is locked by pid" in err and "dfr apply" in err
    assert set(backend.read().runs) == {"new", "taken"}
    holder = threading.Thread(target=_hold, args=(backend, 0.5))
    holder.start()
    time.sleep(0.1)
    code, _, err = _dfr(capsys, "state", "mv", *where, "--lock-timeout", "20s", "new", "newer")
    holder.join()
    assert code == 0, err
    assert set(backend.read().runs) == {"newer", "taken"}


def _hold(backend: PostgresBackend, seconds: float) -> None:
    with backend.lock("apply"):
        time.sleep(seconds)
