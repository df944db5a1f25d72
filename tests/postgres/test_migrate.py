"""`dfr state migrate --to`: file -> database -> file, keeping every run, lineage and serial."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pg_helpers import clear_settings, drop_workspace, in_process_dfr

from reconciler.state.local import LocalBackend
from reconciler.state.model import Intent, RunRecord
from reconciler.state.postgres import PostgresBackend


@pytest.fixture(autouse=True)
def _no_outside_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_settings(monkeypatch, tmp_path)


dfr = in_process_dfr


def _file_state(path: Path) -> LocalBackend:
    backend = LocalBackend(path)
    with backend.lock("test") as store:
        store.put(RunRecord.new("done", run_id="run-1", status="SUCCEEDED", spec={"n": 1}))
        store.put(RunRecord.new("unconfirmed", intent=Intent.new({"n": 2})))
        store.put(RunRecord.new("gone", run_id="run-3"))
        store.remove("gone")
    return backend


def _doc(path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(path.read_text())
    doc.pop("dfr_version")
    return doc


def test_file_to_database_to_file_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str
) -> None:
    source = _file_state(tmp_path / "dfr.state.json")
    original = source.read()
    code, out, err = dfr(capsys, "state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert code == 0, err
    assert "Migrated 2 runs (serial 4" in out and "read them back" in out
    db = PostgresBackend(pg_url, ws_name).read()
    assert db == original  # records (the intent too), lineage, serial
    # Nothing to copy the second time.
    code, out, _ = dfr(capsys, "state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert code == 0 and "nothing to copy" in out
    # The database moves on; then back to a new file.
    code, _, err = dfr(capsys, "state", "rm", "done", "--backend", pg_url, "--workspace", ws_name)
    assert code == 0, err
    code, out, err = dfr(
        capsys, "state", "migrate", "--backend", pg_url, "--workspace", ws_name, "--to", "back.json"
    )
    assert code == 0, err
    back = LocalBackend(tmp_path / "back.json").read()
    assert (back.lineage, back.serial) == (original.lineage, 5)
    assert set(back.runs) == {"unconfirmed"}
    assert back.runs["unconfirmed"].intent == original.runs["unconfirmed"].intent
    # The newer database state can also replace the original file (same lineage),
    # though only with --force now that the database was moved to back.json.
    to_original = ("--backend", pg_url, "--workspace", ws_name, "--to", "dfr.state.json")
    code, _, err = dfr(capsys, "state", "migrate", *to_original)
    assert code == 1 and "was moved to back.json" in err and "--force" in err
    code, out, err = dfr(capsys, "state", "migrate", *to_original, "--force")
    assert code == 0, err
    assert "had been moved to back.json" in err and "the current state again" in out
    assert _doc(tmp_path / "dfr.state.json") == _doc(tmp_path / "back.json")
    assert (tmp_path / "dfr.state.json.backup").exists()  # the file backend kept the old one
    assert not (tmp_path / "dfr.state.json.moved").exists()  # in use again


def test_refusals_keep_both_sides(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str
) -> None:
    _file_state(tmp_path / "dfr.state.json")
    other = LocalBackend(tmp_path / "other.json")
    with other.lock("test") as store:
        store.put(RunRecord.new("x", run_id="run-x"))
    args = ("state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert dfr(capsys, *args)[0] == 0
    before = PostgresBackend(pg_url, ws_name).read()

    # Another state (lineage) in the destination: refused, unless --force.
    code, _, err = dfr(capsys, *args, "--state", "other.json")
    assert code == 1 and "already holds another state" in err and "--force" in err
    assert PostgresBackend(pg_url, ws_name).read() == before

    # The destination is newer (same lineage): refused.
    backend = PostgresBackend(pg_url, ws_name)
    with backend.lock("apply") as store:
        store.put(RunRecord.new("newer", run_id="run-n"))
    code, _, err = dfr(capsys, *args)
    assert code == 1 and "is newer than" in err and "serial 5 > 4" in err
    assert "newer" in PostgresBackend(pg_url, ws_name).read().runs

    # --force replaces it, naming the runs dfr forgets.
    copied = other.read()
    code, _, err = dfr(capsys, *args, "--state", "other.json", "--force")
    assert code == 0, err
    assert "recorded another run for done" in err and "recorded another run for newer" in err
    assert PostgresBackend(pg_url, ws_name).read() == copied

    # Same source and destination; an empty source.
    code, _, err = dfr(capsys, "state", "migrate", "--to", "dfr.state.json")
    assert code == 1 and "both the source and the destination" in err
    code, _, err = dfr(capsys, "state", "migrate", "--state", "none.json", "--to", pg_url)
    assert code == 1 and "holds no state" in err


def test_a_locked_destination_is_not_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str
) -> None:
    _file_state(tmp_path / "dfr.state.json")
    with PostgresBackend(pg_url, ws_name).lock("apply"):
        code, _, err = dfr(capsys, "state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert code == 1 and "is locked by pid" in err
    assert PostgresBackend(pg_url, ws_name).read().serial == 0


def test_database_to_database_keeps_the_workspace_name(
    capsys: pytest.CaptureFixture[str], pg_url: str, ws_name: str, fresh_schema: str
) -> None:
    with PostgresBackend(pg_url, ws_name).lock("apply") as store:
        store.put(RunRecord.new("a", run_id="run-a"))
    source = PostgresBackend(pg_url, ws_name).read()
    code, _, err = dfr(
        capsys,
        "state",
        "migrate",
        "--backend",
        pg_url,
        "--workspace",
        ws_name,
        "--to",
        fresh_schema,
    )
    assert code == 0, err
    assert PostgresBackend(fresh_schema, ws_name).read() == source
    drop_workspace(fresh_schema, ws_name)


def test_psycopg_is_imported_only_for_a_postgres_url(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from reconciler.cli import run\n"
        "codes = [run(['--version']), run(['status', '--state', 'x.json'])]\n"
        "print(codes, 'psycopg' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.stdout.strip().endswith("[0, 0] False"), proc.stdout + proc.stderr
