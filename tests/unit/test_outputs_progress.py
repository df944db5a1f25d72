"""A pull's progress: one line per run in CI, a rich display on a terminal."""

from __future__ import annotations

import io
import itertools

from reconciler.outputs.progress import (
    LivePullProgress,
    PlainPullProgress,
    human_bytes,
    outcome_line,
)
from reconciler.outputs.pull import CURRENT, FAILED, PULLED, PullResult
from reconciler.state.model import OutputsRecord


def pulled(name: str = "tickets") -> PullResult:
    record = OutputsRecord("data/tickets", (), "t", "r1")
    return PullResult(
        name,
        PULLED,
        downloaded=3,
        reused=2,
        bytes=5_000_000,
        files=5,
        record=record,
        downloaded_bytes=4_000_000,
    )


def test_outcome_lines() -> None:
    assert outcome_line(pulled(), 2.0) == (
        "tickets: pulled 5 files into data/tickets (3 downloaded, 2 reused), 5.0 MB"
        " in 2.0s, 2.0 MB/s downloaded"
    )
    assert outcome_line(PullResult("t", CURRENT, files=5), None) == "t: up to date (5 files)"
    failed = PullResult("t\nx", FAILED, "run t: a.csv: broke\noff")
    assert outcome_line(failed, None) == "t\\nx: failed: run t: a.csv: broke\\noff"
    assert [human_bytes(n) for n in (12, 850_000, 1_200_000, 3e9)] == [
        "12 B",
        "850.0 kB",
        "1.2 MB",
        "3.0 GB",
    ]


def test_plain_progress_is_one_line_per_run_as_it_ends() -> None:
    out = io.StringIO()
    clock = itertools.count(10.0, 2.0)
    plain = PlainPullProgress(out, clock=lambda: next(clock))
    with plain:
        plain.run_started("tickets", 5, 3, 4_000_000)
        plain.bytes_received("tickets", 4_000_000)
        plain.file_done("tickets")
        plain.run_finished(pulled())
    assert out.getvalue().splitlines() == [
        "tickets: pulled 5 files into data/tickets (3 downloaded, 2 reused), 5.0 MB"
        " in 2.0s, 2.0 MB/s downloaded"
    ]


def test_live_progress_draws_bars_and_leaves_the_outcome_lines() -> None:
    out = io.StringIO()
    with LivePullProgress(out) as live:
        live.run_started("tickets", 5, 3, 4_000_000)
        for _ in range(3):
            live.bytes_received("tickets", 1_000_000)
            live.file_done("tickets")
        live.run_finished(pulled())
    assert "tickets: pulled 5 files into data/tickets" in out.getvalue()
