"""Crash points for the reliability tests; inert unless DFR_TEST_CRASH_AT is set.

`tests/reliability` proves that a `dfr apply` killed at any moment loses no
run id and causes no duplicate. Killing by timing alone cannot land reliably
between a POST's answer and the state write that records it (microseconds
apart), so the code names its risky moments and the tests pick one:

    DFR_TEST_CRASH_AT=after-post:3            SIGKILL at the 3rd hit of "after-post"
    DFR_TEST_CRASH_AT=after-post:3:SIGTERM    send SIGTERM to ourselves instead

Points: `before-post` (intent durable, POST not sent), `after-post` (the run
exists, its id not yet recorded), `after-record` (id recorded), `wait-round`
(before a status round while waiting), `journal-torn` (half a journal line
written), `checkpoint-<step>` (between the steps of a state checkpoint, see
`reconciler.state.local`).

The variable is read once at import. When it is unset, `hit` returns after one
comparison of a module global: the hook costs nothing in normal use. It is
not a user feature and is not documented in the CLI.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "DFR_TEST_CRASH_AT"

_lock = threading.Lock()
_point: str | None = None
_at = 0
_signal = signal.SIGKILL
_hits = 0


def arm(spec: str | None) -> None:
    """Set (or with None clear) the crash point; `spec` as in DFR_TEST_CRASH_AT."""
    global _point, _at, _signal, _hits
    with _lock:
        _hits = 0
        if not spec:
            _point = None
            return
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or int(parts[1]) < 1:
            raise ValueError(f"{ENV}={spec!r}: expected POINT:N or POINT:N:SIGNAL")
        name = parts[2] if len(parts) == 3 else "SIGKILL"
        try:
            _signal = signal.Signals[name]
        except KeyError:
            raise ValueError(f"{ENV}={spec!r}: unknown signal {name}") from None
        _point, _at = parts[0], int(parts[1])


def due(point: str) -> bool:
    """Count one pass through `point`; True at the chosen pass (then call `fire`)."""
    if _point is None or point != _point:
        return False
    global _hits
    with _lock:
        _hits += 1
        return _hits == _at


def fire() -> None:
    """Send the chosen signal to this process (SIGKILL never returns)."""
    os.kill(os.getpid(), _signal)
    if _signal == signal.SIGKILL:  # pragma: no cover - the kernel kills us first
        os._exit(137)


def hit(point: str) -> None:
    """Count one pass through `point`; at the chosen pass, signal this process."""
    if due(point):
        fire()


try:
    arm(os.environ.get(ENV))
except ValueError as exc:  # a test typo: say so, stay inert
    os.write(2, f"warning: {exc}; crash hook disabled\n".encode())
