"""The reliability suite's invariants: what must hold after any fault or kill.

`check_converged` is the prime directive as code: exactly one run per manifest
on the API, every manifest in state with that run's id, no intent left, the
state readable, and no traceback in anything any dfr run printed. The
emulator process, the workspace and dfr as a process are in `tests/support`
(re-exported here for the postgres suite, which imports them from this module).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from support.emulators import LIFECYCLE, EmulatorProcess
from support.runner import assert_clean
from support.workspace import Workspace

__all__ = ["LIFECYCLE", "EmulatorProcess", "Workspace", "assert_no_traceback", "check_converged"]


def assert_no_traceback(texts: Iterable[str]) -> None:
    """No traceback and no internal error in any of `texts`."""
    assert_clean(texts, secrets=())


def check_converged(
    ws: Workspace, api_runs: Sequence[dict[str, Any]], *, names: Iterable[str] | None = None
) -> dict[str, str]:
    """The invariants; returns name -> run id.

    Exactly one API run per manifest (matched by its distinct sample count),
    no run that no manifest asked for, every manifest in state with exactly
    that run's id and no leftover intent, and no traceback anywhere.
    """
    wanted = dict(ws.samples) if names is None else {n: ws.samples[n] for n in names}
    by_samples: dict[int | None, list[str]] = {}  # None: a run that says no count
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
