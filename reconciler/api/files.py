"""A run's generated files: the API's download answers, and the file host they point at.

Two halves, both network-facing (this package is the only one that is):

- `FileLink` / `ZipLink`: the answers of `GET /runs/{id}/files/{file_id}/download/`
  (`{download_url, filename, content_type}`, valid one hour) and of
  `GET /runs/{id}/files/download/` (202 while the ZIP is built, then
  `{download_url, size_bytes}`), parsed tolerantly like `api.models`. A
  customer-hosted deployment answers with a data-plane pointer
  (`content_location`, `data_plane: true`, an `s3_key`) instead of a URL:
  `FileLink.pointer` holds it, for `api.dataplane` to follow with the SDK.
- `FileHost`: the client of the presigned URLs. It is NOT the API's client: its
  own `httpx.Client` with no Authorization header, no cookies and no key, so
  nothing of the API's credentials can reach the file host (S3 or any HTTPS
  host). It follows redirects itself, only to https (or plain http to a
  loopback address: the emulator), and streams a body into a sink with
  bounded memory, checking its length.

Failures of a download:

    DownloadError (DfrError, exit 1)      the file host failed or refused
    ├── LinkExpired                       403: the presigned URL expired (ask
    │                                     the API for a fresh one, once)
    └── Truncated                         fewer or more bytes than announced
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from reconciler import __version__
from reconciler.api.config import is_loopback
from reconciler.api.models import as_int, as_sha256, as_str
from reconciler.api.pool import PooledHttp
from reconciler.errors import DfrError

__all__ = [
    "DownloadError",
    "FileHost",
    "FileLink",
    "LinkExpired",
    "Resume",
    "Truncated",
    "ZipLink",
    "check_download_url",
    "is_pointer",
]

#: Redirects a download may take before it is refused.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class DownloadError(DfrError):
    """A download from the file host failed; the message names the file."""


class LinkExpired(DownloadError):
    """The file host answered 403: the presigned URL expired (or was revoked)."""


class Truncated(DownloadError):
    """The body had fewer (or more) bytes than announced: worth one more try."""


def is_pointer(data: Mapping[str, Any]) -> bool:
    """Whether an answer is a customer-hosted data-plane pointer, not a URL.

    The SDK's own test (`lib/data_plane._pointer`) is `data_plane: true`; a
    `content_location` or a bare `s3_key` without a `download_url` says the same.
    """
    if data.get("data_plane") is True:
        return True
    if as_str(data.get("download_url")):
        return False
    return data.get("content_location") is not None or bool(as_str(data.get("s3_key")))


@dataclass(frozen=True)
class FileLink:
    """Where to download one generated file (the SDK's FileDownloadResponse).

    `sha256` / `size_bytes` are read when the API gives them (the SDK's `File`
    has both); `pointer` is the whole answer when it is a data-plane pointer.
    """

    download_url: str | None = None
    filename: str | None = None
    content_type: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    pointer: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileLink:
        return cls(
            filename=as_str(data.get("filename")),
            content_type=as_str(data.get("content_type")),
            sha256=as_sha256(data.get("sha256")),
            **_where(data),
        )


def _where(data: Mapping[str, Any]) -> dict[str, Any]:
    """What a file answer and a ZIP answer share: the URL, the size, a pointer."""
    return {
        "download_url": as_str(data.get("download_url")) or None,
        # A data-plane pointer says `bytes_size` (the SDK's DataPlaneContentLocation).
        "size_bytes": as_int(data.get("size_bytes", data.get("bytes_size"))),
        "pointer": dict(data) if is_pointer(data) else None,
    }


@dataclass(frozen=True)
class ZipLink:
    """The ZIP of all of a run's files (the SDK's FileDownloadAllResponse), once built."""

    download_url: str | None = None
    size_bytes: int | None = None
    pointer: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ZipLink:
        return cls(**_where(data))


@dataclass(frozen=True)
class Resume:
    """Go on with a download from `offset` bytes, if the object is still `etag`."""

    offset: int
    etag: str

    def headers(self) -> dict[str, str]:
        return {"Range": f"bytes={self.offset}-", "If-Match": self.etag}


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of `Content-Range: bytes FIRST-LAST/TOTAL` (Nones if odd)."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", (header or "").strip())
    if match is None or int(match.group(2)) + 1 != int(match.group(3)):
        return None, None  # not a range up to the end of the object
    return int(match.group(1)), int(match.group(3))


def check_download_url(url: str) -> httpx.URL | str:
    """The URL to fetch, or why it may not be fetched (a phrase).

    https to any host; plain http only to a loopback address (the emulator's
    file host); never a user name or password in it.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "it is not a valid URL"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return f"it is not an https URL (scheme {parsed.scheme or 'none'!r})"
    if parsed.userinfo:
        return "it carries a user name or password"
    if parsed.scheme == "http" and not is_loopback(parsed.host):
        return f"it is plain http to {parsed.host}; only https is followed"
    return parsed


