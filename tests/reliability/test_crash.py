"""Crash tests that really crash: `dfr apply` killed at many points, then resumed.

Each test runs `python -m reconciler apply` as a subprocess against an
emulator in another process (with latency, so every phase lasts long enough
to be hit), kills it, runs apply again without faults, and checks the prime
directive (`check_converged`): exactly one run per manifest on the API, every
manifest in state with that run's id, the state file readable, no traceback.

Kill points come two ways:
- named points inside dfr (`reconciler.hooks`, armed by the test-only entry point
  `tests/support/crashing_dfr.py --crash-at POINT:N`): deterministic, they land
  exactly between a POST's answer and the state write that records it, or in the
  middle of a journal append or a checkpoint;
- SIGKILL / SIGINT / SIGTERM from outside, timed by watching the emulator's
  counters: after k of N runs were created, or while apply waits.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from reliability_harness import assert_no_traceback, check_converged
from support.emulators import EmulatorProcess
from support.workspace import Workspace

from reconciler.state import statefile

N = 6
LATENCY = 0.05
#: Waiting for final statuses is not what most kill points test; skipping it
#: keeps the suite fast. Points that need it (wait-round, timed "while waiting",
#: concurrency) wait.
NO_WAIT = ("--no-wait",)

Start = Callable[..., EmulatorProcess]
Make = Callable[[EmulatorProcess], Workspace]

#: (id, parallelism, crash point of each successive apply; the last apply has none).
#: Chained entries kill the resuming apply too (e.g. in its recovery checkpoint).
HOOK_KILLS = [
    ("before-first-post", 1, ["before-post:1"]),
    ("before-4th-post", 1, ["before-post:4"]),
    ("after-1st-post", 1, ["after-post:1"]),
    ("after-3rd-post", 1, ["after-post:3"]),
    ("after-last-post", 1, ["after-post:6"]),
    ("after-3rd-post-parallel", 4, ["after-post:3"]),
    ("after-2nd-record", 1, ["after-record:2"]),
    ("after-2nd-record-parallel", 4, ["after-record:2"]),
    ("waiting-round-1", 4, ["wait-round:1"]),
    ("waiting-round-3", 4, ["wait-round:3"]),
    ("torn-first-intent", 1, ["journal-torn:1"]),
    ("torn-4th-line", 1, ["journal-torn:4"]),
    ("torn-id-record-parallel", 4, ["journal-torn:8"]),
    ("checkpoint-temp-written", 4, ["checkpoint-temp-written:1"]),
    ("checkpoint-backup-written", 4, ["checkpoint-backup-written:1"]),
    ("checkpoint-replaced", 4, ["checkpoint-replaced:1"]),
    ("checkpoint-dir-synced", 4, ["checkpoint-dir-synced:1"]),
    ("checkpoint-journal-removed", 4, ["checkpoint-journal-removed:1"]),
    ("post-then-recovery-checkpoint", 1, ["after-post:2", "checkpoint-replaced:1"]),
    ("post-then-resubmit-post", 1, ["before-post:3", "after-post:2"]),
    ("three-kills-in-a-row", 4, ["after-post:2", "journal-torn:3", "after-post:1"]),
]


def _setup(
    start: Start, workspace: Make, seed: int, manifests: int = N, **knobs: Any
) -> tuple[EmulatorProcess, Workspace]:
    """An emulator process with latency (and `knobs`), and a workspace of manifests on it."""
    emu = start(latency=LATENCY, seed=seed, **knobs)
    ws = workspace(emu)
    ws.write_manifests(manifests)
    return emu, ws


def _assert_state_files_valid(ws: Workspace) -> None:
    statefile.loads(ws.state.read_bytes(), str(ws.state))
    assert not os.path.exists(str(ws.state) + ".journal"), "journal left after a clean apply"
    for path in ws.root.iterdir():
        if path.name.startswith("dfr.state.json"):
            assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"


@pytest.mark.parametrize(
    ("parallelism", "kills"),
    [pytest.param(p, k, id=i) for i, p, k in HOOK_KILLS],
)
def test_sigkill_at_named_point(
    start_emulator: Start, workspace: Make, parallelism: int, kills: list[str]
) -> None:
    emu, ws = _setup(start_emulator, workspace, 7)
    for point in kills:
        waiting = () if point.startswith("wait-round") else NO_WAIT
        killed = ws.dfr(
            *ws.apply_args("--parallelism", str(parallelism), *waiting),
            crash_at=point,
        )
        assert killed.code == -signal.SIGKILL, f"{point} was never reached:\n{killed.text}"
    ws.apply_until_ok(3, *NO_WAIT)
    check_converged(ws, emu.runs())
    _assert_state_files_valid(ws)


#: (id, parallelism, runs created before the kill; N means "while waiting").
TIMED_KILLS = [
    ("after-1-created", 1, 1),
    ("after-2-created", 1, 2),
    ("after-5-created", 1, 5),
    ("after-3-created-parallel", 3, 3),
    ("while-waiting", 4, N),
]


def _wait_created(emu: EmulatorProcess, count: int, extra: float = 0.0) -> None:
    emu.wait_for(lambda s: s["runs_created"] >= count)
    if extra:
        time.sleep(extra)


@pytest.mark.parametrize(
    ("parallelism", "created"), [pytest.param(p, c, id=i) for i, p, c in TIMED_KILLS]
)
def test_sigkill_from_outside(
    start_emulator: Start, workspace: Make, parallelism: int, created: int
) -> None:
    # Twice as many manifests as the timed kills count: the creates still to come
    # outlast the poll that sees the count reached, even on a loaded machine.
    emu, ws = _setup(start_emulator, workspace, 11, manifests=2 * N)
    waiting = () if created == N else NO_WAIT
    proc = ws.start(*ws.apply_args("--parallelism", str(parallelism), *waiting))
    _wait_created(emu, 2 * N if created == N else created, extra=0.3 if created == N else 0.0)
    os.killpg(proc.pid, signal.SIGKILL)
    assert ws.finish(proc).code == -signal.SIGKILL
    ws.apply_until_ok(3, *NO_WAIT)
    check_converged(ws, emu.runs())
    _assert_state_files_valid(ws)


def _every_created_run_in_state(ws: Workspace, emu: EmulatorProcess) -> None:
    """After a clean stop, no run the API made is missing from state (no lost id)."""
    state = ws.read_state()
    recorded = {r.run_id for r in state.runs.values() if r.run_id}
    pending = [r.name for r in state.runs.values() if r.intent is not None]
    made = {run["id"] for run in emu.runs()}
    assert made <= recorded, f"ids lost on a clean stop: {made - recorded} (intents: {pending})"


@pytest.mark.parametrize(
    ("signum", "code", "created"),
    [
        pytest.param(signal.SIGINT, 130, 2, id="sigint-submitting"),
        pytest.param(signal.SIGTERM, 143, 2, id="sigterm-submitting"),
        pytest.param(signal.SIGINT, 130, N, id="sigint-waiting"),
        pytest.param(signal.SIGTERM, 143, N, id="sigterm-waiting"),
    ],
)
def test_clean_stop_from_outside(
    start_emulator: Start, workspace: Make, signum: int, code: int, created: int
) -> None:
    emu, ws = _setup(start_emulator, workspace, 13)
    proc = ws.start(*ws.apply_args("--parallelism", "1"))
    _wait_created(emu, created, extra=0.3 if created == N else 0.0)
    os.kill(proc.pid, signum)
    stopped = ws.finish(proc)
    assert stopped.code == code, stopped.text
    assert "interrupted" in stopped.text.lower() or "stopp" in stopped.text.lower()
    _every_created_run_in_state(ws, emu)
    assert not os.path.exists(str(ws.state) + ".journal"), stopped.text
    ws.apply_until_ok()
    check_converged(ws, emu.runs())
    _assert_state_files_valid(ws)


@pytest.mark.parametrize(
    ("point", "code"),
    [
        pytest.param("after-post:3:SIGTERM", 143, id="sigterm-between-post-and-record"),
        pytest.param("after-post:3:SIGINT", 130, id="sigint-between-post-and-record"),
        pytest.param("before-post:2:SIGINT", 130, id="sigint-after-intent"),
    ],
)
def test_clean_stop_at_named_point(
    start_emulator: Start, workspace: Make, point: str, code: int
) -> None:
    emu, ws = _setup(start_emulator, workspace, 17)
    stopped = ws.dfr(*ws.apply_args("--parallelism", "2", *NO_WAIT), crash_at=point)
    assert stopped.code == code, stopped.text
    _every_created_run_in_state(ws, emu)
    ws.apply_until_ok(3, *NO_WAIT)
    check_converged(ws, emu.runs())


@pytest.mark.parametrize("processes", [2, 4])
def test_concurrent_applies_one_works_others_fail_fast(
    start_emulator: Start, workspace: Make, processes: int
) -> None:
    # Runs take ~3 s, so the winner holds the lock well after every loser has tried.
    emu, ws = _setup(start_emulator, workspace, 19, pending_seconds=1.0, processing_seconds=2.0)
    started = time.monotonic()
    procs = [ws.start(*ws.apply_args()) for _ in range(processes)]
    finished_at: dict[int, float] = {}
    while len(finished_at) < len(procs) and time.monotonic() - started < 30:
        for proc in procs:
            if proc.pid not in finished_at and proc.poll() is not None:
                finished_at[proc.pid] = time.monotonic() - started
        time.sleep(0.01)
    outcomes = {proc.pid: ws.finish(proc) for proc in procs}
    winners = [pid for pid, o in outcomes.items() if o.code == 0]
    assert len(winners) == 1, {pid: (o.code, o.err[-300:]) for pid, o in outcomes.items()}
    (winner,) = winners
    for pid, outcome in outcomes.items():
        if pid == winner:
            continue
        assert outcome.code == 1, outcome.text
        assert f"locked by pid {winner}" in outcome.err, outcome.err
        assert outcome.err.count("\n") <= 3, f"not a short message:\n{outcome.err}"
        assert finished_at[pid] < finished_at[winner], "a loser waited for the winner"
    check_converged(ws, emu.runs())
    assert emu.stats()["requests"].get("runs.create", 0) == N
    assert_no_traceback(ws.outputs)


def test_second_signal_stops_at_once_and_nothing_is_lost(
    start_emulator: Start, workspace: Make
) -> None:
    """The first Ctrl-C asks for a clean stop; a second one stops at once, still safely."""
    emu, ws = _setup(start_emulator, workspace, 23)
    proc = ws.start(*ws.apply_args("--parallelism", "1"))
    _wait_created(emu, 2)
    os.kill(proc.pid, signal.SIGINT)
    os.kill(proc.pid, signal.SIGINT)
    stopped = ws.finish(proc)
    assert stopped.code == 130, stopped.text
    ws.apply_until_ok(3, *NO_WAIT)
    check_converged(ws, emu.runs())
    _assert_state_files_valid(ws)
