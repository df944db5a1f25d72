"""Records and policies for the state tests: every kind of field set, so a change that
drops one is seen (the state contract in `tests/state`, the file and postgres tests)."""

from __future__ import annotations

from reconciler.state.model import PolicyRecord, RunRecord

__all__ = ["policy", "sample"]


def sample(name: str, run_id: str | None = "run-1", **fields: object) -> RunRecord:
    """A record with every kind of field set, so a change that drops one is seen."""
    values: dict[str, object] = {
        "run_id": run_id,
        "status": "SUCCEEDED",
        "labels": {"team": "x"},
        "attempts": 2,
        "previous_run_ids": ["run-0"],
        "used": {"spec_version": 2, "number_of_samples": 10},
        "source": "manifests/a.yaml",
        "api": "http://127.0.0.1:9",
        "total_cost": 1.5,
        "samples_completed": 10,
        **fields,
    }
    return RunRecord.new(
        name,
        spec={"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": 10},
        now="2026-01-01T00:00:00.000Z",
        **values,
    )


def policy(limit: int = 1000) -> PolicyRecord:
    return PolicyRecord.new(
        {"max_samples_per_run": limit, "allowed_models": ["a/m-1", "b/m-2"]},
        by="ana@ci-7 (pid 42)",
        source="dfr.yaml",
    )