def _check_not_a_page(response: httpx.Response, name: str) -> None:
    """Refuse an HTML page for a file that is not one: a proxy's or a captive portal's
    login page answers 200 with a length of its own, which no size check catches
    when the API gives none."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind in ("text/html", "application/xhtml+xml") and not name.lower().endswith(
        (".html", ".htm", ".xhtml")
    ):
        raise DownloadError(
            f"{name}: the file host answered an HTML page ({kind}), not the file: a proxy's"
            " or a login page?"
        )


class FileHost(PooledHttp):
    """Streams presigned URLs into sinks. Thread-safe; one pool for every download.

    `name` in the methods below is how messages name the file (its path in
    the run); the URL itself is never shown (it is a credential for an hour).
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout,
        pool_size: int = 8,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        # No Authorization, no cookies, no base URL: this client knows nothing of
        # the API. `Accept-Encoding: identity` makes the bytes read the bytes stored.
        super().__init__(
            headers={"User-Agent": f"dfr/{__version__}", "Accept-Encoding": "identity"},
            timeout=timeout,
            pool_size=pool_size,
            transport=transport,
        )

    def fetch(
        self,
        url: str,
        sink: Callable[[bytes], None],
        *,
        name: str,
        expected_size: int | None,
        resume: Resume | None = None,
        on_start: Callable[[int, str | None], None] = lambda start, etag: None,
        html: bool = False,
    ) -> int:
        """Stream the body at `url` into `sink`; return the bytes this answer sent.

        With `resume`, only the bytes from `resume.offset` on are asked for, and
        only while the object's ETag is still `resume.etag` (`Range` and
        `If-Match`); an object that changed (412), a range refused (416) or an
        answer of another object is asked for again whole. `on_start(start, etag)`
        says, before the first byte reaches `sink`, where the body starts (the
        offset resumed from, or 0) and the answer's ETag.

        Raises LinkExpired on 403, Truncated when the body is shorter or longer
        than `expected_size` (or its Content-Length), DownloadError otherwise;
        without an `expected_size`, an HTML page is refused unless `html` (the API
        says the file is one) or the file's name ends in .html.
        """
        target = self._checked(url, name)
        for _ in range(MAX_REDIRECTS + 2):
            headers = {} if resume is None else resume.headers()
            try:
                with self._http.stream("GET", target, headers=headers) as response:
                    if response.status_code in _REDIRECTS:
                        target = self._redirect(target, response, name)
                        continue
                    start = self._start(response, name, resume, expected_size)
                    if start is None:
                        resume = None  # not the bytes resumed from: the whole body
                        continue
                    if not html and expected_size is None:
                        _check_not_a_page(response, name)  # a size check catches it else
                    on_start(start, response.headers.get("ETag"))
                    left = None if expected_size is None else expected_size - start
                    return self._read(response, sink, name, left)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, name) from None
        raise DownloadError(f"{name}: the file host redirected more than {MAX_REDIRECTS} times")

    def _start(
        self,
        response: httpx.Response,
        name: str,
        resume: Resume | None,
        expected_size: int | None,
    ) -> int | None:
        """Where the answer's body starts in the file; None: ask again for all of it."""
        code = response.status_code
        if resume is None or code not in (206, 412, 416):
            self._check_status(response, name)
            return 0
        if code != 206 or response.headers.get("ETag") not in (None, resume.etag):
            return None
        first, total = _content_range(response.headers.get("Content-Range"))
        if first != resume.offset or (expected_size is not None and total != expected_size):
            return None
        return first

    def _checked(self, url: str, name: str) -> httpx.URL:
        checked = check_download_url(url)
        if isinstance(checked, str):
            raise DownloadError(f"{name}: refusing the download URL the API gave: {checked}")
        return checked

    def _redirect(self, current: httpx.URL, response: httpx.Response, name: str) -> httpx.URL:
        location = response.headers.get("Location")
        if not location:
            raise DownloadError(f"{name}: the file host redirected without a Location")
        try:
            joined = current.join(location)
        except (httpx.InvalidURL, TypeError):
            raise DownloadError(f"{name}: the file host redirected to an invalid URL") from None
        checked = check_download_url(str(joined))
        if isinstance(checked, str):
            raise DownloadError(f"{name}: refusing the file host's redirect: {checked}")
        return checked

    @staticmethod
    def _check_status(response: httpx.Response, name: str) -> None:
        code = response.status_code
        if 200 <= code < 300 and code != 206:
            return
        status = f"{code} {response.reason_phrase}".strip()
        if code == 403:
            raise LinkExpired(f"{name}: the file host refused the download link ({status})")
        if code == 404:
            raise DownloadError(f"{name}: the file host no longer has this file ({status})")
        if code >= 500 or code == 429:
            raise Truncated(f"{name}: the file host failed ({status})")
        raise DownloadError(f"{name}: the file host answered {status}")

    def _read(
        self,
        response: httpx.Response,
        sink: Callable[[bytes], None],
        name: str,
        expected_size: int | None,
    ) -> int:
        announced = as_int(response.headers.get("Content-Length"))
        if expected_size is not None and announced is not None and announced != expected_size:
            raise Truncated(
                f"{name}: the file host announced {announced:,} bytes, the API {expected_size:,}"
            )
        limit = expected_size if expected_size is not None else announced
        received = 0
        # Chunks as they come off the socket (httpcore reads at most 64 KiB at a
        # time): no re-chunking, which would copy every byte once more (about 30%
        # of the throughput on loopback, bench/bench_pull.py).
        for chunk in response.iter_raw():
            received += len(chunk)
            if limit is not None and received > limit:
                raise Truncated(f"{name}: the file host sent more than {limit:,} bytes")
            sink(chunk)
        if limit is not None and received != limit:
            raise Truncated(f"{name}: the download stopped at {received:,} of {limit:,} bytes")
        return received

    @staticmethod
    def _transport_error(exc: httpx.HTTPError, name: str) -> DownloadError:
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.ReadTimeout):
            return Truncated(f"{name}: the download broke off ({type(exc).__name__})")
        if isinstance(exc, httpx.TimeoutException):
            return Truncated(f"{name}: the file host did not answer in time")
        if isinstance(exc, httpx.ConnectError):
            return Truncated(f"{name}: could not connect to the file host")
        return DownloadError(f"{name}: the download failed ({type(exc).__name__})")
