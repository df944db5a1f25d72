"""A state `dfr state migrate` moved away takes no more commands: it names where the state went.

Both backends as sources: a postgres workspace moved to another workspace or to a
file, and a file moved to postgres. The tombstone is written under the source's
lock, so an apply that was waiting for that lock refuses too.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import Started, drop_workspace, sql
from reliability_harness import assert_no_traceback, check_converged

from dfr_emulator import SPEC_SUPPORT_TICKETS
from reconciler.cli import run
from reconciler.state.backend import Moved, StateMovedError
from reconciler.state.local import LocalBackend
from reconciler.state.model import Intent, RunRecord
from reconciler.state.postgres import PostgresBackend

N = 3

#: Every command that reads or writes state, as it would be run on the moved copy.
COMMANDS = (
    ("status",),
    ("status", "--json"),
    ("state", "list", "--json"),
    ("state", "show", "done"),
    ("state", "rm", "done"),
    ("plan", "manifests"),
    ("apply", "--auto-approve", "manifests"),
    ("refresh",),
    ("import", "done", "run-x", "manifests"),
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DFR_BACKEND", "DFR_STATE", "DFR_WORKSPACE", "DFR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAFRAMER_API_KEY", "sk-test-moved")
    monkeypatch.setenv("DATAFRAMER_BASE_URL", "http://127.0.0.1:9")  # never reached
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "done.yaml").write_text(
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata:\n  name: done\n"
        f"spec:\n  spec_id: {SPEC_SUPPORT_TICKETS}\n  number_of_samples: 10\n"
    )


@pytest.fixture
def other_ws(pg_url: str, ws_name: str) -> Iterator[str]:
    name = ws_name + "-b"
    yield name
    drop_workspace(pg_url, name)


def dfr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _records() -> list[RunRecord]:
    return [
        RunRecord.new("done", run_id="run-1", status="SUCCEEDED", spec={"n": 1}),
        RunRecord.new("unconfirmed", intent=Intent.new({"n": 2})),
    ]


def _seed(backend: LocalBackend | PostgresBackend) -> None:
    """The runs of `_records()` put in `backend`."""
    with backend.lock("test") as store:
        store.put_many(_records())


def _assert_refused(
    capsys: pytest.CaptureFixture[str], where: tuple[str, ...], destination: str, options: str
) -> None:
    for command in COMMANDS:
        code, out, err = dfr(capsys, *command, *where)
        assert code == 1, (command, out, err)
        assert out == "", (command, out)
        assert f"was moved to {destination} by " in err, (command, err)
        assert (
            "it takes no more commands" in err
            and f"hint: use the state where it is now: {options}" in err
        )
        assert "Traceback" not in err and "internal error" not in err


def test_a_file_state_migrated_to_postgres_refuses_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str
) -> None:
    _seed(LocalBackend(tmp_path / "dfr.state.json"))
    before = {p.name: p.read_bytes() for p in tmp_path.glob("dfr.state.json*")}
    code, out, err = dfr(capsys, "state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert code == 0, err
    shown = PostgresBackend(pg_url, ws_name).describe()
    assert f"marked as moved to {shown}" in out
    options = f"--backend {PostgresBackend(pg_url, ws_name).location} --workspace {ws_name}"
    _assert_refused(capsys, (), shown, options)
    _assert_refused(capsys, ("--state", "dfr.state.json"), shown, options)
    # The records, journal and backup are as they were; the mark is a 0600 file beside them.
    after = {p.name: p.read_bytes() for p in tmp_path.glob("dfr.state.json*")}
    mark = after.pop("dfr.state.json.moved")
    after.pop("dfr.state.json.lock", None)
    before.pop("dfr.state.json.lock", None)
    assert after == before
    assert stat.S_IMODE(os.stat(tmp_path / "dfr.state.json.moved").st_mode) == 0o600
    doc = json.loads(mark)
    assert doc["to"] == shown and doc["workspace"] == ws_name and doc["serial"] == 2
    assert "dfr-test-pw" not in mark.decode()  # the destination's password stays out
    # The database took the state and goes on.
    code, out, err = dfr(capsys, "state", "list", "--backend", pg_url, "--workspace", ws_name)
    assert code == 0 and "done" in out and "unconfirmed" in out, err


def test_a_workspace_migrated_to_another_refuses_and_moving_back_clears_the_mark(
    capsys: pytest.CaptureFixture[str], pg_url: str, ws_name: str, other_ws: str
) -> None:
    _seed(PostgresBackend(pg_url, ws_name))
    a = ("--backend", pg_url, "--workspace", ws_name)
    b = ("--backend", pg_url, "--workspace", other_ws)
    code, _, err = dfr(capsys, "state", "migrate", *a, "--to", pg_url, "--to-workspace", other_ws)
    assert code == 0, err
    shown_b = PostgresBackend(pg_url, other_ws).describe()
    location = PostgresBackend(pg_url, ws_name).location
    _assert_refused(capsys, a, shown_b, f"--backend {location} --workspace {other_ws}")
    mark = sql(pg_url, "SELECT moved::text FROM dfr_workspaces WHERE name = %s", (ws_name,))
    assert json.loads(mark[0][0])["workspace"] == other_ws
    # b goes on; then the state moves back to a: a takes commands again, b refuses.
    assert dfr(capsys, "state", "rm", "done", *b)[0] == 0
    hint_back = f"dfr state migrate --backend {location} --workspace {other_ws} --to {location} "
    assert hint_back + f"--to-workspace {ws_name}" in dfr(capsys, "status", *a)[2]
    code, out, err = dfr(capsys, "state", "migrate", *b, "--to", pg_url, "--to-workspace", ws_name)
    assert code == 0, err
    assert "it is the current state again" in out
    code, out, err = dfr(capsys, "state", "list", *a)
    assert code == 0 and out.split()[0] == "unconfirmed" and "done" not in out, err
    assert (
        "was moved to " + PostgresBackend(pg_url, ws_name).describe()
        in dfr(capsys, "status", *b)[2]
    )
    assert sql(pg_url, "SELECT moved FROM dfr_workspaces WHERE name = %s", (ws_name,)) == [(None,)]


def test_a_workspace_migrated_to_a_file_refuses(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str
) -> None:
    _seed(PostgresBackend(pg_url, ws_name))
    a = ("--backend", pg_url, "--workspace", ws_name)
    code, _, err = dfr(capsys, "state", "migrate", *a, "--to", "moved.json")
    assert code == 0, err
    path = str(tmp_path / "moved.json")
    _assert_refused(capsys, a, "moved.json", f"--state {path}")
    assert dfr(capsys, "state", "list", "--state", "moved.json")[0] == 0


def test_a_moved_source_migrates_again_only_to_where_it_went_unless_forced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str, ws_name: str, other_ws: str
) -> None:
    _seed(LocalBackend(tmp_path / "dfr.state.json"))
    to_a = ("state", "migrate", "--to", pg_url, "--to-workspace", ws_name)
    assert dfr(capsys, *to_a)[0] == 0
    # Re-running the same migration is harmless (say, after it was interrupted).
    code, out, err = dfr(capsys, *to_a)
    assert code == 0 and "nothing to copy" in out, err
    # Elsewhere: refused, naming where it went and what --force does.
    to_b = ("state", "migrate", "--to", pg_url, "--to-workspace", other_ws)
    code, _, err = dfr(capsys, *to_b)
    shown_a = PostgresBackend(pg_url, ws_name).describe()
    assert code == 1 and f"was moved to {shown_a}" in err and "two live copies" in err
    assert "--force" in err
    assert PostgresBackend(pg_url, other_ws).read().serial == 0
    code, _, err = dfr(capsys, *to_b, "--force")
    assert code == 0 and f"had been moved to {shown_a}" in err, err
    assert (
        Moved.from_json((tmp_path / "dfr.state.json.moved").read_bytes(), "x").workspace == other_ws
    )


def test_an_apply_on_a_migrated_workspace_submits_nothing_the_new_one_did(
    pg_started: Started, pg_url: str, other_ws: str
) -> None:
    # The reported case: after migrate a -> b, b applies new manifests and an apply
    # still pointed at a submitted them again (32 runs for 31 manifests).
    emu, ws = pg_started(N, seed=41)
    assert ws.dfr(*ws.apply_args()).code == 0
    moved = ws.dfr("state", "migrate", "--to", pg_url, "--to-workspace", other_ws)
    assert moved.code == 0, moved.text
    ws.write_manifests(N + 1)
    on_b = ws.dfr(*ws.apply_args(), env={"DFR_WORKSPACE": other_ws})
    assert on_b.code == 0, on_b.text
    for args in (ws.apply_args(), ("plan", str(ws.manifests)), ("status",), ("refresh",)):
        on_a = ws.dfr(*args)
        assert on_a.code == 1 and "was moved to" in on_a.err and other_ws in on_a.err, on_a.text
    assert emu.stats()["runs_created"] == N + 1
    ws.name = other_ws  # the invariant holds on the state in use
    check_converged(ws, emu.runs())
    assert_no_traceback(ws.outputs)


def test_an_apply_waiting_for_the_lock_refuses_once_the_state_moved(
    pg_started: Started, pg_url: str, other_ws: str
) -> None:
    emu, ws = pg_started(N, seed=42)
    source = PostgresBackend(pg_url, ws.name)
    with source.lock("state migrate") as store:
        store.put(RunRecord.new("seed", run_id="run-seed"))
        waiting = ws.start(*ws.apply_args("--lock-timeout", "60s"))
        deadline = time.monotonic() + 30
        while not sql(
            pg_url,
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ):
            assert time.monotonic() < deadline and waiting.poll() is None, "apply never waited"
            time.sleep(0.02)
        # As migrate does, under the source's lock: the copy is done, the mark goes on.
        store.mark_moved(Moved.new(PostgresBackend(pg_url, other_ws), store.state))
    outcome = ws.finish(waiting)
    assert outcome.code == 1 and "was moved to" in outcome.err, outcome.text
    assert emu.stats()["runs_created"] == 0
    with pytest.raises(StateMovedError):
        source.read()
