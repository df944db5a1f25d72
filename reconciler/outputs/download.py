"""One file of a run: from the API's link to a verified file in the staging folder.

`Downloader.fetch(run, wanted, index)` asks the API for a fresh presigned URL
(a customer-hosted pointer is followed through the SDK), streams the body to
`parts/INDEX.part` while computing its sha256, checks its length against the
API's `size_bytes` (and its sha256 against any checksum the API gave), then
moves it into `files/` and notes it in the staging journal. Memory stays
bounded by one network chunk per download.

Retries, per file: a 403 (the URL expired) asks the API for a fresh URL once;
a short, long or corrupt body is downloaded once more. After that the file
fails, with a message naming it, and nothing is swapped in.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from reconciler.api.files import DownloadError, FileHost, FileLink, LinkExpired, Truncated
from reconciler.errors import DfrError
from reconciler.outputs.select import Wanted
from reconciler.outputs.staging import Staging, Verified, start_writeback

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

    def fetch(
        self, name: str, run_id: str, wanted: Wanted, staging: Staging, index: int
    ) -> Verified:
        """Download `wanted` (a file of run `run_id`, manifest `name`) into `staging`."""
        tries = _Tries()
        link = self._link(run_id, wanted.file_id)
        while True:
            if self._cancel.is_set():
                raise Cancelled("interrupted")
            try:
                return self._once(name, run_id, wanted, staging, index, link)
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
        self, name: str, run_id: str, wanted: Wanted, staging: Staging, index: int, link: FileLink
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
        part = staging.part_path(index)
        digest = hashlib.sha256()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(part, flags | getattr(os, "O_BINARY", 0), 0o644)
        with os.fdopen(fd, "wb") as handle:

            def sink(chunk: bytes) -> None:
                if self._cancel.is_set():
                    raise Cancelled("interrupted")
                handle.write(chunk)
                digest.update(chunk)
                self._on_bytes(name, len(chunk))

            written = self._host.fetch(url, sink, name=wanted.path, expected_size=size)
            handle.flush()
            # No fsync per file: the journal only spares downloads (a resume re-hashes
            # what it reuses), and the whole tree is made durable once, before the
            # swap; writing starts now, while other files still download.
            start_writeback(handle.fileno())
        sha256 = digest.hexdigest()
        expected = wanted.sha256 or link.sha256
        if expected is not None and sha256 != expected:
            raise Truncated(f"{wanted.path}: its sha256 is not the one the API gave")
        entry = Verified(run_id.lower(), wanted.file_id, wanted.path, written, sha256)
        staging.commit(part, entry)
        return entry
