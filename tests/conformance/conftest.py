"""Fixtures of the conformance tests: the emulator against the official SDK (pydataframer 0.19.2).

Each test starts its own emulator on 127.0.0.1 with a manual clock and an API
key, so nothing sleeps for the lifecycle; `sdk` is the official SDK as a client
of it, `http` a plain httpx client. Helpers are in `conformance_helpers`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conformance_helpers import KEY
from support.manual_api import authorized, serve

from dfr_emulator import Emulator, ManualClock


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock, api_key=KEY, seed=5)


@pytest.fixture
def legacy_emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock, api_key=KEY, seed=5, legacy=True)


@pytest.fixture
def http(emu: Emulator) -> Iterator[httpx.Client]:
    yield from authorized(emu, KEY)


@pytest.fixture
def legacy_http(legacy_emu: Emulator) -> Iterator[httpx.Client]:
    yield from authorized(legacy_emu, KEY)


@pytest.fixture
def sdk(emu: Emulator) -> Iterator[Any]:
    """The official SDK as a client of the emulator (no retries: a retried POST
    could create a second run, and nothing here should need one)."""
    from dataframer import Dataframer

    client = Dataframer(api_key=KEY, base_url=emu.base_url, max_retries=0, timeout=5.0)
    yield client
    client.close()
