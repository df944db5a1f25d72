"""The emulator as the tests meet it: in this process, or as a process of its own.

`emulator(**knobs)` is an `Emulator` on 127.0.0.1 with the tests' API key and a
fast lifecycle (the `emu` fixture's; a test module changes knobs with
`pytest.mark.emulator(...)`). `EmulatorProcess` runs `python -m dfr_emulator`
in its own process group and talks to it only over HTTP (its `/_emulator/...`
admin routes), so a `dfr apply` killed with SIGKILL cannot take the API down with
it (the `start_emulator` fixture's). The functions at the end read what an
in-process emulator saw.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from dfr_emulator import Emulator, EmulatorConfig, seeds

#: The API key of every test's emulator and dfr; it must never reach an output or a file.
KEY = "dfr-test-key-8e1f4c2a5b"
#: Fast enough to finish within a few polls, slow enough to be seen PENDING first.
FAST: dict[str, Any] = {
    "pending_seconds": 0.05,
    "processing_seconds": 0.15,
    "spec_processing_seconds": 0.1,
}
SEED = 3
#: An emulator process's runs finish ~1 s after creation: long enough to kill apply
#: while it waits.
LIFECYCLE: dict[str, Any] = {
    "pending_seconds": 0.3,
    "processing_seconds": 0.6,
    "spec_processing_seconds": 0.6,
}

#: Runs that stay PENDING for the whole test (to replace or cancel an unfinished run).
SLOW: dict[str, Any] = {"pending_seconds": 60.0, "processing_seconds": 60.0}

# The seed specs by what a test needs of them.
SUPPORT = seeds.SPEC_SUPPORT_TICKETS  # SUCCEEDED, versions 1-3
REVIEWS = seeds.SPEC_PRODUCT_REVIEWS  # SUCCEEDED, versions 1-2
MEDICAL = seeds.SPEC_MEDICAL_NOTES  # PROCESSING
LEGAL = seeds.SPEC_LEGAL_CONTRACTS  # FAILED
UNKNOWN = "00000000-1111-4222-8333-444444444444"  # no such spec


def emulator(**knobs: Any) -> Emulator:
    """An emulator (not started: use it as a context manager) with the tests' defaults."""
    return Emulator(EmulatorConfig(**{"api_key": KEY, "seed": SEED, **FAST, **knobs}))


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process group `proc` leads (started with start_new_session), then reap it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


class EmulatorProcess:
    """`python -m dfr_emulator` on an ephemeral port, in its own process group."""

    def __init__(self, **knobs: Any) -> None:
        self._stderr: str | None = None
        argv = [sys.executable, "-m", "dfr_emulator", "--print-url", "--port", "0"]
        for name, value in knobs.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + name.replace("_", "-"))
            else:
                argv += [flag, str(value)]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r} {self.stderr()!r}")
        self.url = line

    def stop(self) -> None:
        kill_group(self.proc)
        if self._stderr is None:
            self._stderr = self.proc.communicate()[1]  # drains and closes the pipes

    def stderr(self) -> str:
        """What the emulator printed on stderr (once stopped; "" while running)."""
        return self._stderr or ""

    def _admin(self, method: str, action: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/_emulator/{action}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "stats")
        return result

    def runs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._admin("GET", "runs")
        return result

    def specs(self) -> list[dict[str, Any]]:
        """Every spec with its versions, oldest first (`GET /_emulator/specs`)."""
        result: list[dict[str, Any]] = self._admin("GET", "specs")
        return result

    def configure(self, **knobs: Any) -> None:
        self._admin("POST", "configure", knobs)

    def wait_for(self, predicate: Any, timeout: float = 20.0, every: float = 0.005) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.stats()):
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator never reached the condition: {self.stats()}")
            time.sleep(every)


# -- what an in-process emulator saw --------------------------------------------------


def count(emu: Emulator, kind: str) -> int:
    """Requests of one kind the emulator has answered: runs.create, specs.get, ..."""
    return int(emu.stats()["requests"].get(kind, 0))


def posts(emu: Emulator) -> int:
    """Create-run POSTs the emulator has seen."""
    return count(emu, "runs.create")


def cancels(emu: Emulator) -> int:
    return count(emu, "runs.cancel")


def requests(emu: Emulator) -> int:
    return int(emu.stats()["requests_total"])


def emu_status(emu: Emulator, run_id: str) -> str | None:
    run = emu.run(run_id)
    return None if run is None else str(run["status"])


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` every 10 ms until true (or fail after `timeout`)."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
