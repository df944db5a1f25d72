"""`dfr state mv OLD NEW` end to end: a renamed manifest keeps its run.

Through the real CLI against the emulator and a state file (the postgres
backend's twin is in tests/postgres/test_pg_state_ops.py): the rename hint, the
move, a plan of no changes and an apply that pays for nothing; the refusals
(unknown OLD, taken NEW, an invalid NEW, a held lock); and a `dfr state mv`
killed half-way through its journal line, which leaves the run under its old
name only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from support.emulators import KEY, posts
from support.runner import Runner, apply_args
from support.workspace import Workspace

from dfr_emulator import Emulator
from reconciler.state.local import LocalBackend


def _rename(ws: Workspace, old: str, new: str, **fields: object) -> None:
    ws.remove(old)
    ws.write(new, labels={"team": "x"}, **fields)


def test_a_renamed_manifest_keeps_its_run_after_state_mv(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("tickets", labels={"team": "x"}, number_of_samples=10)
    ws.write("other", number_of_samples=20)
    assert dfr(*apply_args()).code == 0
    before = ws.record("tickets")
    serial = LocalBackend(ws.state).read().serial
    _rename(ws, "tickets", "tickets-v2", number_of_samples=10)
    code, out, _ = dfr("plan")
    assert code == 0 and "dfr state mv tickets tickets-v2" in out

    # import refuses a run recorded under the old name, and says what keeps it.
    code, _, err = dfr("import", "tickets-v2", str(before["run_id"]))
    assert code == 1 and "dfr state mv tickets tickets-v2" in err

    code, out, err = dfr("state", "mv", "--state", str(ws.state), "tickets", "tickets-v2")
    assert (code, err) == (0, "")
    assert out == f"Moved tickets to tickets-v2 (run {before['run_id']}).\n"
    state = LocalBackend(ws.state).read()
    assert state.serial == serial + 1 and set(state.runs) == {"tickets-v2", "other"}
    # Only the key and the record's name changed.
    assert ws.record("tickets-v2") == {**before, "name": "tickets-v2"}

    code, out, _ = dfr("plan", "--detailed-exitcode")
    assert code == 0 and out.startswith("No changes.")
    sent = posts(emu)
    code, out, _ = dfr(*apply_args())
    assert code == 0 and posts(emu) == sent
    code, out, _ = dfr("state", "show", "tickets-v2")
    assert code == 0 and str(before["run_id"]) in out


def test_state_mv_refuses_an_unknown_or_taken_name_and_an_invalid_one(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("a", number_of_samples=10)
    ws.write("b", number_of_samples=20)
    assert dfr(*apply_args()).code == 0
    state = ws.state.read_bytes()
    cases = {
        ("nobody", "c"): "'nobody' is not in state",
        ("a", "b"): "'b' is already in state",
        ("a", "a"): "'a' is already in state",
        ("a", "Not_Valid"): "'Not_Valid' is not a valid manifest name",
        ("a", "x" * 64): "is not a valid manifest name: 1 to 63 characters",
        ("a", "a-"): "is not a valid manifest name",
    }
    for (old, new), message in cases.items():
        code, out, err = dfr("state", "mv", "--state", str(ws.state), old, new)
        assert code == 1 and out == "" and message in err, (old, new, err)
        assert err.startswith("error: ") and err.count("\n") <= 2
    assert ws.state.read_bytes() == state and set(ws.run_ids()) == {"a", "b"}


def test_state_mv_waits_for_or_refuses_a_held_lock(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("a", number_of_samples=10)
    assert dfr(*apply_args()).code == 0
    backend = LocalBackend(ws.state)
    with backend.lock("apply"):
        code, _, err = dfr("state", "mv", "--state", str(ws.state), "a", "b")
        assert code == 1 and "is locked by pid" in err and "dfr apply" in err
    assert set(ws.run_ids()) == {"a"}


def test_state_mv_killed_mid_journal_line_leaves_the_run_under_its_old_name(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("a", number_of_samples=10)
    assert dfr(*apply_args()).code == 0
    run_id = ws.run_ids()["a"]
    env = {**os.environ, "DATAFRAMER_API_KEY": KEY}
    crashing = Path(__file__).resolve().parents[1] / "support" / "crashing_dfr.py"
    args = ["state", "mv", "--state", str(ws.state), "a", "b"]
    proc = subprocess.run(
        [sys.executable, str(crashing), "--crash-at", "journal-torn:1", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    journal = Path(str(ws.state) + ".journal").read_bytes()
    assert b'"op": "move"' in journal and not journal.endswith(b"\n")  # half a line
    assert ws.run_ids() == {"a": run_id}
    # The next session drops the torn line; the move, run again, goes through.
    code, _, _ = dfr("state", "mv", "--state", str(ws.state), "a", "b")
    assert code == 0 and ws.run_ids() == {"b": run_id}
    assert json.loads(ws.state.read_text())["runs"]["b"]["run_id"] == run_id
