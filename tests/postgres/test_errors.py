"""When the database fails, dfr names it (never its password) and says why and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.cli import run
from reconciler.state.model import RunRecord
from reconciler.state.postgres import PostgresBackend


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DFR_BACKEND", "DFR_STATE", "DFR_WORKSPACE", "DFR_CONFIG", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def dfr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
