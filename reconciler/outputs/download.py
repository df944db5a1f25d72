"""One file of a run: from the API's link to a verified file in the staging folder.

`Downloader.fetch(name, run_id, wanted, staging)` asks the API for a fresh
presigned URL (a customer-hosted pointer is followed through the SDK), streams
the body to the file's part in `parts/` while computing its sha256, checks its
length against the API's `size_bytes` (and its sha256 against any checksum the
API gave), then moves it into `files/` and notes it in the staging journal.
Memory stays bounded by one network chunk per download.

A part left by a stopped download (Ctrl-C, a kill, a broken connection) is
gone on with, not fetched again: its bytes are re-hashed and the rest asked for
with `Range` and `If-Match` its ETag, so only the same object is ever appended
to; a file host that answers with the whole body, or a changed object, has it
written from byte 0.

Retries, per file: a 403 (the URL expired) asks the API for a fresh URL once;
a short, long or corrupt body is downloaded once more (a short one from where
it stopped). After that the file fails, with a message naming it, and nothing
is swapped in.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import hooks
from reconciler.api.files import (
    DownloadError,
    FileHost,
    FileLink,
    LinkExpired,
    Resume,
    Truncated,
)
from reconciler.errors import DfrError
from reconciler.outputs.select import Wanted
from reconciler.outputs.staging import (
    Staging,
    Verified,
    etag_path,
    start_writeback,
    write_file,
)

if TYPE_CHECKING:
    from reconciler.api.client import DataframerClient

__all__ = ["Cancelled", "Downloader"]


class Cancelled(DfrError):
    """The pull was interrupted (Ctrl-C, SIGTERM): downloads stop at their next chunk."""


@dataclass
class _Tries:
    refreshed: bool = False  # a fresh URL was asked for after a 403
    retried: bool = False  # the body was downloaded again after a bad one


class Downloader:
    """Downloads files of runs into their staging folders (thread-safe)."""

    def __init__(
        self,
        client: DataframerClient,
        host: FileHost,
        *,
        cancel: threading.Event,
        on_bytes: Callable[[str, int], None] = lambda name, n: None,
    ) -> None:
        self._client = client
        self._host = host
        self._cancel = cancel
        self._on_bytes = on_bytes

    def _link(self, run_id: str, file_id: str) -> FileLink:
        link = self._client.file_download_url(run_id, file_id)
        if link.pointer is not None and link.download_url is None:
            # The SDK's answer has the URL only: keep the pointer's checksum and size.
            followed = self._client.follow_pointer(run_id, file_id)
            link = replace(
                followed,
                sha256=followed.sha256 or link.sha256,
                size_bytes=followed.size_bytes
                if followed.size_bytes is not None
                else link.size_bytes,
            )
        return link

    def fetch(self, name: str, run_id: str, wanted: Wanted, staging: Staging) -> Verified:
        """Download `wanted` (a file of run `run_id`, manifest `name`) into `staging`."""
        tries = _Tries()
        link = self._link(run_id, wanted.file_id)
        while True:
            if self._cancel.is_set():
                raise Cancelled("interrupted")
            try:
                return self._once(name, run_id, wanted, staging, link)
            except LinkExpired as exc:
                if tries.refreshed:
                    raise DownloadError(
                        f"run {name}: {exc.message}, also with a fresh link"
                    ) from None
                tries.refreshed = True
                link = self._link(run_id, wanted.file_id)
            except Truncated as exc:
                if tries.retried:
                    raise DownloadError(f"run {name}: {exc.message} (tried twice)") from None
                tries.retried = True
            except DownloadError as exc:
                raise DownloadError(f"run {name}: {exc.message}") from None

    def _once(
        self, name: str, run_id: str, wanted: Wanted, staging: Staging, link: FileLink
    ) -> Verified:
        url = link.download_url
        if url is None:
            raise DownloadError(f"{wanted.path}: the API gave no download URL")
        if self._client.mentions_key(url):
            raise DownloadError(
                f"{wanted.path}: the download URL holds the API key; refusing to send it"
                " to another host"
            )
        size = wanted.size if wanted.size is not None else link.size_bytes
        part = _Part(staging.part_path(wanted), size)
        try:

            def sink(chunk: bytes) -> None:
                if self._cancel.is_set():
                    raise Cancelled("interrupted")
                part.write(chunk)
                self._on_bytes(name, len(chunk))
                hooks.hit("pull-chunk-written")

            def on_start(start: int, etag: str | None) -> None:
                part.start(start, etag)
                if start:
                    self._on_bytes(name, start)  # the bytes a stopped download left

            fetched = self._host.fetch(
                url,
                sink,
                name=wanted.path,
                expected_size=size,
                resume=part.resume,
                on_start=on_start,
                html="html" in (link.content_type or "").lower(),
            )
            written = part.finish()
        finally:
            part.close()
        if written != part.start_offset + fetched:  # pragma: no cover - the host checks sizes
            raise Truncated(f"{wanted.path}: {written:,} bytes written, not as received")
        sha256 = part.digest.hexdigest()
        expected = wanted.sha256 or link.sha256
        if expected is not None and sha256 != expected:
            raise Truncated(f"{wanted.path}: its sha256 is not the one the API gave")
        entry = Verified(run_id.lower(), wanted.file_id, wanted.path, written, sha256)
        staging.commit(part.path, entry)
        return entry


class _Part:
    """A download's part file: the bytes of an earlier, stopped download of the same
    file are kept (re-hashed, not fetched again) when the file host still has the
    object they came from (same ETag); otherwise the body is written from byte 0."""

    def __init__(self, path: Path, size: int | None) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.resume: Resume | None = None
        self.start_offset = 0
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0), 0o644)
        self._handle = os.fdopen(fd, "r+b")
        have = os.fstat(fd).st_size
        etag = _read_etag(etag_path(path))
        if etag is not None and size is not None and 0 < have < size:
            for block in iter(lambda: self._handle.read(1 << 20), b""):
                self.digest.update(block)
            self.resume = Resume(have, etag)

    def start(self, start: int, etag: str | None) -> None:
        """The body starts at `start` (the resumed offset, or 0: all of it again)."""
        self.start_offset = start
        if start:
            self._handle.seek(start)
            return
        self._handle.seek(0)
        self._handle.truncate()
        self.digest = hashlib.sha256()
        sidecar = etag_path(self.path)
        if etag:
            write_file(sidecar, etag)
        else:
            with contextlib.suppress(FileNotFoundError):
                sidecar.unlink()

    def write(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        self.digest.update(chunk)

    def finish(self) -> int:
        """Flush; start writing to disk (the sync before the swap waits less); the size."""
        self._handle.flush()
        # No fsync per file: the journal only spares downloads (a resume re-hashes what
        # it reuses), and the whole tree is made durable once, before the swap.
        start_writeback(self._handle.fileno())
        return os.fstat(self._handle.fileno()).st_size

    def close(self) -> None:
        self._handle.close()


def _read_etag(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text and text.isprintable() and len(text) < 1024 else None
