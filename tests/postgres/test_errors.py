"""When the database fails, dfr names it (never its password) and says why and what to do."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pg_helpers import clear_settings, in_process_dfr, sql

from reconciler.state.model import RunRecord
from reconciler.state.postgres import PostgresBackend


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_settings(monkeypatch, tmp_path, "PGPASSWORD")


dfr = in_process_dfr


def _seed(url: str, workspace: str) -> None:
    with PostgresBackend(url, workspace).lock("test") as store:
        store.put(RunRecord.new("kept", run_id="run-kept"))


def test_a_lock_timeout_beyond_the_servers_range_is_clamped(
    capsys: pytest.CaptureFixture[str], pg_url: str, ws_name: str
) -> None:
    # PostgreSQL's lock_timeout ends at 2^31-1 ms (about 24.8 days); 800h is past it.
    _seed(pg_url, ws_name)
    args = ("state", "rm", "kept", "--backend", pg_url, "--workspace", ws_name)
    code, out, err = dfr(capsys, *args, "--lock-timeout", "800h")
    assert code == 0, err
    assert "kept" in out and PostgresBackend(pg_url, ws_name).read().runs == {}
    code, _, err = dfr(capsys, *args, "--lock-timeout", "99999999999999h")
    assert code == 1 and "--lock-timeout: '99999999999999h' is too long" in err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_url_without_a_password_is_shown_whole(capsys: pytest.CaptureFixture[str]) -> None:
    port = _closed_port()
    url = f"postgresql://dfr@127.0.0.1:{port}/dfr_state?sslmode=disable"
    code, _, err = dfr(capsys, "status", "--backend", url, "--workspace", "team-a")
    assert code == 1, err
    assert err.startswith(f"error: state {url} (workspace team-a): cannot connect"), err
    assert "***" not in err


def test_only_the_password_is_hidden(capsys: pytest.CaptureFixture[str], pg_url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(pg_url)
    host, port, db, user = params["host"], params["port"], params["dbname"], params["user"]
    # A wrong password to the real server; one that is also the role's name.
    for password in ("wrong-pw-5f1c", user):
        url = f"postgresql://{user}:{password}@{host}:{port}/{db}"
        code, _, err = dfr(capsys, "status", "--backend", url)
        assert code == 1, err
        shown = f"postgresql://{user}@{host}:{port}/{db} (workspace default)"
        assert err.startswith(f"error: state {shown}: cannot connect"), err
        assert "password authentication failed" in err
        assert f":{password}@" not in err
    assert "wrong-pw-5f1c" not in err


def test_a_password_the_url_parser_misreads_is_still_hidden() -> None:
    # A '/' in an unencoded password ends the authority for a plain split.
    for url in ("postgresql://u:pa/ss-9z@h/db", "postgresql://u:p?w=9z@h/db"):
        backend = PostgresBackend(url)
        for text in (backend.describe(), backend.redact(f"cannot parse {url}: bad")):
            assert "ss-9z" not in text and "w=9z" not in text, text


def _with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-c{option.replace('=', '%3D')}"


def test_a_role_that_may_only_read_is_told_which_grants_it_lacks(
    capsys: pytest.CaptureFixture[str], fresh_schema: str
) -> None:
    _seed(fresh_schema, "default")
    # The owner revokes its own write privileges: the role can read, not write.
    sql(
        fresh_schema,
        "REVOKE INSERT, UPDATE, DELETE ON dfr_workspaces, dfr_runs, dfr_locks FROM CURRENT_USER",
    )
    code, out, err = dfr(capsys, "state", "list", "--backend", fresh_schema)
    assert code == 0 and "kept" in out, err  # reading needs only SELECT
    code, _, err = dfr(capsys, "state", "rm", "kept", "--backend", fresh_schema)
    assert code == 1, err
    assert "permission denied for table dfr_locks" in err
    hint = err.split("hint: ", 1)[1]
    assert "INSERT, UPDATE, DELETE" in hint and "GRANT" in hint and "CREATE" not in hint, hint
    sql(fresh_schema, "REVOKE SELECT ON dfr_runs FROM CURRENT_USER")
    code, _, err = dfr(capsys, "status", "--backend", fresh_schema)
    assert code == 1 and "permission denied for table dfr_runs" in err
    hint = err.split("hint: ", 1)[1]
    assert "SELECT" in hint and "CREATE" not in hint and "INSERT" not in hint, hint


def test_a_statement_timeout_on_the_server_is_named_as_the_cause(
    capsys: pytest.CaptureFixture[str], pg_url: str, ws_name: str
) -> None:
    import psycopg

    _seed(pg_url, ws_name)
    url = _with_option(pg_url, "statement_timeout=300")
    # Another session holds the workspace's row: dfr's write waits on it past the timeout.
    with psycopg.connect(pg_url) as other:
        other.execute("SELECT 1 FROM dfr_workspaces WHERE name = %s FOR UPDATE", (ws_name,))
        code, _, err = dfr(capsys, "state", "rm", "kept", "--backend", url, "--workspace", ws_name)
    assert code == 1, err
    assert "canceling statement due to statement timeout" in err
    hint = err.split("hint: ", 1)[1]
    assert "statement_timeout" in hint and "ALTER ROLE" in hint, hint
    assert "kept" in PostgresBackend(pg_url, ws_name).read().runs
