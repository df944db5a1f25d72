"""Fixtures and helpers of the GitOps tests (test_gitops_*.py): their own, so that they
do not depend on other suites' conftest fixtures.

- `gemu`: an in-process emulator with a fast lifecycle (the first run created ends FAILED
  when a test asks with `gemu.configure(fail_next=1)`);
- `gws`: a working directory in tmp_path with env pointing at the emulator;
- `gdfr(*args)`: runs `reconciler.cli.run` in this process -> Result(code, out, err);
- `dfr_process(*args)`: runs `python -m reconciler` in a subprocess (optionally under a
  pseudo-terminal) for the tests that need a real terminal or a fresh interpreter.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.emulator import SPEC_SUPPORT_TICKETS, Emulator, EmulatorConfig

KEY = "dfr-gitops-test-key-5c1d"
FAST = {"pending_seconds": 0.05, "processing_seconds": 0.3}
POLL = "0.05s"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.code, self.out, self.err))


Runner = Callable[..., Result]


def manifest(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": metadata,
        "spec": {
            "spec_id": SPEC_SUPPORT_TICKETS,
            "spec_version": 2,
            "number_of_samples": 10,
            **spec,
        },
    }


class Workspace:
    def __init__(self, root: Path, emu: Emulator) -> None:
        self.root = root
        self.emu = emu
        self.manifests = root / "manifests"
        self.manifests.mkdir()
        self.state = root / "dfr.state.json"

    def write(self, name: str, labels: dict[str, str] | None = None, **spec: Any) -> Path:
        path = self.manifests / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest(name, labels, **spec), sort_keys=False))
        return path

    def write_many(self, docs: list[dict[str, Any]], filename: str = "many.yaml") -> Path:
        path = self.manifests / filename
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NO_COLOR", "GITHUB_ACTIONS", "DFR_STATE", "DFR_DEBUG", "FORCE_COLOR")
        }
        env.update(
            DATAFRAMER_BASE_URL=self.emu.base_url,
            DATAFRAMER_API_KEY=KEY,
            DFR_STATE=str(self.state),
            PYTHONPATH=str(ROOT),
            **extra,
        )
        return env


@pytest.fixture
def gemu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(api_key=KEY, seed=11, **FAST)) as emulator:
        yield emulator


@pytest.fixture
def gws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gemu: Emulator) -> Workspace:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", gemu.base_url)
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    monkeypatch.setenv("DFR_STATE", str(tmp_path / "dfr.state.json"))
    for name in ("DFR_DEBUG", "GITHUB_ACTIONS", "NO_COLOR", "DFR_PROGRESS_INTERVAL"):
        monkeypatch.delenv(name, raising=False)
    return Workspace(tmp_path, gemu)


@pytest.fixture
def gdfr(gws: Workspace, capsys: pytest.CaptureFixture[str]) -> Runner:
    from reconciler.cli import run

    def runner(*args: str) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        out, err = capsys.readouterr()
        for stream in (out, err):
            assert "Traceback" not in stream, stream
            assert KEY not in stream
        return Result(code, out, err)

    return runner


def apply_args(*extra: str) -> list[str]:
    return ["apply", "--auto-approve", "--poll-interval", POLL, *extra]


def dfr_process(
    *args: str, env: dict[str, str], cwd: Path, tty: bool = False, timeout: float = 30.0
) -> Result:
    """`python -m reconciler ARGS` in a subprocess; with tty=True its stderr is a pty."""
    argv = [sys.executable, "-m", "reconciler", *args]
    if not tty:
        done = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
        return Result(done.returncode, done.stdout, done.stderr)
    master, slave = os.openpty()
    try:
        # A terminal of a known size, so rich draws a predictable display.
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        with subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        ) as proc:
            os.close(slave)
            slave = -1
            chunks: list[bytes] = []
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                ready, _, _ = select.select([master], [], [], 0.05)
                if ready:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    chunks.append(chunk)
                elif proc.poll() is not None:
                    break
            else:
                proc.kill()
                raise AssertionError("dfr did not finish in time under the pty")
            assert proc.stdout is not None
            out = proc.stdout.read()
            code = proc.wait(timeout=timeout)
        return Result(code, out.decode(), b"".join(chunks).decode(errors="replace"))
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


__all__ = [
    "KEY",
    "POLL",
    "ROOT",
    "Result",
    "Runner",
    "Workspace",
    "apply_args",
    "dfr_process",
    "gdfr",
    "gemu",
    "gws",
    "manifest",
]
