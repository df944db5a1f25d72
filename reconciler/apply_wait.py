"""Apply's wait: poll the unfinished runs until they are final, the timeout passes
or apply is interrupted, pacing the rounds by the runs' ages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler import hooks, observe
from reconciler.errors import APIError, AuthError
from reconciler.state.model import FAILED, SUCCEEDED, TERMINAL, RunRecord

if TYPE_CHECKING:
    from reconciler.apply import Applier


def wait(app: Applier, names: list[str]) -> None:
    started = app.clock()
    deadline = None if app.options.timeout is None else started + app.options.timeout
    while True:
        runs = app.store.state.runs
        watching = [
            r
            for n in names
            if (r := runs.get(n)) is not None
            and r.run_id
            and r.status not in TERMINAL
            and not r.drift
        ]
        if not watching:
            return
        now = app.clock()
        if deadline is not None and now >= deadline:
            app.report.timed_out = True
            return
        app.events.waiting(watching)
        interval = app._poll_pause(watching, now, started)
        pause = interval if deadline is None else min(interval, deadline - now)
        if app.stop.wait(pause):
            raise KeyboardInterrupt
        hooks.hit("wait-round")
        try:
            observe.observe(
                app.client,
                watching,
                app.store,
                on_change=lambda before, after: changed(app, before, after),
            )
        except AuthError:
            raise
        except APIError as exc:
            # The runs go on without us; keep watching until the deadline.
            app.say(f"warning: could not read run statuses ({exc.message}); retrying")
        app.events.polled(watching)


def changed(app: Applier, before: RunRecord, after: RunRecord) -> None:
    app.events.status_changed(before, after)
    if after.drift and not before.drift:
        app.say(f"{after.name}: run {after.run_id} no longer exists in the API (404)")
    elif after.status != before.status:
        detail = ""
        if after.status == SUCCEEDED:
            detail = _samples_and_cost(after)
        elif after.status == FAILED:
            detail = f": {after.failure_summary}"
        app.say(f"{after.name}: {after.status}{detail}")


def _samples_and_cost(record: RunRecord) -> str:
    parts = []
    if record.samples_completed is not None:
        parts.append(f"{record.samples_completed:,} samples")
    if record.total_cost is not None:
        parts.append(f"${record.total_cost:,.2f}")
    return f" ({', '.join(parts)})" if parts else ""
