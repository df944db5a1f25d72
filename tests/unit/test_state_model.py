"""The pure state model: records, statuses, State helpers."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from reconciler.state import model
from reconciler.state.model import (
    CANCELED,
    FAILED,
    PENDING,
    PROCESSING,
    SUCCEEDED,
    TERMINAL,
    Intent,
    RunRecord,
    State,
    normalize_status,
)


def test_empty_state_has_fresh_uuid_lineage_and_serial_zero() -> None:
    a, b = State.empty(), State.empty()
    assert a.serial == 0 and a.runs == {} and a.format_version == model.FORMAT_VERSION
    assert uuid.UUID(a.lineage).version == 4
    assert a.lineage != b.lineage
    assert State.empty(lineage="fixed").lineage == "fixed"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("IN_PROGRESS", PROCESSING),
        (PROCESSING, PROCESSING),
        (PENDING, PENDING),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
        (None, None),
    ],
)
def test_normalize_status(given: str | None, stored: str | None) -> None:
    assert normalize_status(given) == stored


def test_record_normalizes_in_progress_whoever_builds_it() -> None:
    rec = RunRecord.new("a", status="IN_PROGRESS", now="t")
    assert rec.status == PROCESSING
    assert dataclasses.replace(rec, status="IN_PROGRESS").status == PROCESSING
    assert rec.evolve(status="IN_PROGRESS").status == PROCESSING


def test_terminal_statuses() -> None:
    assert {SUCCEEDED, FAILED, CANCELED} == TERMINAL
    assert not RunRecord.new("a", status=PENDING).is_terminal
    assert RunRecord.new("a", status=FAILED).is_terminal
    assert model.is_terminal("CANCELED") and not model.is_terminal("IN_PROGRESS")


def test_new_record_defaults_and_copies_inputs() -> None:
    spec = {"spec_id": "x", "number_of_samples": 3}
    rec = RunRecord.new("a", spec=spec, labels={"team": "t"}, now="2026-01-01T00:00:00.000Z")
    spec["number_of_samples"] = 4
    assert rec.spec == {"spec_id": "x", "number_of_samples": 3}
    assert rec.updated_at == "2026-01-01T00:00:00.000Z"
    assert rec.run_id is None and rec.intent is None and rec.attempts == 0
    assert rec.previous_run_ids == [] and rec.last_error is None


def test_evolve_stamps_updated_at() -> None:
    rec = RunRecord.new("a", now="old")
    newer = rec.evolve(run_id="r1")
    assert newer.run_id == "r1" and newer.updated_at != "old"
    assert rec.evolve(run_id="r2", now="then").updated_at == "then"


def test_records_are_frozen() -> None:
    rec = RunRecord.new("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.run_id = "x"  # type: ignore[misc]


def test_intent_new_has_local_uuid() -> None:
    intent = Intent.new({"a": 1}, at="t")
    assert uuid.UUID(intent.id).version == 4 and intent.body == {"a": 1} and intent.at == "t"


def test_with_record_and_without_bump_serial_and_do_not_mutate() -> None:
    s0 = State.empty("L")
    s1 = s0.with_record(RunRecord.new("a", now="t"))
    s2 = s1.without("a")
    assert (s0.serial, s1.serial, s2.serial) == (0, 1, 2)
    assert s0.runs == {} and list(s1.runs) == ["a"] and s2.runs == {}
    assert s1.get("a") is not None and s1.names() == ["a"]


def test_no_field_can_hold_an_api_key() -> None:
    names = {f.name for f in dataclasses.fields(RunRecord)} | {
        f.name for f in dataclasses.fields(State)
    }
    assert not any("key" in n or "token" in n or "secret" in n for n in names)


def test_utc_now_is_iso_z() -> None:
    now = model.utc_now()
    assert now.endswith("Z") and "T" in now


@pytest.mark.parametrize(
    ("completed", "failed", "says"),
    [
        (None, None, "the API gives no reason; see the run in Dataframer"),
        (0, 1, "the API gives no reason (1 sample failed); see the run in Dataframer"),
        (1, 2, "the API gives no reason (1 sample completed, 2 samples failed); see the run"),
        (1_500, 0, "the API gives no reason (1,500 samples completed); see the run"),
    ],
)
def test_a_failed_runs_summary_counts_its_samples_in_words(
    completed: int | None, failed: int | None, says: str
) -> None:
    record = model.RunRecord(
        name="a",
        updated_at="2026-01-01T00:00:00Z",
        status="FAILED",
        samples_completed=completed,
        samples_failed=failed,
    )
    assert record.failure_summary.startswith(says)
