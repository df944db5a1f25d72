"""A local Dataframer-compatible API server: the test bench and the quickstart.

`dfr emulator` serves it in the foreground; tests start it in-process:

    from dfr_emulator import Emulator, EmulatorConfig, ManualClock

    clock = ManualClock()
    with Emulator(EmulatorConfig(clock=clock, failure_rate=0.2, seed=7)) as emu:
        client = httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer x"})
        ...
        emu.advance(10)                 # runs move on without sleeping
        emu.configure(failure_rate=0)   # stop the faults, check convergence
        assert emu.stats()["runs_created"] == 1

It binds 127.0.0.1 only: the API on `base_url`, and the file host (the
presigned URLs of generated files and ZIPs) on `file_base_url`, a second
port. The API is `shared/API.md`'s runs, specs, files and evaluations routes,
answered exactly as the official SDK's models (pydataframer 0.19.2) describe
them; `EmulatorConfig(legacy=True)` (`dfr emulator --legacy`) answers as the
old reference page did instead. `/_emulator/...` (no auth) exposes stats,
runs and settings to other processes. Seed spec ids are in
`dfr_emulator.seeds` and re-exported here.

Modules: `config` (settings), `seeds` (built-in specs, prices), `validation`
(create-body checks from the manifest schema, `runtime_params` and the
service's defaults), `specs` (specs: built-in and made through the API, their
versions and lifecycle), `spec_content` (spec bodies and YAML), `store` (runs,
lifecycle, rendering per mode),
`faults` (seeded decisions, rate limiter, counters), `app` (routes, auth,
fault injection), `server` (HTTP and the `Emulator` object), `files` (a run's
generated files and their ZIP), `outputs` (download and evaluation routes),
`fileserver` (the file host), `evaluations`, `dataplane` (customer-hosted
pointers and the gateway the SDK follows them through).

Importing this package is cheap: the HTTP server and jsonschema load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dfr_emulator.config import EmulatorConfig, ManualClock
from dfr_emulator.seeds import (
    SPEC_CHAT_TRANSCRIPTS,
    SPEC_INSURANCE_CLAIMS,
    SPEC_LEGAL_CONTRACTS,
    SPEC_MEDICAL_NOTES,
    SPEC_PRODUCT_REVIEWS,
    SPEC_SUPPORT_TICKETS,
)

if TYPE_CHECKING:
    from dfr_emulator.server import Emulator

__all__ = [
    "SPEC_CHAT_TRANSCRIPTS",
    "SPEC_INSURANCE_CLAIMS",
    "SPEC_LEGAL_CONTRACTS",
    "SPEC_MEDICAL_NOTES",
    "SPEC_PRODUCT_REVIEWS",
    "SPEC_SUPPORT_TICKETS",
    "Emulator",
    "EmulatorConfig",
    "ManualClock",
]


def __getattr__(name: str) -> Any:
    # Lazy: http.server and friends load only when an emulator is made.
    if name == "Emulator":
        from dfr_emulator.server import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
