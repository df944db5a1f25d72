"""Apply's submission of one change: the write-ahead intent, the POST, its answer.

The record with its intent is durable before the POST (the heart of "never a
duplicate"); a refused POST keeps the run the name had; a lost answer is looked
for at once (`apply_recover.unknown_outcome`); a replaced run is canceled only
once its successor exists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler import hooks, observe
from reconciler.apply_recover import error_record, unknown_outcome
from reconciler.errors import APIError, AuthError, NotFoundError, OutcomeUnknown
from reconciler.matching import used_of
from reconciler.state.model import DRIFT_NOT_FOUND, PENDING, TERMINAL, Intent, RunRecord, utc_now

if TYPE_CHECKING:
    from reconciler.apply import Applier
    from reconciler.plan import Change


def submit_one(app: Applier, change: Change) -> None:
    if app.stop.is_set():
        return
    if change.name in app.blocked:
        block(app, change, app.blocked[change.name])
        return
    filled, why = app.specs.fill(change)  # waits for the specs it uses
    if filled is None:
        block(app, change, why or "its spec is not ready")
        return
    change = filled
    if not gone_confirmed(app, change):
        return
    name = change.name
    record = app.store.state.runs.get(name)
    pending, to_cancel = pending_record(app, change, record)
    body = change.body
    assert body is not None
    app.store.put(pending)  # durable before the POST: the heart of "never a duplicate"
    hooks.hit("before-post")
    app.submitted_at[name] = app.clock()
    try:
        answer = app.client.create_run(body)
    except OutcomeUnknown as exc:
        unknown_outcome(app, pending, exc)
        return
    except APIError as exc:
        refused(app, pending, record, exc)
        return
    hooks.hit("after-post")
    run_id = answer.id
    app.store.put(
        pending.evolve(
            run_id=run_id,
            status=answer.status or PENDING,
            intent=None,
            submitted_at=utc_now(),
            created_at=answer.created_at,
            used=used_of(answer),  # the current API answers the whole run
        )
    )
    hooks.hit("after-record")
    app.report.submitted.append(name)
    app.say(f"{name}: submitted run {run_id}")
    app.events.submitted(name, run_id)
    if to_cancel is not None:
        app.cancel_replaced(name, to_cancel)


def pending_record(
    app: Applier, change: Change, record: RunRecord | None
) -> tuple[RunRecord, str | None]:
    """The record written before the POST, with its intent, and the run it replaces."""
    body = change.body
    assert body is not None
    previous: list[str] = list(record.previous_run_ids) if record else []
    to_cancel = _superseded(change, record)
    if record is not None and record.run_id:
        previous.append(record.run_id)
    # A replaced run is canceled only once its successor exists: if the new
    # POST is refused, the user keeps the run they had. The intent names it,
    # so a successor found after a lost answer finishes the replace too.
    pending = RunRecord.new(
        change.name,
        spec=body,
        labels=change.labels,
        intent=Intent.new(body, replaces=to_cancel),
        attempts=(record.attempts if record else 0) + 1,
        previous_run_ids=previous,
        source=change.source,
        api=app.api,
        # The folder still holds the files the last pull wrote: their lock stays
        # (its run_id says which run they came from) until the next pull.
        outputs=record.outputs if record else None,
    )
    return pending, to_cancel


def refused(app: Applier, pending: RunRecord, record: RunRecord | None, exc: APIError) -> None:
    """Refused or never sent: no run was created. The name keeps the run it had, if
    any, with the error; the others go on (but a refused key stops everything)."""
    name = pending.name
    kept = record if record is not None and record.run_id else pending
    app.store.put(kept.evolve(intent=None, last_error=error_record(exc.message, exc)))
    if isinstance(exc, AuthError):
        raise exc
    app.report.rejected[name] = exc.message
    app.say(f"{name}: not submitted: {exc.message}")
    app.events.rejected(name, exc.message)


def gone_confirmed(app: Applier, change: Change) -> bool:
    """For a run recorded as gone (404), read it again before paying for another.

    False when nothing is to be submitted: the run exists after all (it is
    recorded again), or the API could not say (the name is reported).
    """
    prior = change.prior
    if prior is None or prior.drift != DRIFT_NOT_FOUND or not prior.run_id:
        return True
    try:
        run = app.client.get_run(prior.run_id)
    except NotFoundError:
        return True  # confirmed: it is gone
    except AuthError:
        raise
    except APIError as exc:
        message = (
            f"could not confirm that run {prior.run_id} is gone ({exc.message}); "
            "not submitted again"
        )
        app.report.rejected[change.name] = message
        app.say(f"{change.name}: {message}")
        return False
    record = app.store.state.runs[change.name]
    app.store.put(observe.updated(record, run, app.api) or record.evolve(drift=None))
    app.say(
        f"{change.name}: run {prior.run_id} exists after all (the 404 was not confirmed); "
        "not submitted again"
    )
    return False


def block(app: Applier, change: Change, reason: str) -> None:
    """Record a blocked change as a rejection (last_error); nothing is sent."""
    name = change.name
    record = app.store.state.runs.get(name) or RunRecord.new(
        name, spec=change.body, labels=change.labels
    )
    app.store.put(record.evolve(last_error=error_record(reason)))
    app.report.rejected[name] = reason
    app.say(f"{name}: not submitted: {reason}")
    app.events.rejected(name, reason)


def _superseded(change: Change, record: RunRecord | None) -> str | None:
    """The run a submission for `change` supersedes, to cancel once the new one exists.

    The recorded run when the plan replaces it (or when it was adopted from an
    earlier submission and the manifest changed since), if it is unfinished; or
    the run an earlier replace was sent for, when that replace's outcome was
    unknown and nothing was created (its intent, in the plan's prior record).
    """
    if record is not None and record.run_id:
        replacing = change.cancel_prior or change.resolve_intent
        if replacing and record.status not in TERMINAL and not record.drift:
            return record.run_id
        return None
    earlier = change.prior.intent if change.prior is not None else None
    return earlier.replaces if earlier is not None else None
