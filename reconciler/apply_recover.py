"""Apply's recovery: before anything is submitted, each unconfirmed submission of the
plan's names is looked for (`reconciler.recovery`) and settled: its run adopted, an
ambiguity reported, or the intent dropped when nothing was created; and the same
for a create whose answer was lost during this apply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler import recovery
from reconciler.errors import APIError, OutcomeUnknown
from reconciler.matching import used_of
from reconciler.state.model import PENDING, RunRecord, utc_now

if TYPE_CHECKING:
    from reconciler.apply import Applier
    from reconciler.plan import Plan


def recover(app: Applier, plan: Plan) -> None:
    state = app.store.state
    pending = [
        r
        for c in plan.changes
        if (r := state.runs.get(c.name)) is not None and r.intent and not r.run_id
    ]
    if not pending:
        return
    app.say(f"Looking for {len(pending)} run(s) whose submission was not confirmed...")
    resolutions = recovery.resolve(app.client, state, pending, skew=app.options.skew)
    young = {
        r.name: age
        for r in resolutions
        if r.run is None
        and not r.ambiguous
        and (age := recovery.intent_age(state.runs[r.name])) < app.options.recovery_grace
    }
    for resolution in resolutions:
        if resolution.name not in young:
            settle(app, resolution, state.runs[resolution.name])
    if not young:
        return
    pause = recovery.grace_pause(min(young.values()), app.options.recovery_grace)
    app.say(
        f"{len(young)} unconfirmed submission(s) are only seconds old and the API may "
        f"still be creating them; looking again in {pause:.0f}s before submitting..."
    )
    if app.stop.wait(pause):
        raise KeyboardInterrupt
    state = app.store.state
    again = [state.runs[name] for name in sorted(young)]
    for resolution in recovery.resolve(app.client, state, again, skew=app.options.skew):
        settle(app, resolution, state.runs[resolution.name])


def settle(app: Applier, resolution: recovery.Resolution, record: RunRecord) -> bool:
    """Record what a resolution found; True when the name needs no new POST."""
    name = resolution.name
    if resolution.run is not None:
        run = resolution.run
        app.store.put(
            record.evolve(
                run_id=run.id,
                status=run.status or PENDING,
                intent=None,
                submitted_at=utc_now(),
                created_at=run.created_at,
                last_error=None,
                used=used_of(run),
            )
        )
        app.report.adopted.append(name)
        app.say(f"{name}: found run {run.id} from the unconfirmed submission; adopted it")
        app.events.adopted(name, run.id)
        replaced = record.intent.replaces if record.intent else None
        if replaced:
            # The successor exists now: finish the replace it was sent for.
            app.cancel_replaced(name, replaced)
        return True
    if resolution.ambiguous:
        message = resolution.ambiguity_message()
        app.store.put(record.evolve(last_error=error_record(message)))
        app.report.unresolved[name] = message
        app.say(f"{name}: {message}")
        app.events.unresolved(name, message)
        return True
    # Nothing was created: forget the intent; submitting again is safe.
    app.store.put(record.evolve(intent=None))
    return False


def unknown_outcome(app: Applier, pending: RunRecord, exc: OutcomeUnknown) -> None:
    name = pending.name
    app.say(f"{name}: {exc.message}; looking for the run before anything else")
    try:
        (resolution,) = recovery.resolve(
            app.client, app.store.state, [pending], skew=app.options.skew
        )
    except APIError as lookup_error:
        reason = f"the lookup failed too ({lookup_error.message})"
    else:
        if resolution.run is not None or resolution.ambiguous:
            settle(app, resolution, pending)
            return
        reason = "no matching run is listed yet"
    # Keep the intent: the next apply resolves it again before submitting.
    message = (
        f"the outcome of its submission is unknown and {reason}; it was not submitted "
        "again. Run `dfr apply` again later: it looks for the run before submitting"
    )
    app.store.put(pending.evolve(last_error=error_record(message, exc)))
    app.report.unresolved[name] = message
    app.events.unresolved(name, message)


def error_record(message: str, exc: APIError | None = None) -> dict[str, Any]:
    """A record's `last_error`: the message, the HTTP status if any, when."""
    return {
        "message": message,
        "status_code": getattr(exc, "status_code", None),
        "at": utc_now(),
    }
