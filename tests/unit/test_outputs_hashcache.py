"""reconciler.outputs.hashcache: an unchanged file is not read again; a changed one always is."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from reconciler.outputs import hashcache
from reconciler.outputs.hashcache import HashCache
from reconciler.outputs.scan import hash_file


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DFR_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file hashcache reads to hash it."""
    seen: list[Path] = []
    real = hash_file  # what hashcache calls

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(hashcache, "hash_file", counting)
    return seen


def old_file(path: Path, data: bytes, age: float = 60.0) -> os.stat_result:
    """`path` with `data`, last modified `age` seconds ago."""
    path.write_bytes(data)
    when = os.stat(path).st_mtime - age
    os.utime(path, (when, when))
    return os.stat(path)


def test_an_unchanged_file_is_read_once_across_commands(
    tmp_path: Path, cache_dir: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashcache, "RACY_SECONDS", 0.0)  # its ctime is now: utime sets it
    info = old_file(tmp_path / "a", b"data")
    first = HashCache.open()
    assert first.sha256(tmp_path / "a", info) == hashlib.sha256(b"data").hexdigest()
    first.flush()
    again = HashCache.open()
    assert (
        again.sha256(tmp_path / "a", os.stat(tmp_path / "a")) == hashlib.sha256(b"data").hexdigest()
    )
    assert reads == [tmp_path / "a"]
    assert json.loads((cache_dir / hashcache.FILE_NAME).read_text())["version"] == 1


def test_a_rewritten_file_of_the_same_size_and_mtime_is_read_again(
    tmp_path: Path, cache_dir: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashcache, "RACY_SECONDS", 0.0)
    path = tmp_path / "a"
    info = old_file(path, b"data")
    cache = HashCache.open()
    cache.sha256(path, info)
    path.write_bytes(b"DATA")  # same size; its mtime put back: only ctime tells
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert cache.sha256(path, os.stat(path)) == hashlib.sha256(b"DATA").hexdigest()
    assert len(reads) == 2


def test_a_file_written_just_now_is_never_remembered(
    tmp_path: Path, cache_dir: Path, reads: list[Path]
) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"fresh")
    cache = HashCache.open()
    cache.sha256(path, os.stat(path))
    cache.sha256(path, os.stat(path))
    cache.flush()
    assert len(reads) == 2
    assert not (cache_dir / hashcache.FILE_NAME).exists()


def test_a_disabled_cache_reads_every_time(
    tmp_path: Path, cache_dir: Path, reads: list[Path]
) -> None:
    info = old_file(tmp_path / "a", b"data")
    cache = HashCache.open(disabled=True)
    cache.sha256(tmp_path / "a", info)
    cache.sha256(tmp_path / "a", info)
    cache.flush()
    assert len(reads) == 2
    assert not cache_dir.exists() or not (cache_dir / hashcache.FILE_NAME).exists()


@pytest.mark.parametrize("content", [b"not json", b'{"version": 99, "entries": {}}', b"[1]"])
def test_an_unreadable_cache_file_is_ignored(
    tmp_path: Path, cache_dir: Path, reads: list[Path], content: bytes
) -> None:
    info = old_file(tmp_path / "a", b"data")
    cache_dir.mkdir(mode=0o700)
    (cache_dir / hashcache.FILE_NAME).write_bytes(content)
    assert HashCache.open().sha256(tmp_path / "a", info) == hashlib.sha256(b"data").hexdigest()
    assert reads == [tmp_path / "a"]


def test_a_forged_entry_for_another_stat_is_not_trusted(
    tmp_path: Path, cache_dir: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashcache, "RACY_SECONDS", 0.0)
    info = old_file(tmp_path / "a", b"data")
    cache_dir.mkdir(mode=0o700)
    forged = {str(tmp_path / "a"): ["0:0:4:0:0", "f" * 64]}
    (cache_dir / hashcache.FILE_NAME).write_text(json.dumps({"version": 1, "entries": forged}))
    assert HashCache.open().sha256(tmp_path / "a", info) == hashlib.sha256(b"data").hexdigest()
