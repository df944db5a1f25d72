"""Choosing the backend: --backend/DFR_BACKEND, --workspace/DFR_WORKSPACE, dfr.yaml, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_helpers import clear_settings, in_process_dfr

from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord
from reconciler.state.postgres import PostgresBackend


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_settings(monkeypatch, tmp_path)


dfr = in_process_dfr


def _seed(pg_url: str, ws_name: str, tmp_path: Path) -> None:
    with PostgresBackend(pg_url, ws_name).lock("test") as store:
        store.put(RunRecord.new("in-db", run_id="run-db"))
    with LocalBackend(tmp_path / "dfr.state.json").lock("test") as store:
        store.put(RunRecord.new("in-file", run_id="run-file"))


def test_flags_environment_and_precedence(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    ws_name: str,
) -> None:
    _seed(pg_url, ws_name, tmp_path)
    assert "in-file" in dfr(capsys, "state", "list")[1]  # default: the file
    code, out, _ = dfr(capsys, "state", "list", "--backend", pg_url, "--workspace", ws_name)
    assert code == 0 and "in-db\trun-db" in out
    monkeypatch.setenv("DFR_BACKEND", pg_url)
    monkeypatch.setenv("DFR_WORKSPACE", ws_name)
    assert "in-db" in dfr(capsys, "state", "list")[1]
    # A flag beats a variable: --state on the command line reads the file.
    assert "in-file" in dfr(capsys, "state", "list", "--state", "dfr.state.json")[1]
    # The same level twice is refused, not guessed.
    monkeypatch.setenv("DFR_STATE", "dfr.state.json")
    code, _, err = dfr(capsys, "state", "list")
    assert code == 1 and "DFR_STATE and DFR_BACKEND are both set" in err
    code, _, err = dfr(capsys, "status", "--state", "x.json", "--backend", pg_url)
    assert code == 1 and "--state and --backend are both set" in err
    # Another workspace is another (empty) state.
    assert dfr(capsys, "status", "--backend", pg_url, "--workspace", ws_name + "-x")[1] == (
        "No runs recorded.\n"
    )


def test_workspace_needs_the_postgres_backend(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = dfr(capsys, "status", "--workspace", "team-a")
    assert code == 1 and "workspaces belong to the postgres backend" in err
    code, _, err = dfr(capsys, "status", "--backend", "mysql://h/db")
    assert code == 1 and "unsupported state backend mysql://" in err


def test_project_file_backend_and_workspace(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    ws_name: str,
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    _seed(pg_url, ws_name, tmp_path)
    params = conninfo_to_dict(pg_url)
    password = str(params.pop("password", ""))
    monkeypatch.setenv("PGPASSWORD", password)  # libpq reads it: no password in the file
    url = "postgresql://{user}@{host}:{port}/{dbname}".format(
        **{k: params.get(k, "") for k in ("user", "host", "port", "dbname")}
    )
    assert make_conninfo(url)  # a plain URL
    (tmp_path / "dfr.yaml").write_text(f"backend: {url}\nworkspace: {ws_name}\n")
    code, out, err = dfr(capsys, "state", "list")
    assert code == 0 and "in-db" in out, err
    # The flag still wins over the file.
    assert "in-file" in dfr(capsys, "state", "list", "--state", "dfr.state.json")[1]
    # A password in the committed file is refused, without echoing it.
    secret = "Pw-In-Yaml-42"
    (tmp_path / "dfr.yaml").write_text(f"backend: postgresql://dfr:{secret}@db/dfr\n")
    code, out, err = dfr(capsys, "state", "list")
    assert code == 1 and "dfr.yaml:1:" in err and "without a password" in err
    assert secret not in out + err
    (tmp_path / "dfr.yaml").write_text(f"backend: postgres://db/dfr?password={secret}\n")
    code, out, err = dfr(capsys, "state", "list")
    assert code == 1 and secret not in out + err
    (tmp_path / "dfr.yaml").write_text("state: a.json\nbackend: b.json\n")
    code, _, err = dfr(capsys, "state", "list")
    assert code == 1 and "state and backend are both set in dfr.yaml" in err
