"""Running dfr from a test: in this process, or as a process (under a pseudo-terminal too).

Every way returns a `Result`, and every output is checked: no traceback, no
"internal error", and no API key. `in_process` calls `reconciler.cli.run` with
the output captured by pytest's `capsys` (the `dfr` fixture's). `start` and
`finish` run `python -m reconciler` as a process in its own group, so that a
test can signal or kill it; with `crash_at` it runs `crashing_dfr.py` instead,
which arms a crash point first. `dfr_process` runs one to its end, optionally
with its stderr on a pseudo-terminal, for what only a real terminal shows.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support.emulators import KEY, kill_group

ROOT = Path(__file__).resolve().parents[2]
#: dfr with a crash point armed (see its docstring); never part of the package.
CRASHING_DFR = Path(__file__).resolve().with_name("crashing_dfr.py")
CRASH_ENV = "DFR_TEST_CRASH_AT"
#: Poll often: the in-process emulator's runs finish in 0.2 s.
POLL = "0.03s"
#: Every dfr process is killed if it takes longer than this (a hang is a failure).
PROCESS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Result:
    """What one dfr command did: exit code, stdout, stderr (`code, out, err = result`)."""

    code: int
    out: str
    err: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.code, self.out, self.err))

    @property
    def text(self) -> str:
        return self.out + self.err

    def lines(self, marker: str) -> list[str]:
        """Lines of stderr that contain `marker` (e.g. ': error: ')."""
        return [line for line in self.err.splitlines() if marker in line]

    @property
    def diagnostics(self) -> list[str]:
        """The `FILE:LINE:COL: severity: ...` lines of stderr."""
        return [line for line in self.err.splitlines() if re.match(r"^.+:\d+:\d+: \w+: ", line)]

    @property
    def summary(self) -> str:
        """The last line of stderr (validate's summary)."""
        return self.err.splitlines()[-1] if self.err else ""


#: A `dfr(*args)` runner, as the `dfr` fixture gives.
Runner = Callable[..., Result]


def assert_clean(texts: Iterable[str], secrets: Sequence[str] = (KEY,)) -> None:
    """No traceback, no internal error and no secret in any of `texts`."""
    for text in texts:
        assert "Traceback" not in text, text
        assert "internal error" not in text, text
        for secret in secrets:
            assert secret not in text, "the API key reached the output"


def in_process(
    args: Iterable[str | Path],
    capsys: pytest.CaptureFixture[str],
    secrets: Sequence[str] = (KEY,),
) -> Result:
    """`dfr ARGS` through `reconciler.cli.run` in this process, its output captured."""
    from reconciler.cli import run

    capsys.readouterr()
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    assert_clean((out, err), secrets)
    return Result(code, out, err)


def apply_args(*extra: str) -> list[str]:
    """`apply --auto-approve --poll-interval POLL` plus `extra`."""
    return ["apply", "--auto-approve", "--poll-interval", POLL, *extra]


def parse_json(text: str) -> Any:
    """stdout must be exactly one JSON document."""
    return json.loads(text)


# -- dfr as a process -------------------------------------------------------------------


def argv(*args: str, crash_at: str | None = None, crashing: bool = False) -> list[str]:
    """The command line of `dfr ARGS`: through crashing_dfr.py with `crash_at`
    (POINT:N[:SIGNAL]), or with `crashing` (the point is in the environment)."""
    if crash_at is not None:
        return [sys.executable, str(CRASHING_DFR), "--crash-at", crash_at, *args]
    if crashing:
        return [sys.executable, str(CRASHING_DFR), *args]
    return [sys.executable, "-m", "reconciler", *args]


def start(
    *args: str, env: dict[str, str], cwd: Path, crash_at: str | None = None
) -> subprocess.Popen[str]:
    """`dfr ARGS` as a process in its own group (so a test can signal or kill it)."""
    return subprocess.Popen(
        argv(*args, crash_at=crash_at, crashing=CRASH_ENV in env),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = PROCESS_TIMEOUT) -> Result:
    """Wait for a process of `start`; a hang is killed and fails the test."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        out, err = proc.communicate()
        raise AssertionError(f"dfr hung (killed after {timeout} s):\n{out}\n{err}") from None
    finally:
        kill_group(proc)
    return Result(proc.returncode, out, err)


def dfr_process(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    tty: bool = False,
    timeout: float = 30.0,
    tty_stdout: bool = False,
) -> Result:
    """`python -m reconciler ARGS` to its end; with tty=True its stderr is a pty (with
    tty_stdout=True its stdout instead: what a table drawn for a terminal looks like)."""
    command = argv(*args)
    if not tty:
        done = subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)
    master, slave = os.openpty()
    try:
        # A terminal of a known size, so rich draws a predictable display.
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        with subprocess.Popen(
            command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=slave if tty_stdout else subprocess.PIPE,
            stderr=subprocess.PIPE if tty_stdout else slave,
        ) as proc:
            os.close(slave)
            slave = -1
            chunks = _read_terminal(master, proc, timeout)
            piped = proc.stderr if tty_stdout else proc.stdout
            assert piped is not None
            other = piped.read().decode()
            code = proc.wait(timeout=timeout)
        shown = b"".join(chunks).decode(errors="replace")
        return Result(code, shown, other) if tty_stdout else Result(code, other, shown)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def _read_terminal(master: int, proc: subprocess.Popen[bytes], timeout: float) -> list[bytes]:
    """What the process writes to the terminal until it closes it or ends."""
    chunks: list[bytes] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
        raise AssertionError("dfr did not finish in time under the pty")
    return chunks
