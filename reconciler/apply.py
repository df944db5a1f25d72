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

from reconciler import recovery, specapply
from reconciler.apply_recover import recover
from reconciler.apply_submit import submit_one
from reconciler.apply_wait import wait as wait_for
from reconciler.errors import (
    APIError,
    AuthError,
    NotFoundError,
    StateConflictError,
)
from reconciler.events import NO_EVENTS, ApplyEvents
from reconciler.plan import Action, Change, Plan, changed_fields
from reconciler.state.model import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    TERMINAL,
    RunRecord,
    State,
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
        self.specs = specapply.SpecWork(client, store, (), options=options, stop=self.stop)
        # When each run of this apply was submitted (the clock's seconds), for
        # the polling pace: runs' ages say how soon they may be final.
        self.submitted_at: dict[str, float] = {}

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
        self.specs = specapply.SpecWork(
            self.client,
            self.store,
            specapply.spec_changes(plan),
            options=self.options,
            stop=self.stop,
            say=self.say,
            clock=self.clock,
        )
        try:
            recover(self, plan)
            self._prune(plan)
            self._update_labels(plan)
            self.specs.start()
            # Unresolved names (several candidates for a lost answer) must not get
            # another run until the user picks with `dfr import`; adopted ones are
            # done when the adopted run answers the manifest, and are replaced (as
            # the plan said) when the manifest changed since that submission.
            settled = set(report.unresolved) | self._answered(plan, report.adopted)
            self._submit_all([c for c in plan.to_submit if c.name not in settled])
            report.spec_problems.update(specapply.summary(self.specs.finish()))
            if self.options.wait and not self.stop.is_set():
                report.waited = True
                wait_for(self, report.desired)
            if self.stop.is_set():  # interrupt() was called: a signal, say
                report.interrupted = True
            else:
                self._check_converged(plan)
                self._evaluate(plan)
        except KeyboardInterrupt:
            self.stop.set()
            report.interrupted = True
        finally:
            self.specs.close()
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

    # -- 2. prune --------------------------------------------------------------

    def _prune(self, plan: Plan) -> None:
        if plan.options.prune:
            for name in plan.orphan_specs:
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
        futures: list[Future[None]] = [pool.submit(submit_one, self, c) for c in changes]
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

    def cancel_replaced(self, name: str, run_id: str) -> None:
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

    # -- 4. wait (reconciler.apply_wait) ---------------------------------------

    def _poll_pause(self, watching: list[RunRecord], now: float, started: float) -> float:
        """A share of the youngest watched run's age, within [poll_min, poll_max].

        The youngest, because right after a long submission the oldest runs are
        long done, unseen: the round that matters is the one that can see the
        last runs end. Runs not submitted by this apply count from the start of
        the wait. --poll-interval (poll_max) is the longest pause, the first one
        included.
        """
        youngest = max(self.submitted_at.get(r.name, started) for r in watching)
        pause = max(self.options.poll_min, self.options.poll_share * (now - youngest))
        return min(pause, self.options.poll_max)
