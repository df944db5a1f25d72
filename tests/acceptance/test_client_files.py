"""The client's file endpoints and the file host client, against the emulator over HTTP.

Customer-hosted deployments (`customer_hosted`): the API answers a pointer,
which dfr follows through the official SDK (the `dataplane` extra), or, without
it, says exactly what to install.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator

import httpx
import pytest
from support.emulators import KEY, SUPPORT
from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator
from reconciler.api import DataframerClient
from reconciler.api.config import timeouts
from reconciler.api.files import (
    DownloadError,
    FileHost,
    LinkExpired,
    Resume,
    check_download_url,
)
from reconciler.api.retry import RetryPolicy
from reconciler.api.runfiles import DATAPLANE_EXTRA
from reconciler.errors import NotFoundError


def finished_run(emu: Emulator, client: DataframerClient) -> str:
    run = client.create_run({"spec_id": SUPPORT, "number_of_samples": 10})
    emu.force_status(run.id, "SUCCEEDED")
    return run.id


@pytest.fixture
def client(emu: Emulator) -> Iterator[DataframerClient]:
    with DataframerClient(emu.base_url, KEY, retry=RetryPolicy(sleep=lambda s: None)) as c:
        yield c


def test_generated_files_and_their_links(emu: Emulator, client: DataframerClient) -> None:
    run_id = finished_run(emu, client)
    files = client.get_run(run_id).generated_files
    assert {f.path for f in files} == set(emu.run_files(run_id))
    first = files[0]
    link = client.file_download_url(run_id, str(first.id))
    assert link.download_url and link.download_url.startswith(emu.file_base_url)
    assert link.pointer is None and link.filename == str(first.path).rsplit("/", 1)[-1]
    body = bytearray()
    with FileHost(timeout=timeouts(10.0)) as host:
        size = host.fetch(link.download_url, body.extend, name="f", expected_size=first.size_bytes)
    assert size == first.size_bytes == len(body)
    assert bytes(body) == emu.run_files(run_id)[str(first.path)]
    assert not client.mentions_key(link.download_url)
    assert client.mentions_key(f"https://x/?k={KEY}")


def test_an_unknown_file_is_not_found(emu: Emulator, client: DataframerClient) -> None:
    run_id = finished_run(emu, client)
    with pytest.raises(NotFoundError, match="was not found"):
        client.file_download_url(run_id, "00000000-0000-4000-8000-000000000000")


@pytest.mark.emulator(zip_build_polls=2)
def test_download_all_polls_while_the_zip_is_built(emu: Emulator, client: DataframerClient) -> None:
    run_id = finished_run(emu, client)
    link = client.download_all(run_id, poll_seconds=0)
    assert link.download_url and link.size_bytes
    data = bytearray()
    with FileHost(timeout=timeouts(10.0)) as host:
        host.fetch(link.download_url, data.extend, name="zip", expected_size=link.size_bytes)
    assert bytes(data[:2]) == b"PK"


@pytest.mark.emulator(zip_build_polls=5)
def test_download_all_gives_up_after_its_polls(emu: Emulator, client: DataframerClient) -> None:
    run_id = finished_run(emu, client)
    with pytest.raises(Exception, match="still being built after 2 polls"):
        client.download_all(run_id, max_polls=2, poll_seconds=0)


@pytest.mark.emulator(expired_urls=1)
def test_an_expired_link_is_a_link_expired(emu: Emulator, client: DataframerClient) -> None:
    run_id = finished_run(emu, client)
    first = client.get_run(run_id).generated_files[0]
    link = client.file_download_url(run_id, str(first.id))
    assert link.download_url
    with FileHost(timeout=timeouts(10.0)) as host, pytest.raises(LinkExpired):
        host.fetch(link.download_url, lambda b: None, name="f", expected_size=None)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/x", "plain http to example.com"),
        ("ftp://example.com/x", "not an https URL"),
        ("https://user:pw@example.com/x", "user name or password"),
        ("not a url", "not an https URL"),
    ],
)
def test_download_urls_must_be_https_or_loopback(url: str, why: str) -> None:
    problem = check_download_url(url)
    assert isinstance(problem, str) and why in problem
    assert not isinstance(check_download_url("http://127.0.0.1:9/x"), str)
    assert not isinstance(check_download_url("https://bucket.s3.amazonaws.com/k?sig=1"), str)


def redirecting(to: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "files.example":
            return httpx.Response(302, headers={"Location": to})
        return httpx.Response(200, stream=httpx.ByteStream(b"abc"))

    return httpx.MockTransport(handle)


def test_redirects_are_followed_to_https_only_and_carry_no_credentials() -> None:
    seen: list[httpx.Request] = []
    got = bytearray()
    with FileHost(
        timeout=timeouts(5.0), transport=redirecting("https://cdn.example/k", seen)
    ) as host:
        assert host.fetch("https://files.example/k", got.extend, name="f", expected_size=3) == 3
    assert [r.url.host for r in seen] == ["files.example", "cdn.example"]
    assert all("authorization" not in r.headers and "cookie" not in r.headers for r in seen)
    with (
        FileHost(timeout=timeouts(5.0), transport=redirecting("http://cdn.example/k", [])) as bad,
        pytest.raises(DownloadError, match="refusing the file host's redirect: it is plain http"),
    ):
        bad.fetch("https://files.example/k", got.extend, name="f", expected_size=3)


OBJECT = b"0123456789"


def ranged(kind: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    """A file host answering a resumed request (`Range: bytes=4-`, If-Match "e1") as
    `kind` says; a request without Range always gets the whole object."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        whole = httpx.Response(200, headers={"ETag": '"e1"'}, stream=httpx.ByteStream(OBJECT))
        if "range" not in request.headers:
            return whole
        answers = {
            "honours": (206, "bytes 4-9/10", '"e1"', OBJECT[4:]),
            "wrong start": (206, "bytes 0-9/10", '"e1"', OBJECT),
            "another object": (206, "bytes 4-9/10", '"e2"', OBJECT[4:]),
            "not to the end": (206, "bytes 4-8/10", '"e1"', OBJECT[4:9]),
        }
        if kind in answers:
            status, span, etag, body = answers[kind]
            headers = {"Content-Range": span, "ETag": etag}
            return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))
        if kind == "ignores range":
            return whole
        return httpx.Response(int(kind), stream=httpx.ByteStream(b"<Error/>"))

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("kind", "start", "requests"),
    [
        ("honours", 4, 1),
        ("ignores range", 0, 1),
        ("412", 0, 2),
        ("416", 0, 2),
        ("wrong start", 0, 2),
        ("another object", 0, 2),
        ("not to the end", 0, 2),
    ],
)
def test_a_resumed_download_appends_only_the_same_objects_rest(
    kind: str, start: int, requests: int
) -> None:
    """Bytes are appended only after a 206 of the same ETag from the resumed offset to
    the object's end; anything else has the body sent again whole, from byte 0."""
    seen: list[httpx.Request] = []
    got, starts = bytearray(), []
    with FileHost(timeout=timeouts(5.0), transport=ranged(kind, seen)) as host:
        sent = host.fetch(
            "https://files.example/k",
            got.extend,
            name="f",
            expected_size=10,
            resume=Resume(4, '"e1"'),
            on_start=lambda at, etag: starts.append((at, etag)),
        )
    assert starts == [(start, '"e1"')]
    assert bytes(got) == OBJECT[start:] and sent == 10 - start
    assert len(seen) == requests
    assert seen[0].headers["Range"] == "bytes=4-" and seen[0].headers["If-Match"] == '"e1"'
    assert all("range" not in r.headers and "if-match" not in r.headers for r in seen[1:])


