"""LocalBackend's checkpoints on a real file system: backups, a crash at every step,
failures, a snapshot replaced under a held lock, amortised cost, readers meanwhile."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from local_state import files, journal_lines, mode, rec, saved

from reconciler.errors import StateConflictError, StateError
from reconciler.state import statefile
from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord, State


@pytest.fixture
def path(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    return d / "dfr.state.json"


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about bytes and interleavings, not durability: fsync costs ~1 ms."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


# --------------------------------------------------------------------------- checkpoints


def test_backup_holds_the_previous_snapshot(path: Path) -> None:
    b = saved(path, rec("a"))
    assert not Path(str(path) + ".backup").exists()  # nothing to back up the first time
    first = path.read_bytes()
    with b.lock("apply") as store:
        store.put(rec("b"))
    assert Path(str(path) + ".backup").read_bytes() == first
    second = path.read_bytes()
    with b.lock("apply") as store:
        store.put(rec("c"))
        store.checkpoint()
        assert Path(str(path) + ".backup").read_bytes() == second


def test_backup_falls_back_to_a_copy_without_hard_links(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = saved(path, rec("a"))
    first = path.read_bytes()

    def no_links(src: str, dst: str) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with b.lock("apply") as store:
        store.put(rec("b"))
    assert Path(str(path) + ".backup").read_bytes() == first
    assert mode(str(path) + ".backup") == 0o600


def test_read_only_session_does_not_rewrite_anything(path: Path) -> None:
    b = saved(path, rec("a"))
    with b.lock("apply") as store:
        store.put(rec("b"))
    stamp = {n: os.stat(path.parent / n).st_ino for n in files(path)}
    with b.lock("status") as store:
        store.checkpoint()
    assert {n: os.stat(path.parent / n).st_ino for n in files(path)} == stamp


CHECKPOINT_STEPS = ["temp-written", "backup-written", "replaced", "dir-synced", "journal-removed"]


def test_crash_at_every_checkpoint_step_keeps_every_acknowledged_put(
    path: Path, tmp_path: Path
) -> None:
    """Copy the directory at each step, as a crash there would leave it; each copy must read."""
    b = LocalBackend(path)
    acked: dict[str, RunRecord] = {}
    serial = [0]
    crashes: list[tuple[str, Path, dict[str, RunRecord], int]] = []

    def hook(step: str) -> None:
        copy = tmp_path / f"crash-{len(crashes)}-{step}"
        shutil.copytree(path.parent, copy)
        crashes.append((step, copy, dict(acked), serial[0]))

    b.fault_hook = hook

    def put(store: Any, r: RunRecord) -> None:
        store.put(r)
        acked[r.name] = r
        serial[0] += 1

    with b.lock("apply") as store:  # first snapshot: no backup step
        put(store, rec("a"))
    with b.lock("apply") as store:
        put(store, rec("b"))
        put(store, rec("a", 1))
        store.checkpoint()
        put(store, rec("c"))
        store.remove("b")
        del acked["b"]
        serial[0] += 1
    assert {step for step, *_ in crashes} == set(CHECKPOINT_STEPS)
    assert len(crashes) == 3 * len(CHECKPOINT_STEPS)  # two explicit/release + the first

    for step, copy, expected, expected_serial in crashes:
        crashed = LocalBackend(copy / "dfr.state.json")
        state = crashed.read()
        assert state.runs == expected, step
        assert state.serial == expected_serial, step
        # Recovery: a new session opens on it, cleans up, and writes on.
        with crashed.lock("apply") as store:
            assert store.state == state
            store.put(rec("z"))
        names = files(copy / "dfr.state.json")
        assert not [n for n in names if ".tmp-" in n], (step, names)
        assert set(crashed.read().runs) == {*expected, "z"}


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", CHECKPOINT_STEPS)
def test_failure_inside_a_checkpoint_loses_nothing(path: Path, step: str) -> None:
    b = saved(path, rec("a"))

    def hook(at: str) -> None:
        if at == step:
            raise Crash(at)

    b.fault_hook = hook
    with pytest.raises(Crash), b.lock("apply") as store:
        store.put(rec("b"))
        store.put(rec("a", 1))
        store.checkpoint()
    # Poisoned store: released without another checkpoint attempt.
    b.fault_hook = None
    assert b.read().runs == {"a": rec("a", 1), "b": rec("b")}
    with b.lock("apply") as store:
        store.put(rec("c"))
    assert set(b.read().runs) == {"a", "b", "c"}
    assert not [n for n in files(path) if ".tmp-" in n]


def test_failed_journal_write_is_cut_back_and_poisons_the_store(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = LocalBackend(path)
    real_write = os.write
    with b.lock("apply") as store:
        store.put(rec("a"))

        def half_then_fail(fd: int, data: Any) -> int:
            real_write(fd, bytes(data[:10]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "write", half_then_fail)
        with pytest.raises(StateError, match="No space left on device"):
            store.put(rec("b"))
        monkeypatch.setattr(os, "write", real_write)
        with pytest.raises(StateError, match="an earlier write failed"):
            store.put(rec("c"))
        assert Path(str(path) + ".journal").read_bytes().endswith(b"}\n")
        assert set(store.state.runs) == {"a"}
    assert set(b.read().runs) == {"a"}


def test_snapshot_replaced_under_a_held_lock_is_a_conflict(path: Path) -> None:
    b = saved(path, rec("a"))
    other = State.empty().with_record(rec("x"))
    with pytest.raises(StateConflictError, match="changed by another process"):  # noqa: SIM117
        with b.lock("apply") as store:
            store.put(rec("b"))
            path.write_bytes(statefile.dumps(other))  # someone else wrote meanwhile
            store.checkpoint()
    assert statefile.loads(path.read_bytes(), "x") == other  # not overwritten
    assert Path(str(path) + ".journal").exists()  # our change is kept


def test_a_conflict_never_points_at_a_journal_that_is_gone(path: Path) -> None:
    """The other writer folded our journal into its snapshot and removed it: the message
    used to say our changes were "kept in" that deleted file."""
    b = saved(path, rec("a"))
    other = State.empty().with_record(rec("x"))
    journal = Path(str(path) + ".journal")
    with pytest.raises(StateConflictError) as info:  # noqa: SIM117
        with b.lock("apply") as store:
            store.put(rec("b"))
            store.put(rec("c").evolve(run_id=None))
            path.write_bytes(statefile.dumps(other))  # someone else wrote meanwhile...
            journal.unlink()  # ...and removed the journal, as a checkpoint does
            store.checkpoint()
    message = str(info.value)
    assert "kept in" not in message and not journal.exists()
    assert f"{path.name}.journal" in message and "removed" in message, message
    assert message.endswith("saved only if that process read them first: b (run run-b-0), c")
    assert "dfr import" in (info.value.hint or ""), info.value.hint


def test_a_conflict_names_the_journal_that_keeps_the_changes(path: Path) -> None:
    b = LocalBackend(path)
    with pytest.raises(StateConflictError) as info:  # noqa: SIM117
        with b.lock("apply") as store:
            store.put(rec("b"))
            path.write_bytes(statefile.dumps(State.empty().with_record(rec("x"))))
            store.checkpoint()
    assert f"are kept in {path}.journal" in str(info.value)


# --------------------------------------------------------------------------- amortised cost


@pytest.mark.usefixtures("no_fsync")
def test_5000_puts_write_linear_bytes(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        for i in range(5000):
            store.put(rec(f"run-{i:05d}", i))
    state = b.read()
    assert len(state.runs) == 5000 and state.serial == 5000
    snapshot = path.stat().st_size
    s = b.stats
    assert s.journal_lines == 5000
    # A full rewrite per put would be ~2,500 snapshots; we write the journal
    # once and the snapshot a small constant number of times.
    assert s.snapshot_bytes <= 3 * snapshot
    assert s.journal_bytes + s.snapshot_bytes <= 4 * snapshot


@pytest.mark.usefixtures("no_fsync")
def test_updates_checkpoint_every_max_256_n_lines(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        for i in range(1000):
            store.put(rec(f"n{i % 10}", i))
        assert b.stats.checkpoints == 3  # after lines 257, 514, 771: threshold 256
        assert len(journal_lines(path)) == 1000 - 3 * 257
    with b.lock("apply") as store:
        for i in range(600):
            store.put(rec(f"m{i}", i))  # 610 runs: threshold is len(runs)
        checkpoints = b.stats.checkpoints
        for i in range(620):
            store.put(rec(f"m{i % 600}", i + 1))
        assert b.stats.checkpoints == checkpoints + 1
    assert b.read().serial == 2220


# --------------------------------------------------------------------------- concurrency


@pytest.mark.usefixtures("no_fsync")
def test_readers_never_see_an_inconsistent_state_while_a_writer_checkpoints(
    path: Path,
) -> None:
    b = LocalBackend(path)
    stop = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def reader() -> None:
        r = LocalBackend(path)
        try:
            while not stop.is_set():
                s = r.read()
                assert len(s.runs) == min(s.serial, 20), s.serial
                seen.append(s.serial)
        except BaseException as exc:
            failures.append(exc)

    t = threading.Thread(target=reader)
    with b.lock("apply") as store:
        t.start()
        for i in range(1500):
            store.put(rec(f"n{i % 20}", i))
    stop.set()
    t.join()
    assert failures == []
    assert seen == sorted(seen) and len(seen) > 5
