"""Bringing recorded runs up to date with what the API reports.

One list call per round covers every run of the company, so watching
hundreds of runs costs one request per interval, not one per run. A run the
list does not show is asked for by id; a 404 there is drift ("not_found"),
shown by plan and status. When every run asked for answers 404 at once,
the API is suspect, not the runs (a wrong URL, another account's key): nothing
is marked gone and WrongAPIError says so, unless the caller confirms
(`dfr refresh --confirm-gone`). A run read successfully records the API it
belongs to when its record did not know it yet.

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

from reconciler.errors import NotFoundError, WrongAPIError
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


def updated(record: RunRecord, run: Any, api: str | None = None) -> RunRecord | None:
    """The record with the run's reported fields, or None when nothing changed."""
    changes: dict[str, Any] = {}
    if api is not None and record.api is None:
        changes["api"] = api
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
    confirm_gone: bool = False,
) -> list[RunRecord]:
    """One round: refresh `records` (each with a run id); returns the new records."""
    wanted = [r for r in records if r.run_id]
    if not wanted:
        return []
    api = getattr(client, "base_url", None)
    listed = {run.id.lower(): run for run in client.list_runs()}
    out = []
    changed: list[tuple[RunRecord, RunRecord]] = []
    gone: list[RunRecord] = []
    for record in wanted:
        assert record.run_id is not None
        run = listed.get(record.run_id.lower())
        try:
            if run is None or (run.status in TERMINAL and not knows_runtime(record)):
                run = client.get_run(record.run_id)
        except NotFoundError:
            gone.append(record)
            continue
        new_record = updated(record, run, api)
        if new_record is not None:
            changed.append((record, new_record))
            record = new_record
        out.append(record)
    newly_gone = [r for r in gone if r.drift != DRIFT_NOT_FOUND]
    if newly_gone and len(gone) == len(wanted) and not confirm_gone:
        raise WrongAPIError(
            f"all {len(wanted)} recorded run{'s' if len(wanted) != 1 else ''} asked for "
            f"answered 404 Not Found at {api or 'the API'}: the API URL or the key (another "
            "account's?) is more likely wrong than every run gone. Nothing was marked gone "
            "and nothing will be resubmitted. If the runs were really deleted in Dataframer, "
            "confirm with `dfr refresh --confirm-gone`"
        )
    for record in gone:
        if record.drift != DRIFT_NOT_FOUND:
            new = record.evolve(drift=DRIFT_NOT_FOUND)
            changed.append((record, new))
            record = new
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
