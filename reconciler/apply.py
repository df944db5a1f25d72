"""Executing a plan: recover, prune, submit, record, wait.

`Applier.run(plan)` executes exactly the plan it is given (it never plans
again behind the user's back) against a locked state store:

1. intents left by an earlier apply whose POST answer never came are resolved
   first (`reconciler.recovery`): the run is adopted if it exists;
2. orphans are canceled and dropped when the plan prunes them;
3. creates and replaces are submitted by a bounded thread pool. For each: the
   intent (the exact body) is made durable BEFORE the POST, and the run id the
   moment the answer arrives. A POST whose outcome is unknown is looked up,
   never retried blindly;
4. unless told not to, it waits for final statuses with one list call per
   interval for all runs (`reconciler.observe`). The pause between calls is a
   quarter of the age of the youngest run still watched (at least `poll_min`,
   at most `poll_max`): a run that ends at age T is seen final at most ~T/4
   late, and a run of any length costs a number of calls that grows with the
   log of its duration, shared by every run in flight.

Ctrl-C (or SIGTERM) stops new submissions, lets the ones in flight record
their ids, and returns a report marked interrupted: a later apply resumes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from reconciler import hooks, observe, recovery, specapply
from reconciler.errors import (
    APIError,
    AuthError,
    NotFoundError,
    OutcomeUnknown,
    StateConflictError,
)
from reconciler.events import NO_EVENTS, ApplyEvents
from reconciler.matching import used_of
from reconciler.plan import Action, Change, Plan, changed_fields
from reconciler.state.model import (
    CANCELED,
    DRIFT_NOT_FOUND,
    FAILED,
    PENDING,
    SUCCEEDED,
    TERMINAL,
    Intent,
    RunRecord,
    State,
    utc_now,
)


class Client(Protocol):
    def create_run(self, body: dict[str, Any]) -> Any: ...  # the run as answered (`.id`)

    def get_run(self, run_id: str) -> Any: ...

    def list_runs(self) -> list[Any]: ...

    def cancel_run(self, run_id: str) -> None: ...


class Store(Protocol):
    @property
    def state(self) -> State: ...

    def put(self, record: RunRecord) -> None: ...

    def remove(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    parallelism: int = 10
    wait: bool = True
    timeout: float | None = None  # seconds to wait for final statuses
    poll_min: float = 0.5  # shortest pause between status rounds
    poll_max: float = 30.0  # longest pause (--poll-interval)
    poll_share: float = 0.25  # pause = this share of the youngest watched run's age
    skew: timedelta = recovery.DEFAULT_SKEW
    # A lost submission younger than this may still be in the API's hands (a POST
    # the server is slow to finish): look again once it is this old before
    # concluding that nothing was created. See recovery.py.
    recovery_grace: float = recovery.DEFAULT_GRACE_SECONDS
    # dfr.yaml's policy: an evaluated distribution further from the requested one
    # than this many points fails apply (reconciler.evaluations_apply).
    max_distribution_gap: float | None = None


@dataclass(slots=True)
class ApplyReport:
    desired: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)
    canceled: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    # Names whose recorded run, when apply ends, still does not answer the manifest:
    # never "complete" while state and manifests differ.
    diverged: dict[str, str] = field(default_factory=dict)
    # Specs (reconciler.specapply) that are not usable when apply ends, with why:
    # FAILED (the API's error), refused, or an unresolved lost answer.
    spec_problems: dict[str, str] = field(default_factory=dict)
    records: dict[str, RunRecord] = field(default_factory=dict)
    waited: bool = False
    timed_out: bool = False
    interrupted: bool = False
    # The plan's evaluations and the distribution policy (reconciler.evaluations_apply).
    evaluations: Any = None

    def _with(self, predicate: Callable[[RunRecord], bool]) -> list[str]:
        return [n for n in self.desired if (r := self.records.get(n)) and predicate(r)]

    @property
    def succeeded(self) -> list[str]:
        return self._with(lambda r: r.status == SUCCEEDED)

    @property
    def failed(self) -> list[str]:
        return self._with(lambda r: r.status in (FAILED, CANCELED))

    @property
    def running(self) -> list[str]:
        return self._with(lambda r: bool(r.run_id) and r.status not in TERMINAL and not r.drift)

    @property
    def ok(self) -> bool:
        if self.interrupted or self.rejected or self.unresolved or self.diverged:
            return False
        if self.evaluations is not None and not self.evaluations.ok:
            return False
        if self.spec_problems:
            return False
        for name in self.desired:
            record = self.records.get(name)
            if record is None or not record.run_id or record.drift:
                return False
            if self.waited and record.status != SUCCEEDED:
                return False
            if record.status in (FAILED, CANCELED):
                return False
        return True


class Applier:
    def __init__(
        self,
        client: Client,
        store: Store,
        *,
        options: ApplyOptions = ApplyOptions(),
        say: Callable[[str], None] = lambda _line: None,
        clock: Callable[[], float] = time.monotonic,
        events: ApplyEvents | None = None,
        blocked: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.options = options
        # Names the caller's checks refused (the spec preflight), with the reason:
        # recorded like a rejected request, never POSTed.
        self.blocked = dict(blocked or {})
        self.say = say
        self.events = events or NO_EVENTS  # richer than `say`, for progress displays
        self.clock = clock
        # The API the runs belong to, recorded with each run id.
        self.api: str | None = getattr(client, "base_url", None)
        self.stop = threading.Event()
        self.report = ApplyReport()
        self._specs = specapply.SpecWork(client, store, (), options=options, stop=self.stop)
        # When each run of this apply was submitted (the clock's seconds), for
        # the polling pace: runs' ages say how soon they may be final.
        self._submitted_at: dict[str, float] = {}

    # -- the whole run -------------------------------------------------------

    def run(self, plan: Plan) -> ApplyReport:
        state = self.store.state
        if (state.lineage, state.serial) != (plan.lineage, plan.serial):
            raise StateConflictError(
                f"the plan was made from state serial {plan.serial}, but the state is now at "
                f"serial {state.serial}; make a new plan"
            )
        report = self.report
        report.desired = [c.name for c in plan.changes if c.action is not Action.ORPHAN]
        # Specs first (their own workers); a run that uses one waits for it in `_submit`.
        self._specs = specapply.SpecWork(
            self.client,
            self.store,
            specapply.spec_changes(plan),
            options=self.options,
            stop=self.stop,
            say=self.say,
            clock=self.clock,
        )
        try:
            self._recover(plan)
            self._prune(plan)
            self._update_labels(plan)
            self._specs.start()
            # Unresolved names (several candidates for a lost answer) must not get
            # another run until the user picks with `dfr import`; adopted ones are
            # done when the adopted run answers the manifest, and are replaced (as
            # the plan said) when the manifest changed since that submission.
            settled = set(report.unresolved) | self._answered(plan, report.adopted)
            self._submit_all([c for c in plan.to_submit if c.name not in settled])
            report.spec_problems.update(specapply.summary(self._specs.finish()))
            if self.options.wait and not self.stop.is_set():
                report.waited = True
                self._wait(report.desired)
            if self.stop.is_set():  # interrupt() was called: a signal, say
                report.interrupted = True
            else:
                self._check_converged(plan)
                self._evaluate(plan)
        except KeyboardInterrupt:
            self.stop.set()
            report.interrupted = True
        finally:
            self._specs.close()
            current = self.store.state.runs
            report.records = {n: current[n] for n in report.desired if n in current}
        return report

    def _answered(self, plan: Plan, adopted: list[str]) -> set[str]:
        """The adopted names whose run answers the plan's body (nothing more to submit)."""
        runs = self.store.state.runs
        found = set(adopted)
        done = set()
        for change in plan.changes:
            if change.name not in found or change.body is None:
                continue
            fields = changed_fields(change.body, runs[change.name])
            if not fields:
                done.add(change.name)
                continue
            listed = ", ".join(f.field for f in fields)
            self.say(
                f"{change.name}: the adopted run was sent before the manifest changed "
                f"({listed}); replacing it as planned"
            )
        return done

    def _check_converged(self, plan: Plan) -> None:
        """Record every name whose run still does not answer its manifest."""
        runs = self.store.state.runs
        report = self.report
        for change in plan.changes:
            if change.action is Action.ORPHAN or change.body is None:
                continue
            name = change.name
            record = runs.get(name)
            if record is None or not record.run_id:
                continue
            if name in report.rejected or name in report.unresolved:
                continue  # reported already
            fields = changed_fields(change.body, record)
            if fields:
                listed = ", ".join(f.field for f in fields)
                message = (
                    f"its recorded run {record.run_id} does not match the manifest ({listed}); "
                    "run `dfr plan` to see the difference"
                )
                report.diverged[name] = message
                self.say(f"{name}: {message}")

    def _evaluate(self, plan: Plan) -> None:
        """Start, read and check the evaluations (reconciler.evaluations_apply)."""
        from reconciler.evaluations_apply import run_evaluations

        self.report.evaluations = run_evaluations(self, plan)

    def interrupt(self) -> None:
        """Ask a running apply to stop after the requests in flight (thread-safe)."""
        self.stop.set()

    # -- 1. recovery ---------------------------------------------------------

    def _recover(self, plan: Plan) -> None:
        state = self.store.state
        pending = [
            r
            for c in plan.changes
            if (r := state.runs.get(c.name)) is not None and r.intent and not r.run_id
        ]
        if not pending:
            return
        self.say(f"Looking for {len(pending)} run(s) whose submission was not confirmed...")
        resolutions = recovery.resolve(self.client, state, pending, skew=self.options.skew)
        young = {
            r.name: age
            for r in resolutions
            if r.run is None
            and not r.ambiguous
            and (age := recovery.intent_age(state.runs[r.name])) < self.options.recovery_grace
        }
        for resolution in resolutions:
            if resolution.name not in young:
                self._settle(resolution, state.runs[resolution.name])
        if not young:
            return
        pause = self.options.recovery_grace - min(young.values())
        self.say(
            f"{len(young)} unconfirmed submission(s) are only seconds old and the API may "
            f"still be creating them; looking again in {pause:.0f}s before submitting..."
        )
        if self.stop.wait(pause):
            raise KeyboardInterrupt
        state = self.store.state
        again = [state.runs[name] for name in sorted(young)]
        for resolution in recovery.resolve(self.client, state, again, skew=self.options.skew):
            self._settle(resolution, state.runs[resolution.name])

    def _settle(self, resolution: recovery.Resolution, record: RunRecord) -> bool:
        """Record what a resolution found; True when the name needs no new POST."""
        name = resolution.name
        if resolution.run is not None:
            run = resolution.run
            self.store.put(
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
            self.report.adopted.append(name)
            self.say(f"{name}: found run {run.id} from the unconfirmed submission; adopted it")
            self.events.adopted(name, run.id)
            replaced = record.intent.replaces if record.intent else None
            if replaced:
                # The successor exists now: finish the replace it was sent for.
                self._cancel_replaced(name, replaced)
            return True
        if resolution.ambiguous:
            message = resolution.ambiguity_message()
            self.store.put(record.evolve(last_error=_error(message)))
            self.report.unresolved[name] = message
            self.say(f"{name}: {message}")
            self.events.unresolved(name, message)
            return True
        # Nothing was created: forget the intent; submitting again is safe.
        self.store.put(record.evolve(intent=None))
        return False

    # -- 2. prune --------------------------------------------------------------

    def _prune(self, plan: Plan) -> None:
        if plan.options.prune:
            for name in specapply.orphan_specs(self.store.state, plan):
                self.say(f"spec {name}: {specapply.ORPHAN_NOTE}")
        for change in plan.by_action(Action.ORPHAN):
            if not change.prune or self.stop.is_set():
                continue
            record = self.store.state.runs.get(change.name)
            if record is None:
                continue
            if record.intent and not record.run_id:
                self.report.unresolved[change.name] = (
                    "its last submission is unconfirmed; not pruned until it is resolved"
                )
                continue
            if record.run_id and record.status not in TERMINAL and not record.drift:
                self._cancel(record.run_id, change.name)
            self.store.remove(change.name)
            self.report.pruned.append(change.name)
            self.say(f"{change.name}: removed from state")

    def _cancel(self, run_id: str, name: str) -> None:
        try:
            self.client.cancel_run(run_id)
        except (NotFoundError, AuthError):
            raise
        except APIError as exc:
            if exc.status_code is None:
                raise
            # 400/409: it finished meanwhile; nothing to cancel.
            self.say(f"{name}: run {run_id} could not be canceled ({exc.message})")
            return
        self.report.canceled.append(name)
        self.say(f"{name}: canceled run {run_id}")

    # -- 3. submit -------------------------------------------------------------

    def _update_labels(self, plan: Plan) -> None:
        """Labels, and the manifest file a name comes from, change without a new run."""
        for change in plan.by_action(Action.NOOP):
            record = self.store.state.runs.get(change.name)
            if record is None:
                continue
            source = change.source or record.source
            if record.labels != change.labels or record.source != source:
                self.store.put(record.evolve(labels=dict(change.labels), source=source))

    def _submit_all(self, changes: list[Change]) -> None:
        if not changes:
            return
        workers = max(1, min(self.options.parallelism, len(changes)))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dfr-submit")
        futures: list[Future[None]] = [pool.submit(self._submit, c) for c in changes]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                if future.exception() is not None:
                    self.stop.set()
                    break
        except KeyboardInterrupt:
            self.stop.set()
            self.say("Interrupted: finishing the requests in flight, then stopping...")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]

    def _submit(self, change: Change) -> None:
        if self.stop.is_set():
            return
        if change.name in self.blocked:
            self._block(change, self.blocked[change.name])
            return
        filled, why = self._specs.fill(change)  # waits for the specs it uses
        if filled is None:
            self._block(change, why or "its spec is not ready")
            return
        change = filled
        if not self._gone_confirmed(change):
            return
        name, body = change.name, change.body
        assert body is not None
        record = self.store.state.runs.get(name)
        previous: list[str] = list(record.previous_run_ids) if record else []
        to_cancel = _superseded(change, record)
        if record is not None and record.run_id:
            previous.append(record.run_id)
        # A replaced run is canceled only once its successor exists: if the new
        # POST is refused, the user keeps the run they had. The intent names it,
        # so a successor found after a lost answer finishes the replace too.
        pending = RunRecord.new(
            name,
            spec=body,
            labels=change.labels,
            intent=Intent.new(body, replaces=to_cancel),
            attempts=(record.attempts if record else 0) + 1,
            previous_run_ids=previous,
            source=change.source,
            api=self.api,
            # The folder still holds the files the last pull wrote: their lock stays
            # (its run_id says which run they came from) until the next pull.
            outputs=record.outputs if record else None,
        )
        self.store.put(pending)  # durable before the POST: the heart of "never a duplicate"
        hooks.hit("before-post")
        self._submitted_at[name] = self.clock()
        try:
            answer = self.client.create_run(body)
        except OutcomeUnknown as exc:
            self._unknown_outcome(pending, exc)
            return
        except APIError as exc:
            # Refused or never sent: no run was created. The name keeps the run it
            # had, if any, with the error; the others go on (but a refused key
            # stops everything).
            kept = record if record is not None and record.run_id else pending
            self.store.put(kept.evolve(intent=None, last_error=_error(exc.message, exc)))
            if isinstance(exc, AuthError):
                raise
            self.report.rejected[name] = exc.message
            self.say(f"{name}: not submitted: {exc.message}")
            self.events.rejected(name, exc.message)
            return
        hooks.hit("after-post")
        run_id = answer.id
        self.store.put(
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
        self.report.submitted.append(name)
        self.say(f"{name}: submitted run {run_id}")
        self.events.submitted(name, run_id)
        if to_cancel is not None:
            self._cancel_replaced(name, to_cancel)

    def _gone_confirmed(self, change: Change) -> bool:
        """For a run recorded as gone (404), read it again before paying for another.

        False when nothing is to be submitted: the run exists after all (it is
        recorded again), or the API could not say (the name is reported).
        """
        prior = change.prior
        if prior is None or prior.drift != DRIFT_NOT_FOUND or not prior.run_id:
            return True
        try:
            run = self.client.get_run(prior.run_id)
        except NotFoundError:
            return True  # confirmed: it is gone
        except AuthError:
            raise
        except APIError as exc:
            message = (
                f"could not confirm that run {prior.run_id} is gone ({exc.message}); "
                "not submitted again"
            )
            self.report.rejected[change.name] = message
            self.say(f"{change.name}: {message}")
            return False
        record = self.store.state.runs[change.name]
        self.store.put(observe.updated(record, run, self.api) or record.evolve(drift=None))
        self.say(
            f"{change.name}: run {prior.run_id} exists after all (the 404 was not confirmed); "
            "not submitted again"
        )
        return False

    def _cancel_replaced(self, name: str, run_id: str) -> None:
        """Cancel the run a successful replace superseded; a failure only warns."""
        try:
            self._cancel(run_id, name)
        except NotFoundError:
            pass  # already gone is as good as canceled
        except AuthError:
            raise
        except APIError as exc:
            self.say(
                f"warning: {name}: the replaced run {run_id} could not be canceled "
                f"({exc.message}); it may still be running: cancel it in Dataframer"
            )

    def _block(self, change: Change, reason: str) -> None:
        """Record a blocked change as a rejection (last_error); nothing is sent."""
        name = change.name
        record = self.store.state.runs.get(name) or RunRecord.new(
            name, spec=change.body, labels=change.labels
        )
        self.store.put(record.evolve(last_error=_error(reason)))
        self.report.rejected[name] = reason
        self.say(f"{name}: not submitted: {reason}")
        self.events.rejected(name, reason)

    def _unknown_outcome(self, pending: RunRecord, exc: OutcomeUnknown) -> None:
        name = pending.name
        self.say(f"{name}: {exc.message}; looking for the run before anything else")
        try:
            (resolution,) = recovery.resolve(
                self.client, self.store.state, [pending], skew=self.options.skew
            )
        except APIError as lookup_error:
            reason = f"the lookup failed too ({lookup_error.message})"
        else:
            if resolution.run is not None or resolution.ambiguous:
                self._settle(resolution, pending)
                return
            reason = "no matching run is listed yet"
        # Keep the intent: the next apply resolves it again before submitting.
        message = (
            f"the outcome of its submission is unknown and {reason}; it was not submitted "
            "again. Run `dfr apply` again later: it looks for the run before submitting"
        )
        self.store.put(pending.evolve(last_error=_error(message, exc)))
        self.report.unresolved[name] = message
        self.events.unresolved(name, message)

    # -- 4. wait ---------------------------------------------------------------

    def _wait(self, names: list[str]) -> None:
        started = self.clock()
        deadline = None if self.options.timeout is None else started + self.options.timeout
        while True:
            runs = self.store.state.runs
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
            now = self.clock()
            if deadline is not None and now >= deadline:
                self.report.timed_out = True
                return
            self.events.waiting(watching)
            interval = self._poll_pause(watching, now, started)
            pause = interval if deadline is None else min(interval, deadline - now)
            if self.stop.wait(pause):
                raise KeyboardInterrupt
            hooks.hit("wait-round")
            try:
                observe.observe(self.client, watching, self.store, on_change=self._changed)
            except AuthError:
                raise
            except APIError as exc:
                # The runs go on without us; keep watching until the deadline.
                self.say(f"warning: could not read run statuses ({exc.message}); retrying")
            self.events.polled(watching)

    def _poll_pause(self, watching: list[RunRecord], now: float, started: float) -> float:
        """A share of the youngest watched run's age, within [poll_min, poll_max].

        The youngest, because right after a long submission the oldest runs are
        long done, unseen: the round that matters is the one that can see the
        last runs end. Runs not submitted by this apply count from the start of
        the wait. --poll-interval (poll_max) is the longest pause, the first one
        included.
        """
        youngest = max(self._submitted_at.get(r.name, started) for r in watching)
        pause = max(self.options.poll_min, self.options.poll_share * (now - youngest))
        return min(pause, self.options.poll_max)

    def _changed(self, before: RunRecord, after: RunRecord) -> None:
        self.events.status_changed(before, after)
        if after.drift and not before.drift:
            self.say(f"{after.name}: run {after.run_id} no longer exists in the API (404)")
        elif after.status != before.status:
            detail = ""
            if after.status == SUCCEEDED:
                detail = _samples_and_cost(after)
            elif after.status == FAILED:
                detail = f": {after.failure_summary}"
            self.say(f"{after.name}: {after.status}{detail}")


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


def _samples_and_cost(record: RunRecord) -> str:
    parts = []
    if record.samples_completed is not None:
        parts.append(f"{record.samples_completed:,} samples")
    if record.total_cost is not None:
        parts.append(f"${record.total_cost:,.2f}")
    return f" ({', '.join(parts)})" if parts else ""


def _error(message: str, exc: APIError | None = None) -> dict[str, Any]:
    return {
        "message": message,
        "status_code": getattr(exc, "status_code", None),
        "at": utc_now(),
    }
