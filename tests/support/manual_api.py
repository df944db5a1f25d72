"""The emulator on a manual clock, met over plain HTTP: for the emulator's own tests.

A module's fixtures `yield from` these: `serve` is an emulator whose time moves
only by hand (`clock.advance`), `authorized` an httpx client of it with a bearer
key, and `get_ok` reads one JSON answer that must be 200.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from dfr_emulator import Emulator, EmulatorConfig, ManualClock


def serve(clock: ManualClock, **config: Any) -> Iterator[Emulator]:
    """An emulator with `config` on `clock`, stopped when the test is done."""
    with Emulator(EmulatorConfig(clock=clock, **config)) as emulator:
        yield emulator


def authorized(emu: Emulator, key: str, timeout: float = 5.0) -> Iterator[httpx.Client]:
    """An httpx client of `emu` that sends `key` as its bearer token."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=emu.base_url, headers=headers, timeout=timeout) as client:
        yield client


def get_ok(client: httpx.Client, path: str) -> dict[str, Any]:
    """GET `path`, which must answer 200; its JSON object."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer
