"""The state contract across processes, on the backends whose state outlives one: a
holder in another process names itself, frees the lock when it is killed, and
keeps every put it acknowledged. Part of the one contract (`test_contract.py`),
on the file and PostgreSQL backends (`persistent`; see `conftest.py`).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from state_holder import Holder
from state_records import sample
from state_subjects import Subject

from reconciler.errors import StateLockedError


@contextmanager
def _child(persistent: Subject) -> Iterator[Holder]:
    """A process holding the lock, ended (killed if need be) on the way out."""
    holder = persistent.child()
    try:
        yield holder
    finally:
        holder.end()


def test_another_process_is_refused_at_once_naming_the_holder_and_its_kill_frees_the_lock(
    persistent: Subject,
) -> None:
    with _child(persistent) as holder:
        start = time.monotonic()
        with pytest.raises(StateLockedError) as info, persistent.open().lock("plan"):
            pass
        assert time.monotonic() - start < persistent.refused_within
        message = info.value.message
        assert f"locked by pid {holder.pid} on host {socket.gethostname()} " in message
        assert f"lock id {holder.lock_id}" in message and "dfr apply since" in message
        assert f"dfr force-unlock {holder.lock_id}" in message
        assert (persistent.open().lock_holder() or {}).get("pid") == holder.pid
        holder.kill()
        # The kernel (flock) or the server (advisory lock) let go with the process:
        # no stale lock, no force-unlock needed.
        with persistent.open().lock("apply", timeout=10) as store:
            assert store.state.serial == 0
            store.put(sample("after-kill"))
            assert (persistent.open().lock_holder() or {}).get("pid") == os.getpid()
        assert persistent.open().lock_holder() is None


def test_a_waiting_process_gets_the_lock_when_the_holder_ends_and_sees_its_writes(
    persistent: Subject,
) -> None:
    with _child(persistent) as holder:
        assert holder.ask("put first") == "ok first"
        threading.Timer(0.5, holder.tell, args=("release",)).start()
        with persistent.open().lock("apply", timeout=20) as store:
            assert "first" in store.state.runs
            assert holder.proc.wait(10) == 0


def test_a_killed_holder_keeps_every_acknowledged_put_and_nothing_else(
    persistent: Subject,
) -> None:
    with _child(persistent) as holder:
        acknowledged = [f"run-{i}" for i in range(5)]
        for name in acknowledged:
            assert holder.ask(f"put {name}") == f"ok {name}"
        holder.kill()
    state = persistent.open().read()
    assert sorted(state.runs) == acknowledged and state.serial == 5
    # The intents (write-ahead notes) are there for the next runner to resolve.
    assert all(r.intent is not None for r in state.runs.values())
    with persistent.open().lock("apply", timeout=10) as store:
        assert store.state == state
    assert persistent.leftovers() == []


@pytest.mark.parametrize("acks", [1, 350, 800])
def test_a_writer_killed_at_any_moment_keeps_every_acknowledged_put(
    persistent: Subject, acks: int
) -> None:
    """Killed mid-append, mid-transaction or mid-checkpoint: whatever it was doing."""
    acked: dict[str, int] = {}
    with _child(persistent) as holder:
        holder.tell("flood")
        for _ in range(acks):
            name, index = holder.readline().split()
            acked[name] = int(index)
        holder.kill()
        # Acknowledgements already in the pipe count too: each was printed only
        # after its put() returned.
        assert holder.proc.stdout is not None
        for line in holder.proc.stdout:
            name, index = line.split()
            acked[name] = int(index)
    state = persistent.open().read()
    last = max(acked.values())
    # Every acknowledged put is there; at most the one in flight is extra.
    assert state.serial in (last + 1, last + 2)
    in_flight = f"run-{last + 1}"
    for name, i in acked.items():
        assert state.runs[name].run_id in (f"run-{i}", in_flight)
    # And the next session opens on it (recovering what the kill left) and writes on.
    with persistent.open().lock("apply") as store:
        assert store.state == state
        store.put(sample("z"))
    assert persistent.leftovers() == []
    assert persistent.open().read().serial == state.serial + 1
