"""The database goes away in the middle of `dfr apply`: what is said, and what the next apply does.

A real `dfr apply` process, a real emulator process (slow to answer creates),
and the lock session ended from outside with pg_terminate_backend, as a
restarted or failed-over server would: the POSTs in flight have created runs
whose ids can no longer be recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pg_helpers import PgWorkspace, Started, sql
from reliability_harness import assert_no_traceback, check_converged

N = 4


def _pending_intents(ws: PgWorkspace) -> int:
    rows = sql(
        ws.pg_url,
        "SELECT count(*) FROM dfr_runs WHERE workspace = %s AND record->'intent' IS NOT NULL "
        "AND json_typeof(record->'intent') = 'object'",
        (ws.name,),
    )
    return int(rows[0][0]) if rows else 0


def _wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition never reached"
        time.sleep(0.02)


def test_database_lost_mid_apply_says_how_many_are_unconfirmed_and_the_next_apply_adopts_them(
    pg_started: Started,
) -> None:
    emu, ws = pg_started(N, latency=1.5, seed=31)
    proc = ws.start(*ws.apply_args("--parallelism", str(N)))
    # Every intent is committed and every POST is in flight: end the lock session.
    _wait_for(lambda: _pending_intents(ws) == N)
    sql(
        ws.pg_url,
        "SELECT pg_terminate_backend(backend_pid) FROM dfr_locks WHERE workspace = %s",
        (ws.name,),
    )
    lost = ws.finish(proc)
    assert lost.code == 1, lost.text
    assert f"{N} submissions are unconfirmed" in lost.err, lost.err
    assert "the next `dfr apply` looks for their runs and adopts them" in lost.err, lost.err
    assert "Traceback" not in lost.text and "internal error" not in lost.text
    emu.wait_for(lambda stats: stats["runs_created"] == N)

    emu.configure(latency=0)
    plan = ws.dfr("plan", str(ws.manifests))
    assert plan.code == 0 and f"{N} to resolve" in plan.out, plan.text
    again = ws.dfr(*ws.apply_args())
    assert again.code == 0, again.text
    assert again.err.count("from the unconfirmed submission; adopted it") == N, again.err
    check_converged(ws, emu.runs())
    assert emu.stats()["runs_created"] == N
    assert_no_traceback(ws.outputs)
