"""Secrets and transport: the key never leaks; plain http to a remote host is refused.

The API key (`sk-test-SECRET-123`) must appear in no output of any command
(with DFR_DEBUG=1, which shows tracebacks of internal errors), in no file dfr
writes (state, journal, backup, saved plan), and in no exception's message or
repr. State and plan files are 0600. `--api-url http://example.com` is refused
before any network I/O: a guard on name resolution and connect proves that
nothing but loopback is ever contacted (and that the guard itself works).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from support.runner import in_process
from support.workspace import Workspace, manifest_text

from dfr_emulator import SPEC_SUPPORT_TICKETS, Emulator
from reconciler.api import DataframerClient, RetryPolicy, timeouts
from reconciler.errors import APIError

SECRET = "sk-test-SECRET-123"

pytestmark = pytest.mark.emulator(api_key=SECRET, seed=2, processing_seconds=0.1)


class NetworkGuard:
    """Record and refuse every name lookup or connect that is not loopback."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.refused: list[str] = []
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not self._loopback(host):
                self.refused.append(f"getaddrinfo {host}")
                raise socket.gaierror(f"test guard: no lookups of {host}")
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock: socket.socket, address: Any) -> Any:
            host = address[0] if isinstance(address, tuple) else address
            if not self._loopback(host):
                self.refused.append(f"connect {host}")
                raise ConnectionRefusedError(f"test guard: no connections to {host}")
            return real_connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)

    @staticmethod
    def _loopback(host: Any) -> bool:
        if isinstance(host, bytes):
            host = host.decode()
        return str(host) in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127.")


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> NetworkGuard:
    return NetworkGuard(monkeypatch)


@pytest.fixture
def home(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace (key SECRET) with three manifests, and DFR_DEBUG=1."""
    monkeypatch.delenv("DFR_HTTP_TIMEOUT", raising=False)
    monkeypatch.setenv("DFR_DEBUG", "1")
    for i in range(3):
        ws.write_text(f"m{i}", manifest_text(f"run-{i}", samples=i + 1, version=None))
    return ws.root


def _dfr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`dfr ARGS` in this process (no traceback, no SECRET in its output): code, output."""
    result = in_process(args, capsys, secrets=(SECRET,))
    return result.code, result.text


def _no_secret_in_files(root: Path) -> list[Path]:
    files = [p for p in root.rglob("*") if p.is_file()]
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), f"the key leaked into {path}"
    return files


def test_the_key_never_leaks_and_files_are_private(
    home: Path, emu: Emulator, guard: NetworkGuard, capsys: pytest.CaptureFixture[str]
) -> None:
    poll = ("--poll-interval", "0.05s")
    assert _dfr(capsys, "validate", "manifests")[0] == 0
    assert _dfr(capsys, "plan", "--refresh", "manifests", "--out", "plan.json")[0] == 0
    assert _dfr(capsys, "apply", "plan.json", *poll)[0] == 0
    assert _dfr(capsys, "status")[0] == 0
    assert _dfr(capsys, "refresh")[0] == 0
    assert _dfr(capsys, "state", "list", "--json")[0] == 0
    assert _dfr(capsys, "state", "show", "run-0")[0] == 0
    run_id = emu.runs()[0]["id"]
    code, _text = _dfr(capsys, "import", "run-0", run_id, "manifests")
    assert code in (0, 1)
    # Failures carry messages too: a refused key, a run that is gone, a 5xx storm.
    emu.forget(run_id)
    assert _dfr(capsys, "refresh")[0] in (0, 1)
    emu.configure(post_5xx_after_create_rate=1.0)
    code, text = _dfr(capsys, "apply", "--auto-approve", "--replace", "run-1", "--no-wait")
    assert code in (0, 1) and "may or may not have been created" in text, text
    emu.configure(post_5xx_after_create_rate=0.0, api_key="another-key")
    code, text = _dfr(capsys, "refresh")
    assert code == 1 and "refused the key" in text
    files = _no_secret_in_files(home)
    private = [p for p in files if p.name.startswith(("dfr.state.json", "plan.json"))]
    assert {p.name for p in private} >= {"dfr.state.json", "dfr.state.json.backup", "plan.json"}
    for path in private:
        assert path.stat().st_mode & 0o777 == 0o600, f"{path.name} is not 0600"
    assert guard.refused == []


