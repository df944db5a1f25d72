"""Store.put_many on the file backend: one group commit (one fsync) for many records.

What put_many means on every backend (a batch durable on return, one serial per
record, refused whole before writing) is in `tests/state/test_contract.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reconciler import observe
from reconciler.errors import StateError
from reconciler.state.backend import Store
from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord, State


def rec(name: str, i: int = 0) -> RunRecord:
    return RunRecord.new(
        name,
        spec={"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": i + 1},
        run_id=f"run-{name}-{i}",
        now="2026-01-01T00:00:00.000Z",
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "dfr.state.json"


def test_one_fsync_for_the_batch_and_serial_grows_by_its_length(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("first"))
        fsyncs = b.stats.fsyncs
        store.put_many([rec(f"r{i}", i) for i in range(50)])
        assert b.stats.fsyncs == fsyncs + 1
        assert store.state.serial == 51
        assert b.stats.journal_lines == 51
    state = b.read()
    assert state.serial == 51 and len(state.runs) == 51
    assert state.runs["r7"] == rec("r7", 7)


def test_failed_write_mid_batch_poisons_and_keeps_memory_equal_to_disk(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = LocalBackend(path)
    real_write = os.write
    calls = {"n": 0}

    def fail_on_third(fd: int, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    with b.lock("apply") as store:
        monkeypatch.setattr(os, "write", fail_on_third)
        with pytest.raises(StateError, match="No space left"):
            store.put_many([rec(f"r{i}") for i in range(5)])
        monkeypatch.setattr(os, "write", real_write)
        assert set(store.state.runs) == {"r0", "r1"}
        with pytest.raises(StateError, match="an earlier write failed"):
            store.put_many([rec("later")])
    assert set(b.read().runs) == {"r0", "r1"}


def test_checkpoint_after_a_large_batch(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put_many([rec(f"r{i % 10}", i) for i in range(300)])
        assert b.stats.checkpoints == 1  # past max(256, len(runs)) pending lines
    assert b.read().serial == 300 and len(b.read().runs) == 10


def test_a_store_without_put_many_puts_one_by_one() -> None:
    class OnlyPut(Store):
        """A Store written before put_many existed: the default loops over put."""

        def __init__(self) -> None:
            self.records: list[RunRecord] = []

        @property
        def state(self) -> State:
            return State.empty()

        def put(self, record: RunRecord) -> None:
            self.records.append(record)

        def remove(self, name: str) -> None:
            raise NotImplementedError

        def checkpoint(self) -> None:
            return None

    s = OnlyPut()
    s.put_many([rec("x"), rec("y")])
    assert [r.name for r in s.records] == ["x", "y"]


class _Run:
    def __init__(self, run_id: str, status: str) -> None:
        self.id = run_id
        self.status = status
        self.spec_version = 2
        self.runtime_params = {"number_of_samples": 10, "revision_model": None}


class _Client:
    def __init__(self, runs: list[_Run]) -> None:
        self.runs = runs
        self.gets: list[str] = []

    def list_runs(self) -> list[_Run]:
        return self.runs

    def get_run(self, run_id: str) -> _Run:
        # Asked once per run that ends while its record does not know what it used.
        self.gets.append(run_id)
        return next(r for r in self.runs if r.id == run_id)


def test_observe_stores_a_rounds_changes_with_one_fsync(path: Path) -> None:
    b = LocalBackend(path)
    records = [rec(f"r{i}", i) for i in range(40)]
    with b.lock("apply") as store:
        store.put_many(records)
        fsyncs = b.stats.fsyncs
        seen: list[str] = []
        client = _Client([_Run(r.run_id or "", "SUCCEEDED") for r in records])
        out = observe.observe(client, records, store, on_change=lambda _a, z: seen.append(z.name))
        assert b.stats.fsyncs == fsyncs + 1
        assert len(seen) == 40 and all(r.status == "SUCCEEDED" for r in out)
        assert len(client.gets) == 40  # what each run used, read once as it ends
        again = observe.observe(client, out, store)
        assert len(client.gets) == 40 and all(r.used["spec_version"] == 2 for r in again)
    assert all(r.status == "SUCCEEDED" for r in b.read().runs.values())


def test_observe_with_a_sink_that_only_puts() -> None:
    class Sink:
        def __init__(self) -> None:
            self.put_records: list[RunRecord] = []

        def put(self, record: RunRecord) -> None:
            self.put_records.append(record)

    sink = Sink()
    records = [rec("a"), rec("b", 1)]
    observe.observe(_Client([_Run(r.run_id or "", "PROCESSING") for r in records]), records, sink)
    assert [r.status for r in sink.put_records] == ["PROCESSING", "PROCESSING"]
