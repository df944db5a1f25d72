"""The state store: what dfr recorded about the runs it submitted.

Layers, as in Terraform's `states/`, `states/statefile/` and `states/statemgr/`:

- `model`: `State`, `RunRecord`, `Intent` and the run statuses (pure values);
- `statefile`: the JSON document format (version, serial, lineage, upgrades);
- `backend`: the `Backend`/`Store` interface, the moved-state tombstone, lock holders;
- `session`: `BaseStore`, the session logic every backend's Store shares;
- `memory`: `InMemoryBackend`, the fake other modules test with;
- `local`: `LocalBackend`, the `dfr.state.json` file with journal, lock and backup;
- `journal`: the local backend's journal lines and their replay onto a snapshot;
- `files`: the file primitives it writes with (0600, atomic replace, durable appends);
- `lock`: the flock-based lock of the local backend;
- `postgres`: `PostgresBackend`, one workspace of a shared database, with its
  write session (`pgstore`), tables (`pgschema`) and URLs (`pgurl`);
- `migrate`: moving a state between backends.

Importing this package imports only the model; import the others where used.
"""

from __future__ import annotations

from reconciler.state.model import (
    CANCELED,
    FAILED,
    FORMAT_VERSION,
    PENDING,
    PROCESSING,
    SUCCEEDED,
    TERMINAL,
    Intent,
    RunRecord,
    State,
    normalize_status,
)

__all__ = [
    "CANCELED",
    "FAILED",
    "FORMAT_VERSION",
    "PENDING",
    "PROCESSING",
    "SUCCEEDED",
    "TERMINAL",
    "Intent",
    "RunRecord",
    "State",
    "normalize_status",
]
