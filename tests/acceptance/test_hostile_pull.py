"""Hostile answers to a pull (issue 16): a run's `generated_files` and its download links.

The emulator's `rewrite` makes the API answer as a broken or hostile server
would, over real HTTP. Whatever it says, a pull writes nothing outside the
output folder, swaps in no half or unverified dataset, deletes no file of the
user's, never sends the API key anywhere but the API, and ends with one line
and exit 1, never a traceback.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator

Files = list[dict[str, Any]]


def _applied(ws: Workspace, dfr: Runner, name: str = "tickets") -> str:
    extra = f"outputs:\n  path: data/{name}\n"
    ws.write_text(name, manifest_text(name, extra))
    result = dfr("apply", "--auto-approve", ws.manifests)
    assert result.code == 0, result.err
    return str(ws.run_ids()[name])


def _files_as(change: Callable[[Files], Files]) -> Callable[[Any], Any]:
    def rewrite(run: Any) -> Any:
        if isinstance(run, dict) and isinstance(run.get("generated_files"), list):
            run["generated_files"] = change(list(run["generated_files"]))
        return run

    return rewrite


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _one_line_failure(err: str, name: str = "tickets") -> str:
    """The one line saying why run `name` was not pulled."""
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith(f"{name}: failed: ")]
    return line


def _first_renamed(path: str) -> Callable[[Files], Files]:
    def change(files: Files) -> Files:
        files[0] = {**files[0], "path": path}
        return files

    return change


HOSTILE_PATHS = [
    "../escape.jsonl",
    "data/../../escape.jsonl",
    "/tmp/abs.jsonl",
    "C:/abs.jsonl",
    "data\\part.jsonl",
    "data/\x00nul.jsonl",
    "data/" + "x" * 300,
    ".git/hooks/post-checkout",
    "data/.GIT/config",
    "",
    "data//double.jsonl",
    "./data.jsonl",
    "~/home.jsonl",
    "x.dfr-pull/a",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_a_hostile_path_writes_nothing(
    ws: Workspace, dfr: Runner, emu: Emulator, path: str
) -> None:
    _applied(ws, dfr)
    before = _tree(ws.root.parent)
    emu.rewrite("runs.get", _files_as(_first_renamed(path)))
    result = dfr("pull")
    assert result.code == 1, result.text
    _one_line_failure(result.err)
    assert _tree(ws.root.parent) == before
    assert not (ws.root / "data/tickets").exists()


def _first_changed(**fields: Any) -> Callable[[Files], Files]:
    def change(files: Files) -> Files:
        files[0] = {**files[0], **fields}
        return files

    return change


@pytest.mark.parametrize(
    "size", [None, -1, 10**18, "12", "twelve", 1.5, True, [], {"n": 1}], ids=repr
)
def test_an_odd_size_is_never_trusted_blindly(
    ws: Workspace, dfr: Runner, emu: Emulator, size: object
) -> None:
    run_id = _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(_first_changed(size_bytes=size)))
    result = dfr("pull")
    assert "Traceback" not in result.err
    if result.code == 0:
        assert _tree(ws.root / "data/tickets") >= set(emu.run_files(run_id))
        for path, data in emu.run_files(run_id).items():
            assert (ws.root / "data/tickets" / path).read_bytes() == data
    else:
        assert result.code == 1
        _one_line_failure(result.err)
        assert not (ws.root / "data/tickets").exists()


@pytest.mark.parametrize(
    "file_id", ["a/b", "../../runs", "x y", "", None, 7, "%2e%2e", "?q=1", "#frag"], ids=repr
)
def test_an_odd_file_id_is_refused_or_asked_for_safely(
    ws: Workspace, dfr: Runner, emu: Emulator, file_id: object
) -> None:
    _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(_first_changed(id=file_id)))
    result = dfr("pull")
    assert result.code == 1, result.text
    _one_line_failure(result.err)
    assert not (ws.root / "data/tickets").exists()


def _add(extra: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Files], Files]:
    """The listing with one more entry, made from its first."""

    def change(files: Files) -> Files:
        return [*files, extra(dict(files[0]))]

    return change


CLASHES: dict[str, Callable[[Files], Files]] = {
    "duplicate": _add(lambda f: f),
    "same path, other id": _add(lambda f: {**f, "id": "0" * 8 + f["id"][8:]}),
    "case": _add(lambda f: {**f, "path": f["path"].upper()}),
    "file and folder": _add(lambda f: {**f, "path": f["path"] + "/inner.jsonl"}),
    "composed and decomposed": lambda files: [
        {**files[0], "path": "data/caf\u00e9.jsonl"},
        {**files[1], "path": "data/cafe\u0301.jsonl"},
        *files[2:],
    ],
}


@pytest.mark.parametrize("kind", list(CLASHES))
def test_two_listed_files_that_would_land_on_one_name_are_refused(
    ws: Workspace, dfr: Runner, emu: Emulator, kind: str
) -> None:
    _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(CLASHES[kind]))
    result = dfr("pull")
    assert result.code == 1, result.text
    line = _one_line_failure(result.err)
    assert "the API's file list cannot be written" in line
    if kind == "composed and decomposed":
        assert "are one name in two Unicode forms" in line
    assert not (ws.root / "data/tickets").exists()


def _link_as(url: Callable[[str], str]) -> Callable[[Any], Any]:
    def rewrite(answer: Any) -> Any:
        if isinstance(answer, dict) and isinstance(answer.get("download_url"), str):
            answer["download_url"] = url(answer["download_url"])
        return answer

    return rewrite


def _api_host(emu: Emulator) -> Callable[[str], str]:
    return lambda url: url.replace(emu.file_base_url, emu.base_url)


LINKS: dict[str, Callable[[Emulator], Callable[[str], str]]] = {
    "the API's own host": _api_host,
    "file://": lambda emu: lambda url: "file:///etc/passwd",
    "ftp://": lambda emu: lambda url: url.replace("http://", "ftp://"),
    "credentials": lambda emu: lambda url: url.replace("http://", "http://user:pw@"),
    "plain http elsewhere": lambda emu: lambda url: "http://example.com/x.jsonl",
    "not a URL": lambda emu: lambda url: "::::",
    "relative": lambda emu: lambda url: "/api/dataframer/runs/",
    "javascript": lambda emu: lambda url: "javascript:alert(1)",
}


@pytest.mark.parametrize("kind", list(LINKS))
def test_an_odd_download_url_is_refused_and_the_key_stays_home(
    ws: Workspace, dfr: Runner, emu: Emulator, kind: str
) -> None:
    _applied(ws, dfr)
    emu.rewrite("files.download", _link_as(LINKS[kind](emu)))
    emu.reset_stats()
    result = dfr("pull")
    assert result.code == 1, result.text
    _one_line_failure(result.err)
    assert not (ws.root / "data/tickets").exists()
    # Nothing dfr sent to a download URL carried the key: the file host saw no
    # credentials, and what reached the API's host that way was refused as
    # anonymous (401), never answered as the key's owner.
    stats = emu.stats()
    assert set(stats["requests"]) <= {"runs.get", "files.download", "unknown"}
    anonymous = stats["requests"].get("unknown", 0)
    assert (anonymous > 0) == (kind == "the API's own host")
    assert stats["responses"].get("401", 0) == anonymous
    assert emu.file_host_stats()["authorization_headers"] == 0


def _pulled(ws: Workspace, dfr: Runner) -> Path:
    result = dfr("pull")
    assert result.code == 0, result.err
    return ws.root / "data/tickets"


@pytest.mark.parametrize("kind", ["empty", "one file short"])
def test_a_listing_that_lost_files_does_not_empty_a_pulled_folder(
    ws: Workspace, dfr: Runner, emu: Emulator, kind: str
) -> None:
    """A SUCCEEDED run's files do not change: an empty listing, or one without a
    file an earlier pull of the same run wrote, is a broken answer, not a dataset."""
    run_id = _applied(ws, dfr)
    folder = _pulled(ws, dfr)
    (folder / "run_summary.json").write_text("edited\n")  # so the pull asks the API
    before = {p: (folder / p).read_bytes() for p in emu.run_files(run_id)}
    emu.rewrite("runs.get", _files_as(lambda files: [] if kind == "empty" else files[1:]))
    result = dfr("pull")
    assert result.code == 1, result.text
    line = _one_line_failure(result.err)
    assert ("lists no generated files" if kind == "empty" else "no longer lists") in line
    assert {p: (folder / p).read_bytes() for p in before} == before
    emu.rewrite("runs.get", None)
    assert dfr("pull").code == 0
    assert {p: (folder / p).read_bytes() for p in before} == emu.run_files(run_id)


def test_a_run_never_pulled_with_no_files_is_refused(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(lambda files: []))
    result = dfr("pull")
    assert result.code == 1, result.text
    assert "lists no generated files" in _one_line_failure(result.err)
    assert not (ws.root / "data/tickets").exists()


def test_a_thousand_files_are_pulled_and_recorded(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = _applied(ws, dfr)

    def many(files: Files) -> Files:
        (small,) = [f for f in files if f["path"] == "run_summary.json"]
        return [{**small, "path": f"many/f-{n:04}.json"} for n in range(1000)]

    emu.rewrite("runs.get", _files_as(many))
    result = dfr("pull", "--parallelism", "8")
    assert result.code == 0, result.err
    data = emu.run_files(run_id)["run_summary.json"]
    folder = ws.root / "data/tickets/many"
    assert len(list(folder.iterdir())) == 1000
    assert {p.read_bytes() for p in folder.iterdir()} == {data}
    assert len(ws.record("tickets")["outputs"]["files"]) == 1000
    assert dfr("pull", "--check").code == 0


class _Portal(http.server.BaseHTTPRequestHandler):
    """A captive portal or a proxy's login page: 200 with HTML for any URL."""

    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><html><body>Please log in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """A loopback HTTP server of `handler` in a thread, its URL; stopped afterwards."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def portal() -> Iterator[str]:
    yield from _serving(_Portal)


def test_a_200_with_an_html_page_is_not_the_file(
    ws: Workspace, dfr: Runner, emu: Emulator, portal: str
) -> None:
    """Without a size from the API, the page's own Content-Length agrees with its
    body: only its type says it is a proxy's page, not a generated file."""
    _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(lambda files: [{**f, "size_bytes": None} for f in files]))
    emu.rewrite("files.download", _link_as(lambda url: portal + "/x?sig=1"))
    result = dfr("pull")
    assert result.code == 1, result.text
    assert "HTML page" in _one_line_failure(result.err)
    assert not (ws.root / "data/tickets").exists()


