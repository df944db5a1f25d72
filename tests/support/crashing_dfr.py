"""`dfr` with a crash point armed: the reliability tests' entry point, never shipped.

    python tests/support/crashing_dfr.py [--crash-at POINT:N[:SIGNAL]] DFR-ARGS...

registers a callback on POINT of `reconciler.hooks` that sends SIGNAL (default
SIGKILL) to this process at the Nth pass through it, then runs `dfr DFR-ARGS...`
(`reconciler.cli.run`) in this process and exits with its code:

    --crash-at after-post:3            SIGKILL at the 3rd pass through after-post
    --crash-at after-post:3:SIGTERM    SIGTERM instead (dfr stops cleanly, exit 143)

Without --crash-at, `DFR_TEST_CRASH_AT` in the environment names the point, for
callers that can only set the environment; without either, this is plain dfr.
A point that offers a half-done step (a torn journal line) has it done first.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from reconciler import hooks
from reconciler.cli import run

ENV = "DFR_TEST_CRASH_AT"
FLAG = "--crash-at"
USAGE = f"usage: crashing_dfr.py [{FLAG} POINT:N[:SIGNAL]] DFR-ARGS..."


@dataclass
class CrashPoint:
    """Signal this process at the `at`-th pass through `point` (passes counted across threads)."""

    point: str
    at: int
    signum: signal.Signals = signal.SIGKILL
    _passes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def parse(cls, spec: str) -> CrashPoint:
        """`POINT:N` or `POINT:N:SIGNAL`; ValueError if it is neither."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or int(parts[1]) < 1:
            raise ValueError(f"crash point {spec!r}: expected POINT:N or POINT:N:SIGNAL")
        name = parts[2] if len(parts) == 3 else "SIGKILL"
        try:
            signum = signal.Signals[name]
        except KeyError:
            raise ValueError(f"crash point {spec!r}: unknown signal {name}") from None
        return cls(parts[0], int(parts[1]), signum)

    def __call__(self, point: str, half_done: hooks.HalfDone) -> None:
        with self._lock:
            self._passes += 1
            due = self._passes == self.at
        if not due:
            return
        if half_done is not None:
            half_done()
        os.kill(os.getpid(), self.signum)
        if self.signum == signal.SIGKILL:  # pragma: no cover - the kernel kills us first
            os._exit(137)


def split(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the crash point asked for, if any; the arguments for dfr)."""
    args = list(argv)
    if args[:1] == [FLAG] and len(args) >= 2:
        return args[1], args[2:]
    if args and args[0].startswith(FLAG + "="):
        return args[0].split("=", 1)[1], args[1:]
    return os.environ.get(ENV) or None, args


def main(argv: Sequence[str]) -> int:
    spec, args = split(argv)
    if spec is not None:
        try:
            crash = CrashPoint.parse(spec)
        except ValueError as exc:
            sys.stderr.write(f"crashing_dfr: {exc}\n{USAGE}\n")
            return 2
        hooks.register(crash.point, crash)
    return run(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
