"""Runs submitted for a test to start from: held unfinished, or finished.

`submit_unfinished` holds the emulator's runs PENDING (`SLOW`), writes one
manifest per name and submits them with `apply --no-wait`; `apply_finished`
waits for them instead. Either apply must succeed.
"""

from __future__ import annotations

from typing import Any

from dfr_emulator import Emulator
from support.emulators import SLOW
from support.runner import Runner, apply_args
from support.workspace import Workspace


def submit_unfinished(
    emu: Emulator, ws: Workspace, dfr: Runner, *names: str, **fields: Any
) -> None:
    """Submit a run for each of `names` (manifests with `fields`) that stays PENDING."""
    emu.configure(**SLOW)
    for name in names:
        ws.write(name, **fields)
    result = dfr(*apply_args("--no-wait", "manifests"))
    assert result.code == 0, result.text


def apply_finished(ws: Workspace, dfr: Runner, *names: str) -> None:
    """Write a manifest for each of `names` and apply them until their runs finished."""
    for name in names:
        ws.write(name)
    result = dfr(*apply_args("manifests"))
    assert result.code == 0, result.text
