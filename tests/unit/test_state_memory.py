"""InMemoryBackend: the fake other modules test with has the real semantics."""

from __future__ import annotations

import threading

import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state.backend import Backend, Store
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import RunRecord, State


def rec(name: str, **fields: object) -> RunRecord:
    return RunRecord.new(name, now="t", **fields)  # type: ignore[arg-type]


def test_is_a_backend_with_stores() -> None:
    b = InMemoryBackend()
    assert isinstance(b, Backend)
    with b.lock("apply") as store:
        assert isinstance(store, Store)
    assert b.describe() == "memory"


def test_writes_are_visible_on_return_and_serial_grows() -> None:
    b = InMemoryBackend()
    empty = b.read()
    assert empty.serial == 0 and empty.runs == {}
    with b.lock("apply") as store:
        store.put(rec("a", run_id="r1", status="IN_PROGRESS"))
        assert b.read().runs["a"].status == "PROCESSING"
        store.put(rec("b"))
        store.remove("a")
        assert store.state.serial == 3 and list(store.state.runs) == ["b"]
        assert b.read() == store.state
        lineage = store.state.lineage
    with b.lock("apply") as store:
        assert store.state.lineage == lineage and store.state.serial == 3
    assert b.checkpoints == 1  # on release of the writing session only


def test_starts_from_a_given_state() -> None:
    initial = State.empty("L").with_record(rec("x"))
    b = InMemoryBackend(initial)
    with b.lock("apply") as store:
        store.put(rec("y"))
    assert b.read().serial == 2 and set(b.read().runs) == {"x", "y"}
    assert initial.runs.keys() == {"x"}  # not mutated


def test_same_validation_as_the_real_backend() -> None:
    with InMemoryBackend().lock("apply") as store:
        with pytest.raises(StateError, match="cannot record run 'a'"):
            store.put(rec("a", total_cost=float("nan")))
        with pytest.raises(StateError, match="no run named 'zz'"):
            store.remove("zz")


def test_lock_contention_in_one_process() -> None:
    b = InMemoryBackend()
    with b.lock("apply"):
        with pytest.raises(StateLockedError, match=r"locked by pid \d+ .*dfr apply since"):  # noqa: SIM117
            with b.lock("plan"):
                pass
        caught: list[BaseException] = []

        def other() -> None:
            try:
                with b.lock("plan"):
                    pass
            except StateLockedError as exc:
                caught.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(caught) == 1
    with b.lock("plan"):
        pass


def test_lock_timeout_waits() -> None:
    b = InMemoryBackend()
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        with b.lock("apply"):
            locked.set()
            done.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    locked.wait()
    threading.Timer(0.1, done.set).start()
    with b.lock("plan", timeout=5):
        pass
    t.join()


def test_force_unlock() -> None:
    b = InMemoryBackend()
    with pytest.raises(StateError, match="not locked"):
        b.force_unlock("x")
    with b.lock("apply"):
        holder = b.lock_holder()
        assert holder is not None
        with pytest.raises(StateError, match="does not match"):
            b.force_unlock("wrong")
        b.force_unlock(holder["id"])
        with b.lock("plan"):
            pass


def test_threads_put_concurrently() -> None:
    b = InMemoryBackend()
    with b.lock("apply") as store:
        threads = [
            threading.Thread(target=lambda t=t: [store.put(rec(f"t{t}-{i}")) for i in range(50)])
            for t in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert b.read().serial == 200 and len(b.read().runs) == 200


def test_fail_after_simulates_an_unwritable_state() -> None:
    b = InMemoryBackend(fail_after=1)
    with b.lock("apply") as store:
        store.put(rec("a"))
        with pytest.raises(StateError, match="simulated write failure"):
            store.put(rec("b"))
        with pytest.raises(StateError, match="earlier write failed"):
            store.put(rec("c"))
    assert list(b.read().runs) == ["a"]
