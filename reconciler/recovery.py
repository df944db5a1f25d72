"""Finding the run of a submission whose answer never came.

The API has no idempotency key. Before every create POST, apply durably
records an *intent* (the exact body and the time). If the answer never comes
(a timeout, a reset, a 5xx after the body was sent, or dfr was killed), the
intent stays in state without a run id, and before anything else is submitted
for that manifest the run is looked for:

1. list the company's runs (one call for all intents);
2. candidates: same `spec_id` (in any letter case: the API answers ids in lower
   case); same `spec_version` when the intent named one;
   created no earlier than the intent's time minus a clock-skew allowance;
   not already owned by any record of the state (current or previous ids);
3. for each candidate, GET it and ask `reconciler.matching` whether what it
   used (`runtime_params`) answers the intent's body: fields the body left to
   the API match anything, nulls for settings that do not apply (revisions
   off, a budget for a non-thinking model) match, lists compare as sets;
4. exactly one match: adopt it. None: nothing was created, so submitting again
   is safe. More than one: never guess; the user picks with `dfr import`.

A POST may still be in the API's hands when its sender dies. So when nothing
matches an intent younger than a grace period (60 s, twice the client's read
timeout; env DFR_RECOVERY_GRACE), apply waits until it is that old and looks
once more before submitting.

Assumptions: the API lists a created run once it has answered, or once the
grace period has passed since the POST was sent; the clocks of this machine
and the API differ by less than the skew allowance.
Known limit: two manifests with identical bodies whose submissions were both
lost find the same two candidates; that is the ambiguous case above.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from reconciler.errors import NotFoundError
from reconciler.matching import run_mismatches
from reconciler.state.model import Intent, RunRecord, State

DEFAULT_SKEW = timedelta(minutes=5)
# Twice the client's read timeout: a POST the API was still working on when its
# sender died has been finished (or dropped) by then.
DEFAULT_GRACE_SECONDS = 60.0


class RunLookup(Protocol):
    def list_runs(self) -> list[Any]: ...

    def get_run(self, run_id: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Resolution:
    name: str
    run: Any | None  # the adopted run (a client Run), if exactly one matched
    candidates: tuple[Any, ...] = ()  # when more than one matched

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    def ambiguity_message(self) -> str:
        ids = ", ".join(
            f"{r.id} (created {r.created_at or 'at an unknown time'})" for r in self.candidates
        )
        return (
            f"{len(self.candidates)} runs match the submission of {self.name!r} whose answer "
            f"was lost: {ids}. dfr will not guess which one is {self.name!r}: adopt the right "
            f"one with `dfr import {self.name} RUN_ID` (and cancel the other if it is unwanted)"
        )


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 stamp of the API or the state (`Z` for UTC; UTC when it names
    no zone); None when it is missing or unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def age_of(stamp: str | None, now: datetime | None = None) -> float:
    """Seconds since the ISO time `stamp` (infinite when unknown); negative for a
    stamp in the future (this machine's clock went back since)."""
    at = parse_time(stamp) if stamp else None
    if at is None:
        return float("inf")
    return ((now or datetime.now(timezone.utc)) - at).total_seconds()


def intent_age(record: RunRecord, now: datetime | None = None) -> float:
    """Seconds since the record's intent was written (infinite when unknown)."""
    return age_of(record.intent.at if record.intent else None, now)


def grace_pause(age: float, grace: float) -> float:
    """How long to wait before looking again for what an intent `age` seconds old
    made: the rest of the grace period, and never more than one period (an intent
    stamped in the future must not make dfr wait until that time)."""
    return min(grace, grace - age)


def owned_ids(state: State) -> set[str]:
    """Every run id the state records (current or replaced), in lower case."""
    ids: set[str] = set()
    for record in state.runs.values():
        if record.run_id:
            ids.add(record.run_id.lower())
        ids.update(i.lower() for i in record.previous_run_ids)
    return ids


def _same_id(a: object, b: object) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


def candidates_for(
    intent: Intent, runs: Iterable[Any], taken: set[str], skew: timedelta = DEFAULT_SKEW
) -> list[Any]:
    body = intent.body
    since = parse_time(intent.at)
    earliest = since - skew if since else None
    out = []
    for run in runs:
        if not run.id or run.id.lower() in taken or not _same_id(run.spec_id, body.get("spec_id")):
            continue
        version = body.get("spec_version")
        if version is not None and run.spec_version is not None and run.spec_version != version:
            continue
        created = parse_time(run.created_at)
        if earliest is not None and created is not None and created < earliest:
            continue
        out.append(run)
    return out


def resolve(
    client: RunLookup,
    state: State,
    records: Sequence[RunRecord],
    *,
    skew: timedelta = DEFAULT_SKEW,
    runs: list[Any] | None = None,
) -> list[Resolution]:
    """Resolve the intents of `records` (each must have one and no run id)."""
    if not records:
        return []
    listed = client.list_runs() if runs is None else runs
    taken = owned_ids(state)
    results = []
    for record in records:
        assert record.intent is not None
        matches = []
        for run in candidates_for(record.intent, listed, taken, skew):
            try:
                full = client.get_run(run.id)
            except NotFoundError:
                continue
            if not run_mismatches(record.intent.body, full):
                matches.append(full)
        if len(matches) == 1:
            taken.add(matches[0].id.lower())
            results.append(Resolution(record.name, matches[0]))
        else:
            results.append(Resolution(record.name, None, tuple(matches)))
    return results
