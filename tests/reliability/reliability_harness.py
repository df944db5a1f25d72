"""The reliability suite's harness: real processes, a real emulator, the invariants.

`EmulatorProcess` runs `python -m reconciler.emulator` in its own process
group and talks to it only over HTTP (its `/_emulator/...` admin routes), so a
`dfr apply` killed with SIGKILL cannot take the API down with it. A `Workspace`
runs `python -m reconciler` as a subprocess in its folder, or, when a crash
point is asked for, `tests/support/crashing_dfr.py`, which arms it. `check_converged` is
the prime directive as code: exactly one run per manifest on the API, every
manifest in state with that run's id, no intent left, the state readable,
and no traceback in anything any process printed.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.emulator import SPEC_SUPPORT_TICKETS
from reconciler.state.local import LocalBackend
from reconciler.state.model import State

KEY = "sk-test-reliability-7f3a"
#: Runs finish ~1 s after creation: long enough to kill apply while it waits.
LIFECYCLE = {"pending_seconds": 0.3, "processing_seconds": 0.6}
POLL = "0.2s"
#: Every dfr subprocess is killed if it takes longer than this (a hang is a failure).
PROCESS_TIMEOUT = 60.0
#: dfr with crash points armed (see its docstring); never part of the package.
CRASHING_DFR = Path(__file__).resolve().parents[1] / "support" / "crashing_dfr.py"
CRASH_ENV = "DFR_TEST_CRASH_AT"


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


class EmulatorProcess:
    """`python -m reconciler.emulator` on an ephemeral port, in its own process group."""

    def __init__(self, **knobs: Any) -> None:
        self._stderr: str | None = None
        argv = [sys.executable, "-m", "reconciler.emulator", "--print-url", "--port", "0"]
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
        _kill_group(self.proc)
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

    def configure(self, **knobs: Any) -> None:
        self._admin("POST", "configure", knobs)

    def wait_for(self, predicate: Any, timeout: float = 20.0, every: float = 0.005) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.stats()):
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator never reached the condition: {self.stats()}")
            time.sleep(every)


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Workspace:
    """Manifests in `root/manifests`, state in `root/dfr.state.json`; every output kept."""

    root: Path
    api_url: str
    outputs: list[str] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.manifests = self.root / "manifests"
        self.manifests.mkdir(exist_ok=True)
        self.state = self.root / "dfr.state.json"

    def write_manifests(self, count: int, *, base: int = 100, identical: bool = False) -> None:
        """`count` manifests run-1..run-N; distinct sample counts unless `identical`."""
        for i in range(1, count + 1):
            name = f"run-{i}"
            samples = base if identical else base + i
            self.samples[name] = samples
            (self.manifests / f"{name}.yaml").write_text(
                "apiVersion: dataframer.ai/v1\n"
                "kind: GenerationRun\n"
                f"metadata:\n  name: {name}\n"
                f"spec:\n  spec_id: {SPEC_SUPPORT_TICKETS}\n  spec_version: 1\n"
                f"  number_of_samples: {samples}\n"
            )

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DFR_", "DATAFRAMER_")) and "PROXY" not in k.upper()
        }
        env.update(
            DATAFRAMER_API_KEY=KEY,
            DATAFRAMER_BASE_URL=self.api_url,
            DFR_STATE=str(self.state),
            # The emulator never finishes a POST late, so the real-world wait
            # before resubmitting a lost one (recovery grace) only slows tests.
            DFR_RECOVERY_GRACE="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra or {})
        return env

    def argv(self, *args: str, crash_at: str | None = None, crashing: bool = False) -> list[str]:
        """dfr ARGS; through crashing_dfr.py with `crash_at` (or `crashing`: the
        point is in the environment)."""
        if crash_at is not None:
            return [sys.executable, str(CRASHING_DFR), "--crash-at", crash_at, *args]
        if crashing:
            return [sys.executable, str(CRASHING_DFR), *args]
        return [sys.executable, "-m", "reconciler", *args]

    def apply_args(self, *extra: str) -> list[str]:
        return ["apply", "--auto-approve", "--poll-interval", POLL, *extra, str(self.manifests)]

    def start(
        self, *args: str, env: dict[str, str] | None = None, crash_at: str | None = None
    ) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, crash_at=crash_at, crashing=CRASH_ENV in (env or {})),
            cwd=self.root,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def finish(self, proc: subprocess.Popen[str], timeout: float = PROCESS_TIMEOUT) -> Outcome:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            out, err = proc.communicate()
            raise AssertionError(f"dfr hung (killed after {timeout} s):\n{out}\n{err}") from None
        finally:
            _kill_group(proc)
        self.outputs.append(out + err)
        return Outcome(proc.returncode, out, err)

    def dfr(
        self, *args: str, env: dict[str, str] | None = None, crash_at: str | None = None
    ) -> Outcome:
        """Run dfr ARGS to its end; with `crash_at` (POINT:N[:SIGNAL]) armed to stop there."""
        return self.finish(self.start(*args, env=env, crash_at=crash_at))

    def apply_until_ok(self, attempts: int = 3, *extra: str) -> list[Outcome]:
        """Apply without faults until exit 0 (bounded); every attempt's outcome."""
        outcomes = []
        for _ in range(attempts):
            outcome = self.dfr(*self.apply_args(*extra))
            outcomes.append(outcome)
            if outcome.code == 0:
                return outcomes
        raise AssertionError(
            "apply did not converge:\n" + "\n----\n".join(o.text for o in outcomes)
        )

    def read_state(self) -> State:
        return LocalBackend(self.state).read()


def assert_no_traceback(texts: Iterable[str]) -> None:
    for text in texts:
        assert "Traceback" not in text, text
        assert "internal error" not in text, text


def check_converged(
    ws: Workspace, api_runs: Sequence[dict[str, Any]], *, names: Iterable[str] | None = None
) -> dict[str, str]:
    """The invariants; returns name -> run id.

    Exactly one API run per manifest (matched by its distinct sample count),
    no run that no manifest asked for, every manifest in state with exactly
    that run's id and no leftover intent, and no traceback anywhere.
    """
    wanted = dict(ws.samples) if names is None else {n: ws.samples[n] for n in names}
    by_samples: dict[int, list[str]] = {}
    for run in api_runs:
        params = run.get("runtime_params") or {}
        by_samples.setdefault(params.get("number_of_samples"), []).append(run["id"])
    assert len(api_runs) == len(wanted), (
        f"{len(api_runs)} runs on the API for {len(wanted)} manifests: {by_samples}"
    )
    state = ws.read_state()
    ids = {}
    for name, samples in wanted.items():
        runs = by_samples.get(samples, [])
        assert len(runs) == 1, f"{name}: {len(runs)} runs on the API ({runs})"
        record = state.runs.get(name)
        assert record is not None, f"{name} is not in state"
        assert record.run_id == runs[0], f"{name}: state has {record.run_id}, API {runs[0]}"
        assert record.intent is None, f"{name}: an intent is left in state"
        ids[name] = runs[0]
    assert_no_traceback(ws.outputs)
    return ids
