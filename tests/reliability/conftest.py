"""Fixtures of the reliability suite: emulator processes and workspaces, always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_harness import LIFECYCLE, EmulatorProcess, Workspace


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorProcess]]:
    """Start `python -m reconciler.emulator` with knobs; every one is killed at teardown."""
    started: list[EmulatorProcess] = []

    def start(**knobs: Any) -> EmulatorProcess:
        emu = EmulatorProcess(**{**LIFECYCLE, **knobs})
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[[EmulatorProcess], Workspace]:
    def make(emu: EmulatorProcess) -> Workspace:
        return Workspace(tmp_path, emu.url)

    return make
