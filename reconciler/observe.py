"""Bringing recorded runs up to date with what the API reports.

One list call per round covers every run of the company, so watching
hundreds of runs costs one request per interval, not one per run. A run the
list does not show is asked for by id; a 404 there is drift ("not_found"),
shown by plan and status.

What a run used is recorded too (`RunRecord.used`): `spec_version` from every
answer, `runtime_params` from the whole run, which the list leaves out. When
the record does not know them yet (the old page's create answer had only an
id), the run is asked for by id once, in the round that sees it end.

The records a round changed are stored together (`Store.put_many`: one fsync
for the round with the file backend), not one durable write each: a round
that sees a thousand runs finish must not pay a thousand fsyncs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from reconciler.errors import NotFoundError
from reconciler.matching import used_of
from reconciler.state.model import DRIFT_NOT_FOUND, TERMINAL, RunRecord, utc_now

TRACKED = (
    "status",
    "created_at",
    "completed_at",
    "samples_completed",
    "samples_failed",
    "total_cost",
)


class RunSource(Protocol):
    def list_runs(self) -> list[Any]: ...

    def get_run(self, run_id: str) -> Any: ...


class RecordSink(Protocol):
    def put(self, record: RunRecord) -> None: ...


def knows_runtime(record: RunRecord) -> bool:
    """Has the record what the run used beyond its spec version (`runtime_params`)?"""
    return any(key != "spec_version" for key in record.used)


def updated(record: RunRecord, run: Any) -> RunRecord | None:
    """The record with the run's reported fields, or None when nothing changed."""
    changes: dict[str, Any] = {}
    for key in TRACKED:
        value = getattr(run, key, None)
        if value is not None and value != getattr(record, key):
            changes[key] = value
    used = {**record.used, **used_of(run)}
    if used != record.used:
        changes["used"] = used
    if record.drift is not None:
        changes["drift"] = None
    if not changes:
        return None
    return record.evolve(now=utc_now(), **changes)


def observe(
    client: RunSource,
    records: Iterable[RunRecord],
    store: RecordSink,
    *,
    on_change: Callable[[RunRecord, RunRecord], None] | None = None,
) -> list[RunRecord]:
    """One round: refresh `records` (each with a run id); returns the new records."""
    wanted = [r for r in records if r.run_id]
    if not wanted:
        return []
    listed = {run.id.lower(): run for run in client.list_runs()}
    out = []
    changed: list[tuple[RunRecord, RunRecord]] = []
    for record in wanted:
        assert record.run_id is not None
        run = listed.get(record.run_id.lower())
        try:
            if run is None or (run.status in TERMINAL and not knows_runtime(record)):
                run = client.get_run(record.run_id)
        except NotFoundError:
            if record.drift != DRIFT_NOT_FOUND:
                new = record.evolve(drift=DRIFT_NOT_FOUND)
                changed.append((record, new))
                record = new
            out.append(record)
            continue
        new_record = updated(record, run)
        if new_record is not None:
            changed.append((record, new_record))
            record = new_record
        out.append(record)
    if changed:
        _store_all(store, [new for _, new in changed])
        if on_change:
            for before, after in changed:
                on_change(before, after)
    return out


def _store_all(store: RecordSink, records: list[RunRecord]) -> None:
    """Durable together when the store can (put_many), else one by one."""
    put_many: Callable[[list[RunRecord]], None] | None = getattr(store, "put_many", None)
    if put_many is not None:
        put_many(records)
    else:
        for record in records:
            store.put(record)
