"""Many runners, one database: `dfr apply` processes racing on one workspace.

Each test starts real `python -m reconciler apply --auto-approve` processes
(the reliability harness) against one emulator process, all pointed at the
same postgres workspace through DFR_BACKEND/DFR_WORKSPACE, and checks the prime
directive with `check_converged`: exactly one run per manifest on the API,
every id in the one shared state, no intent left, no traceback anywhere.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable

from pg_helpers import PgWorkspace, Started
from reliability_harness import EmulatorProcess, check_converged

Start = Callable[..., EmulatorProcess]
Make = Callable[..., PgWorkspace]
N = 6


def test_four_applies_at_once_queue_on_the_lock_and_submit_each_run_once(
    pg_started: Started,
) -> None:
    emu, ws = pg_started(N, latency=0.02, seed=11)
    procs = [
        ws.start(*ws.apply_args("--lock-timeout", "60s", "--parallelism", "4")) for _ in range(4)
    ]
    outcomes = [ws.finish(p) for p in procs]
    assert [o.code for o in outcomes] == [0, 0, 0, 0], "\n----\n".join(o.text for o in outcomes)
    check_converged(ws, emu.runs())
    assert emu.stats()["runs_created"] == N
    # Exactly one of them submitted (all N); the others found nothing left to do.
    counts = sorted(int(re.search(r"(\d+) submitted", o.out).group(1)) for o in outcomes)  # type: ignore[union-attr]
    assert counts == [0, 0, 0, N], [o.out for o in outcomes]


def test_four_applies_without_waiting_one_wins_the_others_name_it(pg_started: Started) -> None:
    emu, ws = pg_started(N, latency=0.05, seed=12)
    procs = [ws.start(*ws.apply_args("--no-wait")) for _ in range(4)]
    outcomes = [ws.finish(p) for p in procs]
    winners = [o for o in outcomes if o.code == 0]
    losers = [o for o in outcomes if o.code != 0]
    assert len(winners) >= 1, "\n----\n".join(o.text for o in outcomes)
    for loser in losers:
        # Names the holder (pid, host, lock id), or says it has not written them yet.
        assert loser.code == 1 and "is locked by" in loser.err, loser.text
    # Let every run finish, then the invariant holds across all four processes.
    ws.apply_until_ok(3)
    check_converged(ws, emu.runs())


def _two_clones(
    start_emulator: Start, pg_workspace: Make, seed: int, *clones: str
) -> tuple[EmulatorProcess, PgWorkspace, PgWorkspace]:
    """An emulator and two clones (named `clones`) on one workspace, each with N manifests."""
    emu = start_emulator(latency=0.02, seed=seed)
    one, two = (pg_workspace(emu, clone=clone) for clone in clones)
    one.write_manifests(N)
    two.write_manifests(N)
    return emu, one, two


def test_two_clones_of_a_repository_apply_at_once(
    start_emulator: Start, pg_workspace: Make
) -> None:
    # The same manifests, checked out twice.
    emu, one, two = _two_clones(start_emulator, pg_workspace, 13, "clone-a", "clone-b")
    procs = [
        clone.start(*clone.apply_args("--lock-timeout", "60s")) for clone in (one, two, one, two)
    ]
    outcomes = [(one if i % 2 == 0 else two).finish(p) for i, p in enumerate(procs)]
    assert all(o.code == 0 for o in outcomes), "\n----\n".join(o.text for o in outcomes)
    ids = check_converged(one, emu.runs())
    assert check_converged(two, emu.runs()) == ids
    # Both clones see one state: the same ids, from their own directories.
    seen = []
    for clone in (one, two):
        listed = clone.dfr("state", "list", "--json")
        assert listed.code == 0, listed.text
        seen.append({r["name"]: r["run_id"] for r in json.loads(listed.out)})
    assert seen[0] == seen[1] == ids
    assert not list(one.root.glob("dfr.state.json*")) and not list(two.root.glob("dfr.state.json*"))


def test_a_runner_killed_mid_submission_is_finished_by_another_clone(
    start_emulator: Start, pg_workspace: Make
) -> None:
    emu, one, two = _two_clones(start_emulator, pg_workspace, 14, "runner-a", "runner-b")
    # Runner A dies between a POST's answer and recording its id: only the
    # intent (in the database) knows that run exists.
    killed = one.dfr(*one.apply_args("--no-wait"), env={"DFR_TEST_CRASH_AT": "after-post:3"})
    assert killed.code == -signal.SIGKILL, killed.text
    state = one.read_state()
    assert any(r.intent is not None and not r.run_id for r in state.runs.values())
    # Runner B, another checkout on another machine, finds the lock free (the
    # dead session's lock went with its connection) and adopts that run.
    two.apply_until_ok(3)
    check_converged(two, emu.runs())
    assert emu.stats()["runs_created"] == N
