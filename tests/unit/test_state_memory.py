"""InMemoryBackend's own knobs: a given first state, checkpoints counted, writes that fail.

The backend contract (`tests/state/test_contract.py`) runs on it as on the real
backends: reads, writes, locks, force-unlock, moves, policies, threads.
"""

from __future__ import annotations

import pytest

from reconciler.errors import StateError
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import RunRecord, State


def rec(name: str, **fields: object) -> RunRecord:
    return RunRecord.new(name, now="t", **fields)  # type: ignore[arg-type]


def test_a_checkpoint_on_the_release_of_a_writing_session_only() -> None:
    b = InMemoryBackend()
    with b.lock("apply") as store:
        store.put(rec("a"))
    with b.lock("apply"):
        pass
    assert b.checkpoints == 1


def test_starts_from_a_given_state() -> None:
    initial = State.empty("L").with_record(rec("x"))
    b = InMemoryBackend(initial)
    with b.lock("apply") as store:
        store.put(rec("y"))
    assert b.read().serial == 2 and set(b.read().runs) == {"x", "y"}
    assert initial.runs.keys() == {"x"}  # not mutated


def test_fail_after_simulates_an_unwritable_state() -> None:
    b = InMemoryBackend(fail_after=1)
    with b.lock("apply") as store:
        store.put(rec("a"))
        with pytest.raises(StateError, match="simulated write failure"):
            store.put(rec("b"))
        with pytest.raises(StateError, match="earlier write failed"):
            store.put(rec("c"))
    assert list(b.read().runs) == ["a"]