@pytest.mark.parametrize("change", ["forgotten", "FAILED", "PROCESSING", "made-up status"])
def test_a_pulled_run_the_api_no_longer_shows_done_keeps_its_folder(
    ws: Workspace, dfr: Runner, emu: Emulator, change: str
) -> None:
    run_id = _applied(ws, dfr)
    folder = _pulled(ws, dfr)
    (folder / "run_summary.json").write_text("edited\n")  # so the pull asks the API
    if change == "forgotten":
        emu.forget(run_id)
    else:
        emu.force_status(run_id, "QUEUED-ISH" if change == "made-up status" else change)
    result = dfr("pull")
    assert result.code == 1, result.text
    _one_line_failure(result.err)
    assert (folder / "run_summary.json").read_text() == "edited\n"
    assert ws.record("tickets")["outputs"]["run_id"].lower() == run_id.lower()


def test_pull_of_a_name_no_manifest_has_is_one_line(ws: Workspace, dfr: Runner) -> None:
    _applied(ws, dfr)
    result = dfr("pull", "nope", "../x")
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    assert not (ws.root / "data/tickets").exists()


def test_a_hand_edited_state_path_is_never_read_and_does_not_block_the_pull(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """A recorded file path leaving the folder (`../secret.txt`, edited into the
    state by hand) is shown as modified without being read; the next pull writes
    the run's files and records what it wrote."""
    import json

    run_id = _applied(ws, dfr)
    folder = _pulled(ws, dfr)
    doc = json.loads(ws.state.read_text())
    files = doc["runs"]["tickets"]["outputs"]["files"]
    files.append({**files[0], "path": "../secret.txt"})
    ws.state.write_text(json.dumps(doc))
    (ws.root / "data/secret.txt").write_text("secret\n")
    check = dfr("pull", "--check")
    assert check.code == 1 and "modified: ../secret.txt" in check.out, check.text
    pulled = dfr("pull")
    assert pulled.code == 0, pulled.text
    assert {f["path"] for f in ws.record("tickets")["outputs"]["files"]} == set(
        emu.run_files(run_id)
    )
    assert (ws.root / "data/secret.txt").read_text() == "secret\n"
    assert (folder / "run_summary.json").exists()


class _Redirector(http.server.BaseHTTPRequestHandler):
    """Redirects as told by its path: /loop to itself, /file to file://, /creds to a URL
    with a password, /go/URL to URL (percent-encoded)."""

    def do_GET(self) -> None:
        from urllib.parse import unquote

        path = self.path
        if path.startswith("/go/"):
            target = unquote(path[len("/go/") :])
        else:
            target = {
                "/loop": "/loop",
                "/file": "file:///etc/passwd",
                "/creds": "http://user:pw@127.0.0.1:1/x",
            }.get(path.split("?")[0], "/loop")
        self.send_response(302)
        self.send_header("Location", target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def redirector() -> Iterator[str]:
    yield from _serving(_Redirector)


@pytest.mark.parametrize("kind", ["loop", "file", "creds", "to the file host"])
def test_redirects_are_followed_only_where_a_download_may_go(
    ws: Workspace, dfr: Runner, emu: Emulator, redirector: str, kind: str
) -> None:
    from urllib.parse import quote

    run_id = _applied(ws, dfr)
    if kind == "to the file host":
        emu.rewrite("files.download", _link_as(lambda url: f"{redirector}/go/{quote(url, '')}"))
    else:
        emu.rewrite("files.download", _link_as(lambda url: f"{redirector}/{kind}"))
    result = dfr("pull")
    assert "Traceback" not in result.err
    if kind == "to the file host":
        assert result.code == 0, result.text
        for path, data in emu.run_files(run_id).items():
            assert (ws.root / "data/tickets" / path).read_bytes() == data
        assert emu.file_host_stats()["authorization_headers"] == 0
        return
    assert result.code == 1, result.text
    line = _one_line_failure(result.err)
    assert (
        "redirected more than" if kind == "loop" else "refusing the file host's redirect"
    ) in line
    assert not (ws.root / "data/tickets").exists()


def test_an_html_file_the_api_says_is_html_is_pulled(
    ws: Workspace, dfr: Runner, emu: Emulator, portal: str
) -> None:
    """The HTML check spares a file whose download answer's content_type is HTML."""
    _applied(ws, dfr)
    emu.rewrite("runs.get", _files_as(lambda files: [{**f, "size_bytes": None} for f in files]))

    def html_link(answer: Any) -> Any:
        return {**answer, "download_url": portal + "/x", "content_type": "text/html"}

    emu.rewrite("files.download", html_link)
    result = dfr("pull")
    assert result.code == 0, result.text
    assert (ws.root / "data/tickets/run_summary.json").read_bytes().startswith(b"<!DOCTYPE")


@pytest.mark.parametrize("where", ["path", "file id", "download_url"])
def test_the_key_echoed_in_an_answer_never_reaches_output_or_state(
    ws: Workspace, dfr: Runner, emu: Emulator, where: str
) -> None:
    """The runner fails the test if the key reaches stdout or stderr, the workspace
    fixture if it reaches any file."""
    from support.emulators import KEY

    _applied(ws, dfr)
    if where == "download_url":
        emu.rewrite("files.download", _link_as(lambda url: f"{url}&token={KEY}"))
    else:
        field = "path" if where == "path" else "id"
        emu.rewrite("runs.get", _files_as(_first_changed(**{field: f"../{KEY}"})))
    result = dfr("pull")
    assert result.code == 1, result.text
    _one_line_failure(result.err)
    assert emu.file_host_stats()["api_key_seen"] == 0
