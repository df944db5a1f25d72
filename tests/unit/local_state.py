"""Helpers of the file backend's tests (`test_state_local.py`, `test_state_checkpoint.py`)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord


def rec(name: str, i: int = 0, **fields: Any) -> RunRecord:
    return RunRecord.new(
        name,
        spec={"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": i + 1},
        run_id=f"run-{name}-{i}",
        now="2026-01-01T00:00:00.000Z",
        **fields,
    )


def files(p: Path) -> list[str]:
    """The names of the files beside the state file `p`."""
    return sorted(f.name for f in p.parent.iterdir())


def journal_lines(p: Path) -> list[dict[str, Any]]:
    j = Path(str(p) + ".journal")
    return [json.loads(line) for line in j.read_text().splitlines()] if j.exists() else []


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def saved(p: Path, *runs: RunRecord) -> LocalBackend:
    """The file backend at `p` after one apply session that put `runs`."""
    backend = LocalBackend(p)
    with backend.lock("apply") as store:
        for run in runs:
            store.put(run)
    return backend