@pytest.mark.emulator(customer_hosted=True)
def test_a_customer_hosted_file_is_followed_through_the_sdk(
    emu: Emulator, client: DataframerClient
) -> None:
    run_id = finished_run(emu, client)
    first = client.get_run(run_id).generated_files[0]
    pointer = client.file_download_url(run_id, str(first.id))
    assert pointer.download_url is None and pointer.pointer is not None
    expected = emu.run_files(run_id)[str(first.path)]
    assert pointer.sha256 == hashlib.sha256(expected).hexdigest()
    link = client.follow_pointer(run_id, str(first.id))
    assert link.download_url
    data = bytearray()
    with FileHost(timeout=timeouts(10.0)) as host:
        host.fetch(link.download_url, data.extend, name="f", expected_size=len(expected))
    assert bytes(data) == expected
    assert emu.file_host_stats()["api_key_seen"] == 0


def test_pull_from_a_customer_hosted_deployment(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    emu.configure(customer_hosted=True)
    ws.write_text("tickets", manifest_text("tickets", "outputs:\n  path: data/tickets\n"))
    assert dfr("apply", "--auto-approve", ws.manifests).code == 0
    assert dfr("pull").code == 0, ws.outputs[-1]
    run_id = str(ws.run_ids()["tickets"])
    folder = ws.root / "data/tickets"
    found = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert found == emu.run_files(run_id)
    assert emu.file_host_stats()["api_key_seen"] == 0


def test_without_the_sdk_a_customer_hosted_pull_says_what_to_install(
    ws: Workspace, dfr: Runner, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu.configure(customer_hosted=True)
    ws.write_text("tickets", manifest_text("tickets", "outputs:\n  path: data/tickets\n"))
    assert dfr("apply", "--auto-approve", ws.manifests).code == 0
    monkeypatch.setitem(sys.modules, "dataframer", None)  # `import dataframer` fails
    result = dfr("pull")
    assert result.code == 1
    assert f"pip install '{DATAPLANE_EXTRA}'" in result.err
    assert "pydataframer==0.19.2" in result.err
    assert not (ws.root / "data/tickets").exists()
