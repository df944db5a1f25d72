"""What state records of a spec, from what the API answers; and `refresh_specs`.

A spec's record (`state.model.SpecRecord`) keeps its id, status, error and
every version dfr made or saw: its number (version N is the Nth entry of the
API's `versions`, oldest first), the SHA-256 of its content normalised by
`reconciler.speccontent` (None when the API keeps the YAML in the customer's
own cloud, or it does not parse), when it was made, and whether dfr made it.
The planner compares those digests with a manifest's content; the applier
compares them when it resolves an update whose answer was lost.

`refresh_specs` reads each recorded spec with its versions and records what
changed: a newer version is someone's edit in the web app (drift), recorded
with `by_dfr` false for the planner to update back or just record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler.errors import NotFoundError
from reconciler.speccontent import ContentError, text_sha256
from reconciler.state.model import DRIFT_NOT_FOUND, SpecRecord, SpecVersionRecord


class SpecReader(Protocol):
    def get_spec_versions(self, spec_id: str) -> Any: ...  # an api.specs.SpecDetail


class SpecSink(Protocol):
    @property
    def state(self) -> Any: ...

    def put_spec(self, record: SpecRecord) -> None: ...


def content_digest(text: str | None) -> str | None:
    """The digest of a version's YAML as normalised content; None when there is none
    to compare (kept in the customer's cloud) or it is not a spec's content."""
    if text is None:
        return None
    try:
        return text_sha256(text)
    except ContentError:
        return None


def version_records(
    detail: Any, previous: Iterable[SpecVersionRecord] = (), made: Iterable[int] = ()
) -> tuple[SpecVersionRecord, ...]:
    """Every version `detail` lists, as records: `by_dfr` kept from `previous` and set
    for the numbers in `made`. Without a listed `versions`, `previous` as it was."""
    listed = detail.versions
    before = {v.number: v for v in previous}
    if listed is None:
        return tuple(before.values())
    ours = set(made)
    out = []
    for version in listed:
        old = before.get(version.number)
        by_dfr = version.number in ours or (old is not None and old.by_dfr)
        out.append(
            SpecVersionRecord(
                number=version.number,
                sha256=content_digest(version.content_yaml),
                at=version.created_at or (old.at if old else None),
                by_dfr=by_dfr,
            )
        )
    return tuple(out)


def with_detail(record: SpecRecord, detail: Any, made: Iterable[int] = ()) -> SpecRecord:
    """`record` brought up to what `detail` (a SpecDetail) says, intent unchanged."""
    return record.evolve(
        spec_id=detail.id or record.spec_id,
        status=detail.status or record.status,
        error=detail.error,
        versions=version_records(detail, record.versions, made),
        drift=None,
    )


def adopted(name: str, detail: Any, *, source: str | None, api: str | None) -> SpecRecord:
    """A new record for a spec dfr did not make (`dfr import spec`)."""
    fresh = SpecRecord.new(name, source=source, api=api)
    return with_detail(fresh, detail)


@dataclass(frozen=True, slots=True)
class SpecChanged:
    """What a refresh found for one spec."""

    name: str
    before: SpecRecord
    after: SpecRecord

    @property
    def new_versions(self) -> list[int]:
        known = {v.number for v in self.before.versions}
        return [v.number for v in self.after.versions if v.number not in known]

    def describe(self) -> str:
        parts = []
        if self.after.status != self.before.status:
            parts.append(
                f"{self.after.status}" + (f": {self.after.error}" if self.after.error else "")
            )
        new = self.new_versions
        if new:
            numbers = ", ".join(str(n) for n in new)
            by = (
                ""
                if all(v.by_dfr for v in self.after.versions if v.number in new)
                else (" (edited outside dfr, in the web app?)")
            )
            parts.append(f"new version{'s' if len(new) > 1 else ''} {numbers}{by}")
        if self.after.drift and not self.before.drift:
            parts.append("no longer exists in the API (404)")
        return f"spec {self.name}: " + ("; ".join(parts) or "updated")


def refresh_specs(
    client: SpecReader,
    store: SpecSink,
    names: Iterable[str] | None = None,
    on_change: Callable[[SpecChanged], None] | None = None,
) -> list[SpecChanged]:
    """Read every recorded spec (or those of `names`) with its versions; record changes.

    A spec the API no longer has (404) is marked with drift "not_found"; it is
    never deleted from state, nor in the API.
    """
    specs = store.state.specs
    wanted = sorted(specs) if names is None else [n for n in names if n in specs]
    changed = []
    for name in wanted:
        record = specs[name]
        if not record.spec_id:
            continue  # an unconfirmed create: apply resolves it
        try:
            detail = client.get_spec_versions(record.spec_id)
        except NotFoundError:
            after = record.evolve(drift=DRIFT_NOT_FOUND)
        else:
            after = with_detail(record, detail)
        if _same(record, after):
            continue
        store.put_spec(after)
        change = SpecChanged(name, record, after)
        changed.append(change)
        if on_change is not None:
            on_change(change)
    return changed


def _same(a: SpecRecord, b: SpecRecord) -> bool:
    keys = ("spec_id", "status", "error", "versions", "drift")
    return all(getattr(a, k) == getattr(b, k) for k in keys)
