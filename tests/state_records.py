"""Records and policies for the state tests: every kind of field set, so a change that
drops one is seen (the state contract in `tests/state`, the file and postgres tests)."""

from __future__ import annotations

from typing import Any

from reconciler.state.model import (
    OutputFile,
    OutputsRecord,
    PolicyRecord,
    RunRecord,
    SpecIntent,
    SpecRecord,
    SpecVersionRecord,
)

__all__ = ["policy", "sample", "spec_intent", "spec_sample"]


def sample(name: str, run_id: str | None = "run-1", **fields: object) -> RunRecord:
    """A record with every kind of field set, so a change that drops one is seen."""
    values: dict[str, Any] = {  # RunRecord.new's keywords (its labels typed str -> str)
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
        "outputs": OutputsRecord(
            "data/x",
            (OutputFile("part-1.jsonl", 12, "c" * 64, "file-1"),),
            "2026-01-01T00:01:00.000Z",
            run_id,
            ("*.jsonl",),
        ),
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


def spec_sample(name: str, spec_id: str | None = "spec-1", **fields: object) -> SpecRecord:
    """A spec record with every kind of field set (two versions, one made outside dfr)."""
    values: dict[str, object] = {
        "spec_id": spec_id,
        "status": "SUCCEEDED",
        "versions": (
            SpecVersionRecord(1, "a" * 64, "2026-01-01T00:00:00Z", True),
            SpecVersionRecord(2, None, "2026-01-02T00:00:00Z", False),
        ),
        "body": {"name": name, "generation_objectives": "support tickets \u2603"},
        "source": "specs/tickets.yaml",
        "api": "http://127.0.0.1:9",
        **fields,
    }
    return SpecRecord.new(name, now="2026-01-01T00:00:00.000Z", **values)


def spec_intent(kind: str = "update") -> SpecIntent:
    sha = "b" * 64 if kind == "update" else None
    body = {"content_yaml": "spec:\n  description: x\n"} if kind == "update" else {"name": "s"}
    return SpecIntent.new(kind, body, at="2026-01-03T00:00:00.000Z", content_sha256=sha)
