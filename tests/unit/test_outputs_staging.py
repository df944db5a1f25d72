"""reconciler.outputs.staging and scan on a real filesystem: resume, swap, recovery, links."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import hooks
from reconciler.outputs import staging as staging_module
from reconciler.outputs.scan import OutputsError, folder_of, listing
from reconciler.outputs.select import Wanted
from reconciler.outputs.staging import Staging, Verified, etag_path, start_writeback
from reconciler.state.model import OutputFile, OutputsRecord


class Crash(Exception):
    pass


@pytest.fixture(autouse=True)
def no_callbacks() -> Iterator[None]:
    hooks.clear()
    yield
    hooks.clear()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stage(staging: Staging, run_id: str, files: dict[str, bytes]) -> dict[str, Verified]:
    """Put `files` into staging as a download would."""
    wanted = [Wanted(p, f"id-{p}", len(d)) for p, d in files.items()]
    staging.open(run_id, wanted)
    done = {}
    for index, (path, data) in enumerate(files.items()):
        part = staging.part_path(wanted[index])
        part.write_bytes(data)
        entry = Verified(run_id, f"id-{path}", path, len(data), sha(data))
        staging.commit(part, entry)
        done[path] = entry
    return done


def record_of(done: dict[str, Verified], run_id: str = "r1") -> OutputsRecord:
    files = tuple(OutputFile(v.path, v.size, v.sha256, v.file_id) for v in done.values())
    return OutputsRecord("out", files, "t", run_id)


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


OLD = {"a.txt": b"old a", "sub/b.txt": b"old b"}
NEW = {"a.txt": b"new a!", "c/d.txt": b"new d"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    for path, data in OLD.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(data)
    return out


@pytest.mark.parametrize("exchange", [True, False])
def test_a_swap_puts_the_new_folder_in_place_whole(folder: Path, exchange: bool) -> None:
    staging = Staging(folder, exchange=exchange)
    done = stage(staging, "r2", NEW)
    staging.mark_ready(record_of(done, "r2"))
    staging.swap()
    assert tree(folder) == NEW
    staging.discard()
    assert not staging.dir.exists()


def test_a_crash_halfway_through_a_two_rename_swap_is_finished_by_recover(folder: Path) -> None:
    staging = Staging(folder, exchange=False)
    done = stage(staging, "r2", NEW)
    staging.mark_ready(record_of(done, "r2"))

    def crash(point: str, half_done: object) -> None:
        raise Crash(point)

    hooks.register("pull-swap-halfway", crash)
    with pytest.raises(Crash):
        staging.swap()
    hooks.clear()
    assert not folder.exists()  # between the renames: no folder, never a mix
    recovered = Staging(folder).recover()
    assert recovered == record_of(done, "r2")
    assert tree(folder) == NEW


def test_recover_sees_a_finished_swap_and_ignores_a_stale_ready(folder: Path) -> None:
    staging = Staging(folder)
    done = stage(staging, "r2", NEW)
    staging.mark_ready(record_of(done, "r2"))
    staging.swap()
    assert Staging(folder).recover() == record_of(done, "r2")  # the record to store
    assert tree(folder) == NEW
    staging.discard()
    assert Staging(folder).recover() is None


def test_resume_keeps_verified_files_of_the_same_run_only(folder: Path) -> None:
    staging = Staging(folder)
    stage(staging, "r2", NEW)
    wanted = [Wanted(p, f"id-{p}", len(d)) for p, d in NEW.items()]
    assert set(Staging(folder).open("r2", wanted)) == set(NEW)
    # A verified file changed on disk since: it is not reused.
    (staging.tree / "a.txt").write_bytes(b"tampered")
    assert set(Staging(folder).open("r2", wanted)) == {"c/d.txt"}
    assert not (staging.tree / "a.txt").exists()
    # Another run: nothing is reused, the staging folder starts over.
    assert Staging(folder).open("r3", wanted) == {}
    assert tree(staging.tree) == {}


def test_a_torn_journal_line_only_loses_that_file(folder: Path) -> None:
    staging = Staging(folder)
    stage(staging, "r2", NEW)
    with open(staging.journal, "a", encoding="utf-8") as handle:
        handle.write('{"run_id": "r2", "file_id": "x", "pa')
    wanted = [Wanted(p, f"id-{p}", len(d)) for p, d in NEW.items()]
    assert set(Staging(folder).open("r2", wanted)) == set(NEW)


def test_the_users_files_are_carried_over_unless_a_run_file_takes_their_place(
    folder: Path,
) -> None:
    (folder / "mine.md").write_bytes(b"mine")
    (folder / "c").mkdir()
    (folder / "c" / "d.txt").write_bytes(b"the user's d")
    staging = Staging(folder)
    done = stage(staging, "r2", NEW)
    left_out = staging.carry_over(set(OLD), list(NEW))
    assert left_out == ["c/d.txt"]
    staging.mark_ready(record_of(done, "r2"))
    staging.swap()
    assert tree(folder) == {**NEW, "mine.md": b"mine"}  # OLD's files were dfr's: dropped


def test_a_staging_path_that_is_not_a_folder_is_refused(folder: Path) -> None:
    staging = Staging(folder)
    staging.dir.symlink_to(folder)
    with pytest.raises(OutputsError, match="is not a folder"):
        staging.open("r1", [])


def test_output_folders_that_are_links_or_lead_outside_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / "data").symlink_to(outside)
    with pytest.raises(OutputsError, match="leads outside the project root"):
        folder_of(root, "data/x")
    (root / "inside").mkdir()
    (root / "link").symlink_to(root / "inside")
    with pytest.raises(OutputsError, match="is a symbolic link"):
        folder_of(root, "link")
    (root / "file").write_text("x")
    with pytest.raises(OutputsError, match="not a folder"):
        folder_of(root, "file")
    assert folder_of(root, "new/folder") == root / "new/folder"


def test_listing_never_follows_a_link(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"old a")  # same bytes as the recorded file
    (folder / "a.txt").unlink()
    os.symlink(secret, folder / "a.txt")
    record = OutputsRecord("out", (OutputFile("a.txt", 5, sha(b"old a"), "f"),), "t", "r1")
    found = listing(folder, record)
    assert found is not None and found["a.txt"].regular is False
    assert listing(tmp_path / "nowhere", record) is None


def test_start_writeback_is_a_hint_that_never_fails_or_changes_a_file(tmp_path: Path) -> None:
    """On Linux it asks the kernel to start writing (sync_file_range); elsewhere, or
    on a descriptor it cannot use, it does nothing: the sync before the swap stays
    the only promise of durability."""
    path = tmp_path / "part"
    with open(path, "wb") as handle:
        handle.write(b"x" * 100_000)
        handle.flush()
        start_writeback(handle.fileno())
    assert path.read_bytes() == b"x" * 100_000
    read_only = os.open(path, os.O_RDONLY)
    try:
        start_writeback(read_only)  # EBADF-like refusals are ignored
    finally:
        os.close(read_only)


def test_start_writeback_does_nothing_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    staging_module._linux_call.cache_clear()
    monkeypatch.setattr("sys.platform", "darwin")  # the sys staging reads
    try:
        assert staging_module._linux_call("sync_file_range") is None
        start_writeback(-1)
    finally:
        staging_module._linux_call.cache_clear()


def test_open_keeps_the_parts_of_files_still_wanted_and_drops_the_rest(folder: Path) -> None:
    """A part (and its ETag) survives a reopen for the same run while its file is
    wanted; parts of files no longer wanted, and anything odd in parts/, go."""
    staging = Staging(folder)
    a, b = Wanted("a.jsonl", "id-a", 10), Wanted("b.jsonl", "id-b", 10)
    staging.open("r1", [a, b])
    for want in (a, b):
        staging.part_path(want).write_bytes(b"12345")
        etag_path(staging.part_path(want)).write_text('"e"')
    (staging.parts / "stray").mkdir()
    (staging.parts / "99.part").write_bytes(b"old")
    staging.open("r1", [a])
    assert sorted(p.name for p in staging.parts.iterdir()) == sorted(
        [staging.part_path(a).name, etag_path(staging.part_path(a)).name]
    )
    assert staging.part_path(a) != staging.part_path(Wanted("a.jsonl", "id-other", 10))
    assert staging.part_path(a) != staging.part_path(Wanted("other.jsonl", "id-a", 10))


def test_open_repairs_a_staging_folder_whose_parts_or_files_are_not_folders(
    folder: Path, tmp_path: Path
) -> None:
    """parts/ a file, files/ a link elsewhere: both are dfr's own and disposable, so
    they are replaced by folders (the link's target untouched), not a pull failing
    forever on "File exists"."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    staging = Staging(folder)
    staging.open("r1", [])
    shutil.rmtree(staging.parts)
    staging.parts.write_text("x")
    shutil.rmtree(staging.tree)
    staging.tree.symlink_to(outside, target_is_directory=True)
    wanted = [Wanted("a.jsonl", "id-a", 3)]
    assert staging.open("r1", wanted) == {}
    assert staging.parts.is_dir() and not staging.parts.is_symlink()
    assert staging.tree.is_dir() and not staging.tree.is_symlink()
    assert (outside / "keep.txt").read_text() == "mine"


def test_open_removes_a_leftover_old_folder_without_following_it(
    folder: Path, tmp_path: Path
) -> None:
    """old/ exists only between a swap and its discard (a crash there is recovered
    first); anything found there at open is removed, a link as a link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    staging = Staging(folder)
    staging.open("r1", [])
    staging.old.symlink_to(outside, target_is_directory=True)
    staging.open("r1", [])
    assert not os.path.lexists(staging.old)
    assert (outside / "keep.txt").read_text() == "mine"


def test_links_planted_in_the_staging_folder_are_never_written_through(
    folder: Path, tmp_path: Path
) -> None:
    """A repository may carry a staging folder with links in it (git keeps symlinks):
    .gitignore, the journal, its temp file and ready.json's point elsewhere. dfr
    replaces each; the files they point at keep their bytes."""
    outside = tmp_path / "outside"
    outside.mkdir()
    staging = Staging(folder)
    staging.dir.mkdir(parents=True)
    names = [".gitignore", "verified.jsonl", "verified.jsonl.tmp", "ready.json.tmp"]
    for name in names:
        (outside / name).write_text("mine")
        (staging.dir / name).symlink_to(outside / name)
    done = stage(staging, "r1", {"a.jsonl": b"abc"})
    staging.mark_ready(record_of(done))
    assert all((outside / name).read_text() == "mine" for name in names)
    assert not any((staging.dir / name).is_symlink() for name in names)
    assert (staging.dir / ".gitignore").read_text() == "*\n"
