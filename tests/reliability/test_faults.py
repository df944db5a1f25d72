"""The fault matrix: `dfr apply` against an emulator that misbehaves, seeded.

For every kind of fault the API can show (5xx, 429 with and without
Retry-After, resets, read timeouts, non-JSON answers, answers missing fields,
unknown status strings, a recorded run that now answers 404, ambiguous POSTs,
5xx after create), apply runs with the fault on, then with it off until it
exits 0 (bounded). Whatever happened in between: never a duplicate run, never
a lost id, never a traceback, and every failure is a short message.

The emulator runs in this process (faults are seeded, so each case sees the
same sequence on every run); dfr runs through `reconciler.cli.run` (the shared
`emu`, `ws` and `dfr` fixtures).
"""

from __future__ import annotations

from typing import Any

import pytest
from reliability_harness import assert_no_traceback, check_converged
from support.runner import Runner
from support.workspace import Workspace

from dfr_emulator import Emulator

N = 5
OFF = {
    "failure_rate": 0.0,
    "post_5xx_after_create_rate": 0.0,
    "rate_limit": None,
    "ambiguous_post_rate": 0.0,
    "ambiguous_posts": 0,
    "reset_rate": 0.0,
    "hang_rate": 0.0,
    "garbage_rate": 0.0,
    "missing_fields_rate": 0.0,
    "unknown_status_rate": 0.0,
}

pytestmark = pytest.mark.emulator(seed=5)


@pytest.fixture(autouse=True)
def _short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung answer costs half a second, not the default timeout."""
    monkeypatch.setenv("DFR_HTTP_TIMEOUT", "0.5")


def run(dfr: Runner, *args: str) -> tuple[int, str]:
    """`dfr ARGS` in this process (no traceback, no key in its output): code, output."""
    result = dfr(*args)
    return result.code, result.text


def apply(dfr: Runner, ws: Workspace, *extra: str) -> tuple[int, str]:
    return run(dfr, *ws.apply_args(*extra))


def converge(dfr: Runner, ws: Workspace, *extra: str) -> None:
    ws.apply_until_ok(3, *extra, run=dfr)


def _short_messages(text: str) -> None:
    """Every problem line is one line: no dumps of bodies or stacks."""
    for line in text.splitlines():
        assert len(line) < 700, f"an overlong line: {line[:200]}..."


#: (id, fault knobs, wait for final statuses during the faulty apply)
FAULTS: list[tuple[str, dict[str, Any], bool]] = [
    ("5xx-30pct", {"failure_rate": 0.3}, True),
    ("429-retry-after", {"rate_limit": 4, "retry_after": True}, False),
    ("429-no-retry-after", {"rate_limit": 4, "retry_after": False}, False),
    ("connection-resets", {"reset_rate": 0.3}, True),
    ("read-timeouts", {"hang_rate": 0.3, "hang_seconds": 1.5}, True),
    ("not-json", {"garbage_rate": 0.3}, True),
    ("missing-fields", {"missing_fields_rate": 0.4}, True),
    ("unknown-status", {"unknown_status_rate": 0.5}, True),
    ("ambiguous-posts-50pct", {"ambiguous_post_rate": 0.5}, False),
    ("ambiguous-posts-all", {"ambiguous_post_rate": 1.0}, False),
    ("5xx-after-create", {"post_5xx_after_create_rate": 0.5}, False),
    ("5xx-after-create-all", {"post_5xx_after_create_rate": 1.0}, False),
    (
        "everything-at-once",
        {
            "failure_rate": 0.1,
            "reset_rate": 0.1,
            "hang_rate": 0.05,
            "hang_seconds": 1.5,
            "garbage_rate": 0.1,
            "missing_fields_rate": 0.1,
            "unknown_status_rate": 0.1,
            "ambiguous_post_rate": 0.2,
            "post_5xx_after_create_rate": 0.2,
        },
        True,
    ),
]


@pytest.mark.parametrize(("knobs", "wait"), [pytest.param(k, w, id=i) for i, k, w in FAULTS])
@pytest.mark.parametrize("parallelism", ["1", "4"])
def test_fault_then_converge(
    emu: Emulator, ws: Workspace, dfr: Runner, knobs: dict[str, Any], wait: bool, parallelism: str
) -> None:
    ws.write_manifests(N)
    emu.configure(**knobs)
    waiting = ("--timeout", "3s") if wait else ("--no-wait",)
    code, text = apply(dfr, ws, "--parallelism", parallelism, *waiting)
    assert code in (0, 1), text
    _short_messages(text)
    # Never a duplicate, even before convergence: at most one run per manifest.
    samples = [(r.get("runtime_params") or {}).get("number_of_samples") for r in emu.runs()]
    assert len(samples) == len(set(samples)), f"duplicate runs while faulty: {samples}"
    emu.configure(**OFF)
    converge(dfr, ws, "--parallelism", parallelism, "--no-wait")
    check_converged(ws, emu.runs())


def test_recorded_run_that_now_answers_404(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write_manifests(3)
    converge(dfr, ws, "--no-wait")
    gone = ws.read_state().runs["run-2"].run_id
    assert gone is not None
    emu.forget(gone)
    # Waiting notices the 404: a clear message, exit 1, nothing submitted blindly.
    code, text = apply(dfr, ws, "--timeout", "5s")
    assert code == 1, text
    assert "no longer exists" in text
    assert emu.stats()["requests"].get("runs.create", 0) == 3
    record = ws.read_state().runs["run-2"]
    assert record.run_id == gone and record.drift == "not_found"
    # The plan shows it as a create; the next apply submits it once.
    converge(dfr, ws, "--no-wait")
    ids = check_converged(ws, emu.runs())
    assert ids["run-2"] != gone
    assert gone in ws.read_state().runs["run-2"].previous_run_ids


def test_identical_bodies_both_lost_are_never_guessed(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    """Two manifests, one body, both answers lost: dfr asks, and `dfr import` settles it."""
    ws.write_manifests(2, identical=True)
    # Both POSTs in flight together (latency), both create, both answers dropped.
    emu.configure(ambiguous_posts=2, latency=0.2)
    code, text = apply(dfr, ws, "--parallelism", "2", "--no-wait")
    assert code == 1, text
    runs = emu.runs()
    assert len(runs) == 2
    ids = sorted(r["id"] for r in runs)
    for run_id in ids:
        assert run_id in text, text
    assert "dfr import run-1 RUN_ID" in text or "dfr import run-2 RUN_ID" in text, text
    emu.configure(latency=0.0)
    # Asking again does not guess either, and creates nothing.
    code, text = apply(dfr, ws, "--no-wait")
    assert code == 1 and "will not guess" in text, text
    assert len(emu.runs()) == 2, text
    # The user picks one; the other is then the only candidate left and is adopted.
    code, text = run(dfr, "import", "run-1", ids[0], str(ws.manifests))
    assert code == 0, text
    converge(dfr, ws, "--no-wait")
    state = ws.read_state()
    assert {state.runs["run-1"].run_id, state.runs["run-2"].run_id} == set(ids)
    assert state.runs["run-1"].run_id == ids[0]
    assert len(emu.runs()) == 2
    assert emu.stats()["requests"].get("runs.create", 0) == 2
    assert_no_traceback(ws.outputs)
