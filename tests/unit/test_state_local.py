"""LocalBackend on a real file system: journal, checkpoints, crashes, lock, modes."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import (
    StateConflictError,
    StateCorruptError,
    StateError,
    StateLockedError,
    StateVersionError,
)
from reconciler.state import statefile
from reconciler.state.backend import Moved, StateMovedError
from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord, State


def rec(name: str, i: int = 0, **fields: Any) -> RunRecord:
    return RunRecord.new(
        name,
        spec={"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": i + 1},
        run_id=f"run-{name}-{i}",
        now="2026-01-01T00:00:00.000Z",
        **fields,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    return d / "dfr.state.json"


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests about bytes and interleavings, not durability: fsync costs ~1 ms."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def files(p: Path) -> list[str]:
    return sorted(f.name for f in p.parent.iterdir())


def journal_lines(p: Path) -> list[dict[str, Any]]:
    j = Path(str(p) + ".journal")
    return [json.loads(line) for line in j.read_text().splitlines()] if j.exists() else []


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


# --------------------------------------------------------------------------- basics


def test_nothing_yet_reads_empty_and_writes_nothing(path: Path) -> None:
    b = LocalBackend(path)
    s = b.read()
    assert s.serial == 0 and s.runs == {}
    with b.lock("plan") as store:
        assert store.state.runs == {}
    assert files(path) == ["dfr.state.json.lock"]
    assert b.describe() == str(path)


def test_round_trip_and_serial_grows_by_one_per_change(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        lineage = store.state.lineage
        store.put(rec("a"))
        assert store.state.serial == 1
        store.put(rec("b"))
        store.put(rec("a", 1))
        store.remove("b")
        assert store.state.serial == 4
        assert store.get("a") == rec("a", 1) and store.get("b") is None
        # Durable on return: another reader sees it before the session ends.
        assert LocalBackend(path).read() == store.state
    after = b.read()
    assert after.serial == 4 and after.lineage == lineage and list(after.runs) == ["a"]
    assert after.runs["a"] == rec("a", 1)
    assert statefile.loads(path.read_bytes(), "x") == after
    with b.lock("apply") as store:
        store.put(rec("c"))
    assert b.read().serial == 5 and b.read().lineage == lineage


def test_put_appends_one_journal_line_without_touching_the_snapshot(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
    before = path.read_bytes()
    with b.lock("apply") as store:
        store.put(rec("b"))
        store.remove("a")
        assert path.read_bytes() == before
        lines = journal_lines(path)
        assert [(x["serial"], x["op"], x["name"]) for x in lines] == [
            (2, "put", "b"),
            (3, "remove", "a"),
        ]
        assert set(lines[0]) == {"lineage", "serial", "op", "name", "record"}
        assert "record" not in lines[1]
        assert lines[0]["record"] == statefile.record_to_dict(rec("b"))
    # Released: checkpointed and the journal is gone.
    assert files(path) == ["dfr.state.json", "dfr.state.json.backup", "dfr.state.json.lock"]


def test_remove_unknown_name_is_an_error_without_a_change(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("state rm") as store:
        with pytest.raises(StateError, match="has no run named 'nope'"):
            store.remove("nope")
        store.put(rec("a"))  # still usable
        assert store.state.serial == 1


def test_unstorable_record_is_refused_before_anything_is_written(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        with pytest.raises(StateError, match="cannot record run 'a'"):
            store.put(rec("a", total_cost=float("inf")))
        store.put(rec("b"))
    assert list(b.read().runs) == ["b"] and b.read().serial == 1


def test_store_refuses_writes_after_release(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        pass
    with pytest.raises(StateError, match="lock was released"):
        store.put(rec("a"))


def test_files_are_0600(path: Path) -> None:
    old = os.umask(0)
    try:
        b = LocalBackend(path)
        with b.lock("apply") as store:
            store.put(rec("a"))
            assert mode(str(path) + ".journal") == 0o600
            store.checkpoint()
            store.put(rec("b"))
            store.checkpoint()
            assert mode(str(path) + ".lock") == 0o600
    finally:
        os.umask(old)
    for name in files(path):
        assert mode(path.parent / name) == 0o600, name


def test_symlinked_state_file_is_followed(path: Path) -> None:
    real = path.parent / "real" / "state.json"
    real.parent.mkdir()
    b0 = LocalBackend(real)
    with b0.lock("apply") as store:
        store.put(rec("a"))
    path.symlink_to(real)
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("b"))
    assert path.is_symlink() and set(LocalBackend(real).read().runs) == {"a", "b"}


def test_unusable_directory_gives_a_clear_state_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    b = LocalBackend(tmp_path / "file" / "dfr.state.json")
    assert b.read().runs == {}  # nothing there: nothing to read
    with pytest.raises(StateError) as info, b.lock("apply"):
        pass
    assert info.value.message.startswith("cannot create lock file ")
    assert "Not a directory" in info.value.message


# --------------------------------------------------------------------------- journal replay


def test_journal_is_replayed_after_a_crash(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
    snapshot = path.read_bytes()
    with b.lock("apply") as store:
        store.put(rec("b"))
        store.put(rec("a", 2))
        journal = Path(str(path) + ".journal").read_bytes()
    # Make the files look as if the process had died before releasing.
    path.write_bytes(snapshot)
    Path(str(path) + ".journal").write_bytes(journal)
    s = b.read()
    assert s.serial == 3 and s.runs == {"a": rec("a", 2), "b": rec("b")}
    # The next session folds the journal into the snapshot first.
    with b.lock("apply") as store:
        assert store.state == s
        assert not Path(str(path) + ".journal").exists()
        assert statefile.loads(path.read_bytes(), "x") == s


def test_first_session_crash_without_snapshot_keeps_its_runs(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
        store.put(rec("b"))
        lineage = store.state.lineage
        journal = Path(str(path) + ".journal").read_bytes()
    path.unlink()
    Path(str(path) + ".backup").unlink(missing_ok=True)
    Path(str(path) + ".journal").write_bytes(journal)
    s = b.read()
    assert s.lineage == lineage and s.serial == 2 and set(s.runs) == {"a", "b"}


def _crashed_session(path: Path, n: int = 3) -> bytes:
    """Leave PATH (serial 1) and a journal of `n` more puts, as a crash would."""
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("base"))
    snapshot = path.read_bytes()
    with b.lock("apply") as store:
        for i in range(n):
            store.put(rec(f"r{i}"))
        journal = Path(str(path) + ".journal").read_bytes()
    path.write_bytes(snapshot)
    return journal


@pytest.mark.parametrize("cut", [1, 10, -3, -2])
def test_torn_last_line_is_ignored(path: Path, cut: int) -> None:
    journal = _crashed_session(path)
    lines = journal.splitlines(keepends=True)
    torn = b"".join(lines[:-1]) + lines[-1][:cut]
    Path(str(path) + ".journal").write_bytes(torn)
    s = LocalBackend(path).read()
    assert s.serial == 3 and set(s.runs) == {"base", "r0", "r1"}
    # A session on it recovers and then appends cleanly.
    with LocalBackend(path).lock("apply") as store:
        store.put(rec("r9"))
    assert LocalBackend(path).read().serial == 4


def test_complete_last_line_missing_only_its_newline_is_kept(path: Path) -> None:
    journal = _crashed_session(path)
    Path(str(path) + ".journal").write_bytes(journal[:-1])
    assert set(LocalBackend(path).read().runs) == {"base", "r0", "r1", "r2"}


def test_garbage_tail_of_zero_bytes_is_ignored(path: Path) -> None:
    # What a power cut can leave after an unsynced append on some file systems.
    journal = _crashed_session(path)
    Path(str(path) + ".journal").write_bytes(journal + b"\0" * 300)
    assert LocalBackend(path).read().serial == 4


def test_bad_middle_line_is_corruption_naming_the_line(path: Path) -> None:
    journal = _crashed_session(path)
    lines = journal.splitlines(keepends=True)
    lines[1] = b'{"oops\n'
    Path(str(path) + ".journal").write_bytes(b"".join(lines))
    b = LocalBackend(path)
    with pytest.raises(StateCorruptError) as info:
        b.read()
    message = info.value.message
    assert message.startswith(f"{path}.journal:2:")
    assert message.endswith(f"; a backup of the previous version is at {path}.backup")
    before = {n: (path.parent / n).read_bytes() for n in files(path) if n != "dfr.state.json.lock"}
    with pytest.raises(StateCorruptError), b.lock("apply"):
        pass
    after = {n: (path.parent / n).read_bytes() for n in files(path) if n != "dfr.state.json.lock"}
    assert after == before  # refused to open: nothing was rewritten


def test_bad_record_in_journal_names_line_and_field(path: Path) -> None:
    journal = _crashed_session(path)
    lines = [json.loads(x) for x in journal.splitlines()]
    lines[0]["record"]["run_id"] = 42
    Path(str(path) + ".journal").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(StateCorruptError) as info:
        LocalBackend(path).read()
    assert info.value.message.startswith(
        f"{path}.journal:1: record.run_id: expected a string or null, found an integer"
    )


def test_journal_of_another_lineage_is_corruption(path: Path) -> None:
    journal = _crashed_session(path)
    other = journal.replace(LocalBackend(path).read().lineage.encode(), b"another-lineage")
    Path(str(path) + ".journal").write_bytes(other)
    with pytest.raises(StateCorruptError, match=r"journal:1: belongs to another state"):
        LocalBackend(path).read()


def test_gap_in_serials_is_corruption(path: Path) -> None:
    journal = _crashed_session(path)
    lines = journal.splitlines(keepends=True)
    Path(str(path) + ".journal").write_bytes(lines[0] + lines[2])
    with pytest.raises(StateCorruptError, match=r"journal:2: change 4 follows change 2"):
        LocalBackend(path).read()


def test_already_applied_journal_lines_are_skipped(path: Path) -> None:
    # A checkpoint that crashed after the rename but before removing the journal.
    journal = _crashed_session(path)
    b = LocalBackend(path)
    Path(str(path) + ".journal").write_bytes(journal)
    with b.lock("apply"):
        pass
    full = b.read()
    Path(str(path) + ".journal").write_bytes(journal)
    assert b.read() == full
    with b.lock("apply") as store:
        assert store.state == full
    assert not Path(str(path) + ".journal").exists()


# --------------------------------------------------------------------------- corrupt snapshot


def test_corrupt_snapshot_names_the_backup_and_is_never_overwritten(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
    with b.lock("apply") as store:
        store.put(rec("b"))
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.raises(StateCorruptError) as info:
        b.read()
    assert info.value.message.startswith(f"{path}:")
    assert info.value.message.endswith(f"a backup of the previous version is at {path}.backup")
    damaged = path.read_bytes()
    with pytest.raises(StateCorruptError), b.lock("apply"):
        pass
    assert path.read_bytes() == damaged
    assert set(LocalBackend(str(path) + ".backup").read().runs) == {"a"}


def test_corrupt_snapshot_without_backup_says_so(path: Path) -> None:
    path.write_text("{")
    with pytest.raises(StateCorruptError, match=r"; no backup exists$"):
        LocalBackend(path).read()


def test_newer_format_refuses_to_open_a_store(path: Path) -> None:
    path.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(StateVersionError, match="upgrade dfr"), LocalBackend(path).lock("apply"):
        pass
    assert json.loads(path.read_text()) == {"format_version": 99}


def test_deleted_state_with_backup_left_is_refused(path: Path) -> None:
    b = LocalBackend(path)
    for name in ("a", "b"):
        with b.lock("apply") as store:
            store.put(rec(name))
    path.unlink()
    with pytest.raises(StateCorruptError) as info:
        b.read()
    assert info.value.message == (
        f"{path} is missing but {path}.backup exists: restore it "
        f"(mv {path}.backup {path}), or delete the backup to start a new state"
    )


def test_unreadable_state_path_is_a_state_error(path: Path) -> None:
    path.mkdir()
    with pytest.raises(StateError, match="cannot read state"):
        LocalBackend(path).read()


# --------------------------------------------------------------------------- checkpoints


def test_backup_holds_the_previous_snapshot(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
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
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
    first = path.read_bytes()

    def no_links(src: str, dst: str) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    with b.lock("apply") as store:
        store.put(rec("b"))
    assert Path(str(path) + ".backup").read_bytes() == first
    assert mode(str(path) + ".backup") == 0o600


def test_read_only_session_does_not_rewrite_anything(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
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
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))

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
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
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
    b = LocalBackend(path)
    with b.lock("apply") as store:
        store.put(rec("a"))
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


def test_eight_threads_of_200_puts(path: Path) -> None:
    b = LocalBackend(path)
    errors: list[BaseException] = []
    with b.lock("apply") as store:
        store.put(rec("seed"))

        def work(t: int) -> None:
            try:
                for i in range(200):
                    store.put(rec(f"t{t}-{i}", i))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.state.serial == 1601 and len(store.state.runs) == 1601
        in_memory = store.state
    assert b.read() == in_memory
    assert b.stats.journal_lines == 1601


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


def test_second_lock_in_the_same_process_conflicts(path: Path) -> None:
    b1, b2 = LocalBackend(path), LocalBackend(path)
    with b1.lock("apply") as store:
        with pytest.raises(StateLockedError) as info, b2.lock("plan"):
            pass
        message = info.value.message
        assert message.startswith(f"state {path} is locked by pid {os.getpid()} on host ")
        assert "(dfr apply since " in message and store.state.serial == 0
        lock_id = json.loads(Path(str(path) + ".lock").read_text())["id"]
        assert message.endswith(
            f"lock id {lock_id}). Wait for it to finish, or if that process is gone run: "
            f"dfr force-unlock {lock_id}"
        )
        # Also from another thread.
        caught: list[BaseException] = []

        def other() -> None:
            try:
                with b1.lock("apply"):
                    pass
            except StateLockedError as exc:
                caught.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert len(caught) == 1
    with b2.lock("plan"):
        pass
    assert Path(str(path) + ".lock").read_bytes() == b""  # holder info cleared


def test_lock_holder_info(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply") as store:
        info = b.lock_holder()
        assert info is not None
        assert set(info) == {"id", "pid", "hostname", "user", "operation", "created", "dfr_version"}
        assert info["operation"] == "apply" and info["pid"] == os.getpid()
        assert getattr(store, "lock_id", None) == info["id"]
    assert b.lock_holder() is None


def test_lock_timeout_waits_for_the_holder(path: Path) -> None:
    b = LocalBackend(path)
    released = threading.Event()
    locked = threading.Event()

    def hold() -> None:
        with b.lock("apply"):
            locked.set()
            time.sleep(0.3)
        released.set()

    t = threading.Thread(target=hold)
    t.start()
    locked.wait()
    start = time.monotonic()
    with LocalBackend(path).lock("plan", timeout=5.0):
        assert released.is_set()
    assert time.monotonic() - start < 4
    t.join()


def test_lock_timeout_expires(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply"):
        start = time.monotonic()
        with pytest.raises(StateLockedError), LocalBackend(path).lock("plan", timeout=0.2):
            pass
        assert 0.15 < time.monotonic() - start < 2


def test_force_unlock_with_a_wrong_id_is_refused(path: Path) -> None:
    b = LocalBackend(path)
    with b.lock("apply"):
        with pytest.raises(StateError, match="does not match the lock on state"):
            b.force_unlock("not-the-id")
        with pytest.raises(StateLockedError):  # noqa: SIM117
            with LocalBackend(path).lock("plan"):
                pass
    with pytest.raises(StateError, match="is not locked"):
        b.force_unlock("anything")


def test_force_unlock_of_a_live_local_holder_is_refused(path: Path) -> None:
    # The holder (this process, via another backend) is alive on this host...
    b = LocalBackend(path)
    with b.lock("apply"):
        info = b.lock_holder()
        assert info is not None
        # ...pretend it is another live local process: our parent.
        info["pid"] = os.getppid()
        Path(str(path) + ".lock").write_text(json.dumps(info))
        with pytest.raises(StateError, match="still running: stop it first"):
            LocalBackend(path).force_unlock(info["id"])


def test_force_unlock_clears_stale_info_and_unlinks_a_remote_holders_lock(path: Path) -> None:
    b = LocalBackend(path)
    # Stale info (the holder was killed; the kernel already dropped its flock).
    stale = {"id": "L1", "pid": 999999, "hostname": "elsewhere", "operation": "apply"}
    Path(str(path) + ".lock").write_text(json.dumps(stale))
    b.force_unlock("L1")
    assert b.lock_holder() is None
    # A holder on another host (shared file system) that is believed gone.
    with b.lock("apply"):
        info = b.lock_holder()
        assert info is not None
        info["hostname"] = "another-host"
        Path(str(path) + ".lock").write_text(json.dumps(info))
        b.force_unlock(info["id"])
        with LocalBackend(path).lock("plan"):  # a fresh lock file: takes the lock
            pass


# --------------------------------------------------------------------------- moved


def _moved_to(backend: LocalBackend, store_state: State) -> Moved:
    return Moved.new(LocalBackend(str(backend.path) + ".new"), store_state)


def test_a_moved_state_refuses_reads_and_locks_and_its_mark_is_durable_and_0600(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(path)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with backend.lock("state migrate") as store:
        store.put(rec("a"))
        synced.clear()
        store.mark_moved(_moved_to(backend, store.state))
        assert len(synced) >= 2  # the mark's file, then its directory entry
    before = path.read_bytes()
    for attempt in (backend.read, lambda: backend.lock("apply").__enter__()):
        with pytest.raises(StateMovedError, match=r"was moved to .*\.new by .* at ") as info:
            attempt()
        assert info.value.hint and f"--state {path}.new" in info.value.hint
    assert mode(str(path) + ".moved") == 0o600 and path.read_bytes() == before
    # allow_moved (dfr state migrate) opens it, and can take the mark away.
    backend.allow_moved = True
    with backend.lock("state migrate") as store:
        assert store.moved is not None and store.moved.serial == 1
        store.mark_moved(None)
    assert not os.path.exists(str(path) + ".moved")
    assert LocalBackend(path).read().runs.keys() == {"a"}


def test_an_unreadable_mark_still_refuses(path: Path) -> None:
    backend = LocalBackend(path)
    with backend.lock("test") as store:
        store.put(rec("a"))
    Path(str(path) + ".moved").write_bytes(b"\x00{not json")
    with pytest.raises(
        StateMovedError, match=r"an unknown place \(the mark .*\.moved is unreadable"
    ):
        backend.read()


def test_a_writer_waiting_for_the_lock_refuses_once_the_holder_moved_the_state(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.state.lock import FileLock

    backend = LocalBackend(path)
    waiting = threading.Event()
    real_try = FileLock._try_acquire

    def spy(lock_path: str) -> int | None:
        fd = real_try(lock_path)
        if fd is None:
            waiting.set()
        return fd

    monkeypatch.setattr(FileLock, "_try_acquire", staticmethod(spy))
    outcome: list[BaseException | str] = []

    def apply() -> None:
        try:
            with LocalBackend(path).lock("apply", timeout=30):
                outcome.append("opened")
        except BaseException as exc:
            outcome.append(exc)

    with backend.lock("state migrate") as store:
        store.put(rec("a"))
        thread = threading.Thread(target=apply)
        thread.start()
        assert waiting.wait(10)
        store.mark_moved(_moved_to(backend, store.state))
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], StateMovedError), outcome
