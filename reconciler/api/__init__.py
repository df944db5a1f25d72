"""The Dataframer API client: the only package that talks to the network.

    models.py   Run, Spec, SpecVersion, GeneratedFile, ClientStats: frozen values,
                parsed tolerantly (no I/O)
    errors.py   HTTP answers and transport failures -> the exceptions below;
                the key redacted from every message
    retry.py    RetryPolicy, and the one rule of when a request may be sent again
    pacing.py   Pacer and PacingConfig: the pause after a 429, an optional rate
    config.py   the default API URL, timeouts(), the check of a base URL
    client.py   DataframerClient (the endpoints) and client_from_env

    client = DataframerClient(
        "https://df-api.dataframer.ai",
        api_key,
        retry=RetryPolicy(max_retries=5),
        pacing=PacingConfig(max_requests_per_second=10, burst=1),
        timeout=timeouts(30.0),
    )

Failures are the `APIError` classes of `reconciler.errors` (the one home of
exit codes; every one exits 1), but `CreateAnswerUnreadable`, defined in
`errors.py` here:

    APIError
    ├── AuthError          401/403: the key in DATAFRAMER_API_KEY was refused
    ├── NotFoundError      404 for a run or spec (or a wrong base URL)
    ├── RequestRejected    other 4xx, with the API's own message
    ├── APIUnavailable     retries spent: 5xx, 429, connection errors; or a
    │                      request that could not be sent at all
    ├── BadAnswer          a body that is not the JSON we expect
    │   └── CreateAnswerUnreadable   (also an OutcomeUnknown, see below)
    └── OutcomeUnknown     a create-run POST whose outcome we cannot know

A create is never sent again unless the server surely did not act on it (a
429, or a connection that was never made); after anything else that may have
reached the server it raises `OutcomeUnknown`, and the caller looks for the
run before it submits again. See `retry.py`.
"""

from __future__ import annotations

import sys

# httpx imports its own command-line client (click, rich, pygments: about half
# of httpx's import time) whenever click is installed, as it is here; dfr never
# uses it. A None in sys.modules makes that import fail, and httpx then stands
# a stub in for `httpx.main`. Nothing else of httpx changes.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

from reconciler.api.client import DataframerClient, client_from_env
from reconciler.api.config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, timeouts
from reconciler.api.errors import CreateAnswerUnreadable
from reconciler.api.models import (
    TERMINAL_STATUSES,
    ClientStats,
    GeneratedFile,
    Run,
    Spec,
    SpecVersion,
    normalize_status,
)
from reconciler.api.pacing import Pacer, PacingConfig
from reconciler.api.retry import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "TERMINAL_STATUSES",
    "ClientStats",
    "CreateAnswerUnreadable",
    "DataframerClient",
    "GeneratedFile",
    "Pacer",
    "PacingConfig",
    "RetryPolicy",
    "Run",
    "Spec",
    "SpecVersion",
    "client_from_env",
    "normalize_status",
    "timeouts",
]
