"""`dfr pull` killed (SIGKILL) at its named moments, then run again.

dfr runs as a process through tests/support/crashing_dfr.py, which kills it at
the Nth pass through a point of `reconciler.hooks`:

    pull-file-verified   a file is verified in staging and noted in its journal
    pull-before-swap     the new folder is complete and marked ready
    pull-exchanged       the new folder is in place, the old one not yet moved away
    pull-swapped         swapped, the lock of the data not yet recorded in state

Whatever the moment, the output folder holds either the old run's files or the
new run's, exactly, and the next pull completes without downloading again a
file that was verified.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator

NAME = "tickets"
KILLED = -9


def write(ws: Workspace, samples: int) -> None:
    extra = f"outputs:\n  path: data/{NAME}\n"
    ws.write_text(NAME, manifest_text(NAME, extra, samples=samples))


def apply(ws: Workspace, dfr: Runner, samples: int) -> str:
    write(ws, samples)
    result = dfr("apply", "--auto-approve", ws.manifests)
    assert result.code == 0, result.err
    return str(ws.run_ids()[NAME])


def folder_files(ws: Workspace) -> dict[str, bytes]:
    folder = ws.root / "data" / NAME
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def downloads(emu: Emulator) -> int:
    return int(emu.file_host_stats()["downloads"])


def recorded(ws: Workspace) -> dict[str, str]:
    outputs = ws.record(NAME)["outputs"]
    return {f["path"]: f["sha256"] for f in outputs["files"]}


def hashes(files: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in files.items()}


def staging(ws: Workspace) -> Path:
    return ws.root / "data" / f".{NAME}.dfr-pull"


def test_a_first_pull_killed_leaves_no_folder_and_resumes_without_downloading_again(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = apply(ws, dfr, 10)
    killed = ws.dfr("pull", "--parallelism", "1", crash_at="pull-file-verified:3")
    assert killed.code == KILLED
    assert not (ws.root / "data" / NAME).exists()  # nothing half there
    assert (staging(ws) / ".gitignore").read_text() == "*\n"
    before = downloads(emu)
    assert ws.dfr("pull").code == 0
    assert downloads(emu) - before == 2  # 5 files, 3 verified before the kill
    assert folder_files(ws) == emu.run_files(run_id)
    assert recorded(ws) == hashes(emu.run_files(run_id))
    assert not staging(ws).exists()


@pytest.mark.parametrize(
    ("point", "holds", "downloaded_after"),
    [
        ("pull-file-verified:2", "old", 3),
        ("pull-before-swap:1", "old", 0),
        ("pull-exchanged:1", "new", 0),
        ("pull-swapped:1", "new", 0),
    ],
)
def test_a_pull_of_a_replaced_run_killed_leaves_the_old_files_or_the_new_never_a_mix(
    ws: Workspace, dfr: Runner, emu: Emulator, point: str, holds: str, downloaded_after: int
) -> None:
    old_id = apply(ws, dfr, 10)
    assert dfr("pull").code == 0
    old = emu.run_files(old_id)
    new_id = apply(ws, dfr, 12)  # the manifest changed: a replace, a new run
    new = emu.run_files(new_id)
    assert hashes(old) != hashes(new)
    killed = ws.dfr("pull", "--parallelism", "1", crash_at=point)
    assert killed.code == KILLED
    assert folder_files(ws) == (old if holds == "old" else new)
    assert recorded(ws) == hashes(old)  # the lock is only written after the swap
    before = downloads(emu)
    resumed = ws.dfr("pull")
    assert resumed.code == 0, resumed.err
    assert downloads(emu) - before == downloaded_after
    assert folder_files(ws) == new
    assert recorded(ws) == hashes(new)
    assert ws.record(NAME)["outputs"]["run_id"].lower() == new_id.lower()
    assert not staging(ws).exists()
    assert dfr("pull", "--check").code == 0


def test_ctrl_c_during_a_pull_keeps_verified_files(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    apply(ws, dfr, 10)
    stopped = ws.dfr("pull", "--parallelism", "1", crash_at="pull-file-verified:2:SIGINT")
    assert stopped.code == 130
    assert "interrupted: verified files are kept" in stopped.err
    assert not (ws.root / "data" / NAME).exists()
    # At least the two verified before Ctrl-C are kept; a download that finished
    # while the signal was being handled is verified and kept too.
    kept = len((staging(ws) / "verified.jsonl").read_text().splitlines())
    assert 2 <= kept < 5
    before = downloads(emu)
    assert ws.dfr("pull").code == 0
    assert downloads(emu) - before == 5 - kept
    assert len(recorded(ws)) == 5


def killed_midway(ws: Workspace, dfr: Runner, emu: Emulator) -> tuple[str, Path, int]:
    """Apply a run whose largest file takes several chunks, kill the pull at the third
    chunk of that file; (run id, its part file, the bytes in it)."""
    run_id = apply(ws, dfr, 4000)
    killed = ws.dfr("pull", "--parallelism", "1", crash_at="pull-chunk-written:3")
    assert killed.code == KILLED
    (part,) = (staging(ws) / "parts").glob("*.part")
    have = part.stat().st_size
    biggest = max(len(data) for data in emu.run_files(run_id).values())
    assert 0 < have < biggest
    assert part.with_name(part.name.removesuffix(".part") + ".part.etag").read_text()
    return run_id, part, have


def test_a_download_killed_midway_goes_on_from_where_it_stopped(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id, _, have = killed_midway(ws, dfr, emu)
    before = emu.file_host_stats()
    assert ws.dfr("pull").code == 0
    after = emu.file_host_stats()
    files = emu.run_files(run_id)
    assert folder_files(ws) == files
    assert recorded(ws) == hashes(files)
    # Only the rest of the stopped file came again: Range from its last byte.
    assert after["responses"].get("206", 0) - before["responses"].get("206", 0) == 1
    sent = after["bytes_sent"] - before["bytes_sent"]
    assert sent == sum(len(data) for data in files.values()) - have
    assert not staging(ws).exists()


def test_a_stopped_download_of_an_object_that_changed_is_fetched_whole(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """The part's bytes came from an object with another ETag (the file host's copy
    changed): If-Match fails (412) and the file is downloaded from byte 0."""
    run_id, part, _ = killed_midway(ws, dfr, emu)
    part.with_name(part.name.removesuffix(".part") + ".part.etag").write_text('"0ther"')
    before = emu.file_host_stats()
    assert ws.dfr("pull").code == 0
    after = emu.file_host_stats()
    files = emu.run_files(run_id)
    assert folder_files(ws) == files
    assert after["responses"].get("412", 0) - before["responses"].get("412", 0) == 1
    assert after["responses"].get("206", 0) == before["responses"].get("206", 0)
    sent = after["bytes_sent"] - before["bytes_sent"]
    total = sum(len(d) for d in files.values())
    assert total <= sent < total + 512  # every file whole, and the 412's short XML


def test_a_part_with_foreign_bytes_is_never_appended_to(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """Bytes in a part that no ETag vouches for (the sidecar lost) are thrown away."""
    run_id, part, _ = killed_midway(ws, dfr, emu)
    part.with_name(part.name.removesuffix(".part") + ".part.etag").unlink()
    with part.open("r+b") as handle:
        handle.write(b"garbage")
    assert ws.dfr("pull").code == 0
    assert folder_files(ws) == emu.run_files(run_id)
    assert dfr("pull", "--check").code == 0
