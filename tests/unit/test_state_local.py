"""LocalBackend on a real file system: its files, journal replay, damage, the moved mark.

What every backend promises (reads, writes, serials, locks, force-unlock, a moved
state, threads, corruption refused) is in `tests/state/test_contract.py`;
checkpoints, backups and their crashes in `test_state_checkpoint.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from local_state import files, journal_lines, mode, rec, saved

from reconciler.errors import (
    StateCorruptError,
    StateError,
)
from reconciler.state import statefile
from reconciler.state.backend import Moved, StateMovedError
from reconciler.state.local import LocalBackend
from reconciler.state.model import State


@pytest.fixture
def path(tmp_path: Path) -> Path:
    d = tmp_path / "proj"
    d.mkdir()
    return d / "dfr.state.json"


# --------------------------------------------------------------------------- basics


def test_a_session_that_writes_nothing_leaves_only_the_lock_file(path: Path) -> None:
    with LocalBackend(path).lock("plan") as store:
        store.put_many([])
    assert files(path) == ["dfr.state.json.lock"]


def test_put_appends_one_journal_line_without_touching_the_snapshot(path: Path) -> None:
    b = saved(path, rec("a"))
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
    # Released: checkpointed and the journal is gone; the snapshot alone is the state.
    assert files(path) == ["dfr.state.json", "dfr.state.json.backup", "dfr.state.json.lock"]
    assert statefile.loads(path.read_bytes(), "x") == b.read()
    assert b.read().serial == 3 and list(b.read().runs) == ["b"]


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
    saved(path, rec("b"))
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
    b = saved(path, rec("a"))
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
    b = saved(path, rec("base"))
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


def test_a_corrupt_snapshot_names_the_backup_which_holds_the_version_before(path: Path) -> None:
    b = saved(path, rec("a"))
    with b.lock("apply") as store:
        store.put(rec("b"))
    path.write_bytes(path.read_bytes()[:-40])  # truncated
    with pytest.raises(StateCorruptError) as info:
        b.read()
    assert info.value.message.startswith(f"{path}:")
    assert info.value.message.endswith(f"a backup of the previous version is at {path}.backup")
    assert set(LocalBackend(str(path) + ".backup").read().runs) == {"a"}


def test_corrupt_snapshot_without_backup_says_so(path: Path) -> None:
    path.write_text("{")
    with pytest.raises(StateCorruptError, match=r"; no backup exists$"):
        LocalBackend(path).read()


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


# --------------------------------------------------------------------------- moved


def _moved_to(backend: LocalBackend, store_state: State) -> Moved:
    return Moved.new(LocalBackend(str(backend.path) + ".new"), store_state)


def test_the_mark_of_a_moved_state_is_a_durable_0600_file_beside_it(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = LocalBackend(path)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with backend.lock("state migrate") as store:
        store.put(rec("a"))
        synced.clear()
        store.mark_moved(_moved_to(backend, store.state))
        assert len(synced) >= 2  # the mark's file, then its directory entry
    before = path.read_bytes()
    for attempt in (backend.read, lambda: backend.lock("apply").__enter__()):
        with pytest.raises(StateMovedError):
            attempt()
    assert mode(str(path) + ".moved") == 0o600 and path.read_bytes() == before
    backend.allow_moved = True
    with backend.lock("state migrate") as store:
        store.mark_moved(None)
    assert not os.path.exists(str(path) + ".moved")


def test_an_unreadable_mark_still_refuses(path: Path) -> None:
    backend = LocalBackend(path)
    with backend.lock("test") as store:
        store.put(rec("a"))
    Path(str(path) + ".moved").write_bytes(b"\x00{not json")
    with pytest.raises(
        StateMovedError, match=r"an unknown place \(the mark .*\.moved is unreadable"
    ):
        backend.read()
