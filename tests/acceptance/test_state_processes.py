"""The local state across real processes: lock contention, SIGKILL, crash mid-apply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.errors import StateLockedError
from reconciler.state.local import LocalBackend

HOLD = """
import sys, time
from reconciler.state.local import LocalBackend
with LocalBackend(sys.argv[1]).lock("apply") as store:
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""

# Records runs as fast as it can and prints each name once put() returned:
# the parent then kills it at a random moment, mid-append or mid-checkpoint.
WRITER = """
import sys
from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord
with LocalBackend(sys.argv[1]).lock("apply") as store:
    i = 0
    while True:
        name = f"n{i % 300}"
        store.put(RunRecord.new(name, run_id=f"run-{i}", now="t"))
        print(name, i, flush=True)
        i += 1
"""


@contextmanager
def child(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def state(tmp_path: Path) -> str:
    return str(tmp_path / "dfr.state.json")


def test_second_process_fails_fast_naming_the_holder_then_sigkill_frees_it(state: str) -> None:
    with child(HOLD, state, "60") as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        with pytest.raises(StateLockedError) as info, LocalBackend(state).lock("plan"):
            pass
        assert time.monotonic() - start < 1
        message = info.value.message
        assert f"locked by pid {holder.pid} on host " in message
        assert "dfr apply since" in message and "dfr force-unlock " in message
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel dropped the flock with the process: no stale lock.
    with LocalBackend(state).lock("apply") as store:
        assert store.state.serial == 0


def test_lock_timeout_waits_for_another_process(state: str) -> None:
    with child(HOLD, state, "0.5") as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with LocalBackend(state).lock("apply", timeout=10):
            assert holder.wait(5) == 0


@pytest.mark.parametrize("acks", [1, 350, 800])
def test_sigkill_mid_apply_keeps_every_acknowledged_put(state: str, acks: int) -> None:
    acked: dict[str, int] = {}
    with child(WRITER, state) as writer:
        assert writer.stdout is not None
        for _ in range(acks):
            name, index = writer.stdout.readline().split()
            acked[name] = int(index)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        # Acknowledgements already in the pipe count too: each was printed
        # only after its put() returned.
        for line in writer.stdout:
            name, index = line.split()
            acked[name] = int(index)
    b = LocalBackend(state)
    s = b.read()
    last = max(acked.values())
    # Every acknowledged put is there; at most the one in flight is extra.
    assert s.serial in (last + 1, last + 2)
    in_flight = f"run-{last + 1}"
    for name, i in acked.items():
        assert s.runs[name].run_id in (f"run-{i}", in_flight)
    # And the next session opens on it (recovering the journal) and writes on.
    with b.lock("apply") as store:
        assert store.state == s
    assert not os.path.exists(state + ".journal")