def test_exceptions_never_carry_the_key(emu: Emulator) -> None:
    """Every APIError the client raises, and the client's repr, are free of the key."""
    emu.configure(garbage_rate=0.5, failure_rate=0.3, reset_rate=0.2, ambiguous_post_rate=0.5)
    body = {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 5}
    errors: list[APIError] = []
    with DataframerClient(
        emu.base_url,
        SECRET,
        retry=RetryPolicy(max_retries=1, backoff_base=0.0),
        timeout=timeouts(2.0),
    ) as client:
        assert SECRET not in repr(client)
        calls: list[Any] = [
            lambda: client.create_run(body),
            client.list_runs,
            lambda: client.get_run("no-such-run"),
            lambda: client.get_spec(SPEC_SUPPORT_TICKETS),
        ]
        for _ in range(6):
            for call in calls:
                try:
                    call()
                except APIError as exc:
                    errors.append(exc)
    with DataframerClient(
        emu.base_url, "wrong-" + SECRET, retry=RetryPolicy(max_retries=0)
    ) as client:
        try:
            client.list_runs()
        except APIError as exc:
            errors.append(exc)
    assert len({type(e) for e in errors}) >= 3, errors
    for error in errors:
        assert SECRET not in str(error) and SECRET not in repr(error), error
        assert SECRET not in repr(error.args)


@pytest.mark.parametrize(
    "command",
    [
        ("apply", "--auto-approve", "manifests"),
        ("plan", "--refresh", "manifests"),
        ("refresh",),
        ("import", "run-0", "some-run", "manifests"),
    ],
)
def test_plain_http_to_a_remote_host_is_refused_before_any_network_io(
    home: Path, guard: NetworkGuard, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    code, text = _dfr(capsys, *command, "--api-url", "http://example.com")
    assert code == 1
    assert "refusing plain http://" in text, text
    assert guard.refused == [], f"dfr touched the network: {guard.refused}"
    assert not (home / "dfr.state.json").exists()


def test_the_explicit_flag_allows_plain_http_and_the_guard_catches_it(
    guard: NetworkGuard,
) -> None:
    """Proves the guard above is not vacuous: with the flag, dfr does try example.com."""
    with (
        DataframerClient(
            "http://example.com",
            SECRET,
            allow_insecure_http=True,
            retry=RetryPolicy(max_retries=0),
        ) as client,
        pytest.raises(APIError) as caught,
    ):
        client.list_runs()
    assert guard.refused, "the guard saw no attempt"
    assert all("example.com" in attempt for attempt in guard.refused)
    assert SECRET not in str(caught.value)


def test_api_key_file(
    home: Path,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DATAFRAMER_API_KEY")
    key_file = home / "key.txt"
    key_file.write_text(SECRET + "\n")
    code, text = _dfr(
        capsys, "apply", "--auto-approve", "--no-wait", "--api-key-file", str(key_file), "manifests"
    )
    assert code == 0, text
    assert len(emu.runs()) == 3
    code, text = _dfr(capsys, "refresh", "--api-key-file", str(home / "missing.txt"))
    assert code == 1 and "missing.txt" in text
    key_file.write_text("two words\n")
    code, text = _dfr(capsys, "refresh", "--api-key-file", str(key_file))
    assert code == 1 and "two words" not in text
    # Without the flag and without the variable: a clear usage error.
    code, text = _dfr(capsys, "refresh")
    assert code == 1 and "DATAFRAMER_API_KEY" in text
    _no_secret_in_files(home)


@pytest.mark.parametrize("command", [("apply", "--auto-approve", "manifests"), ("refresh",)])
@pytest.mark.parametrize("key", ["k", "abc1234"])
def test_a_short_key_is_refused_before_any_request(
    home: Path,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: tuple[str, ...],
    key: str,
) -> None:
    """A key of 1 to 7 characters is refused with a clear error (it used to be sent, and
    to be scrubbed from inside ordinary words: "dfr will loo*** for it")."""
    monkeypatch.setenv("DATAFRAMER_API_KEY", key)
    emu.reset_stats()
    code, text = _dfr(capsys, *command)
    assert code == 1
    assert "error: DATAFRAMER_API_KEY is shorter than 8 characters" in text, text
    assert "***" not in text
    assert emu.stats()["requests_total"] == 0
    assert not (home / "dfr.state.json").exists()
