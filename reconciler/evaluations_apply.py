"""Evaluations, the applying part: start, find, watch and check them at the end of apply.

`EvaluationApplier.run(plan, names, waited)` runs after the runs of the plan
were submitted and waited for (`reconciler.apply` calls it):

1. each `evaluate` change of `Plan.evaluations` (`reconciler.evaluate`) whose
   run has SUCCEEDED is started. An evaluation costs money and the API has no
   idempotency key, so it is a run create in small: the intent (the exact
   body) is made durable in the run's record *before* the POST; the id the
   moment the answer arrives. A lost answer (`OutcomeUnknown`), or an intent
   left by a killed apply, is looked up first: the run's evaluations created
   no earlier than the intent (less the clock-skew allowance) are listed, and
   the earliest is adopted. Only when none is listed (and the intent is older
   than the recovery grace, as for runs) is the POST sent again. A refused POST
   made nothing: its reason is recorded, and the next apply may ask again;
2. the evaluations of the runs it tracks are read: those of the plan's
   `evaluate:` manifests, and, when the policy sets `max_distribution_gap`,
   the newest evaluation the API lists for every SUCCEEDED run of the plan;
3. when apply waits, it waits for them to finish too (same timeout and pace);
4. `max_distribution_gap`: each run whose evaluated distribution is further
   from the requested one than the limit is a problem naming the run and the
   property (`reconciler.evaluate.gap_problems`): apply exits 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from reconciler import hooks
from reconciler.errors import APIError, AuthError, NotFoundError, OutcomeUnknown
from reconciler.evaluate import EvaluateChange, GapProblem, gap_problems, own_evaluation
from reconciler.recovery import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_SKEW,
    age_of,
    grace_pause,
    parse_time,
)
from reconciler.state.model import SUCCEEDED, EvaluationRecord, Intent, RunRecord, utc_now
from reconciler.textsafe import one_line


class EvaluationClient(Protocol):
    def list_evaluations(self, run_id: str) -> list[Any]: ...

    def get_evaluation(self, evaluation_id: str) -> Any: ...

    def create_evaluation(self, run_id: str, model: str | None = None) -> Any: ...


class EvaluationStore(Protocol):
    @property
    def state(self) -> Any: ...

    def put(self, record: RunRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class EvaluationOptions:
    wait: bool = True
    deadline: float | None = None  # the clock's time apply stops waiting at
    poll_min: float = 0.5
    poll_max: float = 30.0
    max_distribution_gap: float | None = None
    skew: timedelta = DEFAULT_SKEW
    recovery_grace: float = DEFAULT_GRACE_SECONDS


@dataclass(slots=True)
class EvaluationReport:
    started: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)
    deferred: dict[str, str] = field(default_factory=dict)  # not started: the run is not done
    failed: dict[str, str] = field(default_factory=dict)  # an `evaluate:` one ended FAILED
    problems: list[GapProblem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # no finished evaluation to check
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return not (self.rejected or self.unresolved or self.problems or self.failed)


def record_of(evaluation: Any, run_id: str, model: str | None) -> EvaluationRecord:
    """The state's record of an API evaluation (`reconciler.api.evaluations.Evaluation`)."""
    worst = evaluation.worst if evaluation.distribution is not None else None
    return EvaluationRecord(
        at=utc_now(),
        run_id=run_id,
        id=evaluation.id,
        status=evaluation.status,
        model=model,
        max_gap=None if worst is None else round(worst[1], 6),
        worst_property=None if worst is None else worst[0],
        gaps={k: round(v, 6) for k, v in evaluation.gaps().items()},
        error=evaluation.error_message,
    )


@dataclass(eq=False)
class EvaluationApplier:
    """Starts, reads and checks the evaluations of one apply (or reads them, for refresh)."""

    client: EvaluationClient
    store: EvaluationStore
    _: KW_ONLY
    options: EvaluationOptions = EvaluationOptions()
    voice: Callable[[str], None] = lambda _line: None  # where `say` writes
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    report: EvaluationReport = field(default_factory=EvaluationReport, init=False)

    def say(self, line: str) -> None:
        # Ids, statuses, property names and errors come from the API: one plain line each.
        self.voice(one_line(line))

    def run(self, changes: Sequence[EvaluateChange], names: Iterable[str]) -> EvaluationReport:
        """Start `changes`, then read (and with `wait`, wait for) the evaluations of
        the tracked runs: the changes' names, and every name of `names` when the policy
        sets a limit. Ends with the policy's verdict."""
        for change in changes:
            if change.acts and not self.stop.is_set():
                self._start(change)
        tracked = {c.name for c in changes}
        if self.options.max_distribution_gap is not None:
            tracked |= set(names)
        pending = self._observe(sorted(tracked))
        if self.options.wait:
            self._wait(pending)
        self._failures([c.name for c in changes])
        problems, unchecked = gap_problems(
            self.options.max_distribution_gap, self.store.state.runs, tracked
        )
        self.report.problems, self.report.unchecked = problems, unchecked
        for problem in problems:
            self.say(f"{problem.name}: {problem.message}")
        return self.report

    def _failures(self, names: Iterable[str]) -> None:
        """The `evaluate:` manifests whose evaluation ended FAILED (the next plan asks again)."""
        for name in names:
            own = own_evaluation(self.store.state.runs.get(name))
            if own is not None and own.id is not None and own.status == "FAILED":
                why = own.error or "the API gives no reason"
                self.report.failed[name] = (
                    f"evaluation {own.id} ended FAILED: {why}; the next apply starts another"
                )

    # -- 1. start -----------------------------------------------------------------

    def _start(self, change: EvaluateChange) -> None:
        name = change.name
        record = self.store.state.runs.get(name)
        if record is None or not record.run_id or record.status != SUCCEEDED:
            status = "not submitted" if record is None or not record.run_id else record.status
            why = f"not started: the run is {status or 'in an unknown state'}"
            if record is not None and record.run_id and record.status not in ("FAILED", "CANCELED"):
                why += "; a later apply starts it once the run has SUCCEEDED"
            self.report.deferred[name] = why
            self.say(f"{name}: evaluation {why}")
            return
        try:
            pending = own_evaluation(record)
            if pending is not None and pending.intent is not None and pending.id is None:
                if self._resolve(record, pending, change):
                    return
                record = self.store.state.runs[name]
            self._post(record, change)
        except AuthError:
            raise
        except APIError as exc:
            message = f"could not look for or start its evaluation ({exc.message})"
            self.report.unresolved[name] = message
            self.say(f"{name}: {message}")

    def _resolve(
        self, record: RunRecord, pending: EvaluationRecord, change: EvaluateChange
    ) -> bool:
        """An intent whose answer was lost: adopt what it made; True when nothing is to send."""
        assert pending.intent is not None and record.run_id is not None
        self.say(f"{record.name}: looking for the evaluation an earlier apply asked for...")
        found = self._look(record.run_id, pending.intent)
        age = age_of(pending.intent.at)
        if found is None and age < self.options.recovery_grace:
            pause = grace_pause(age, self.options.recovery_grace)
            self.say(f"{record.name}: the request is {age:.0f}s old; looking again in {pause:.0f}s")
            if self.stop.wait(pause):
                raise KeyboardInterrupt
            found = self._look(record.run_id, pending.intent)
        if found is not None:
            self._adopt(record, found, pending.model)
            return True
        self.store.put(record.evolve(evaluation=None))  # nothing was made: asking is safe
        return False

    def _look(self, run_id: str, intent: Intent) -> Any | None:
        """The earliest evaluation of the run created since the intent (less the skew)."""
        since = parse_time(intent.at)
        listed = self.client.list_evaluations(run_id)
        if since is not None:
            floor = since - self.options.skew
            listed = [e for e in listed if (t := parse_time(e.created_at)) is None or t >= floor]
        if not listed:
            return None
        latest = datetime.max.replace(tzinfo=timezone.utc)
        return min(listed, key=lambda e: (parse_time(e.created_at) or latest, e.id))

    def _adopt(self, record: RunRecord, found: Any, model: str | None) -> None:
        assert record.run_id is not None
        evaluation = self._read(found.id, found)
        self.store.put(record.evolve(evaluation=record_of(evaluation, record.run_id, model)))
        self.report.adopted.append(record.name)
        self.say(f"{record.name}: found evaluation {found.id} from the unconfirmed request")

    def _post(self, record: RunRecord, change: EvaluateChange) -> None:
        name, run_id = record.name, record.run_id
        assert run_id is not None
        # One made elsewhere (the web app, an earlier state) answers `evaluate:` too:
        # adopted rather than paid for twice.
        made = [e for e in self.client.list_evaluations(run_id) if e.status != "FAILED"]
        if made:
            newest = max(made, key=lambda e: (e.created_at or "", e.id))
            evaluation = self._read(newest.id, newest)
            self.store.put(record.evolve(evaluation=record_of(evaluation, run_id, None)))
            self.report.adopted.append(name)
            self.say(f"{name}: run {run_id} already has evaluation {newest.id}; recorded it")
            return
        body: dict[str, Any] = {"run_id": run_id}
        if change.model is not None:
            body["evaluation_model"] = change.model
        intent = Intent.new(body)
        pending = EvaluationRecord(at=intent.at, run_id=run_id, model=change.model, intent=intent)
        record = record.evolve(evaluation=pending)
        self.store.put(record)  # durable before the POST: never a second paid evaluation
        hooks.hit("before-evaluation-post")
        try:
            answer = self.client.create_evaluation(run_id, change.model)
        except OutcomeUnknown as exc:
            self._unknown(record, pending, exc)
            return
        except APIError as exc:
            refused = EvaluationRecord(
                at=utc_now(), run_id=run_id, model=change.model, error=exc.message
            )
            self.store.put(record.evolve(evaluation=refused))
            if isinstance(exc, AuthError):
                raise
            self.report.rejected[name] = exc.message
            self.say(f"{name}: evaluation not started: {exc.message}")
            return
        hooks.hit("after-evaluation-post")
        self.store.put(record.evolve(evaluation=record_of(answer, run_id, change.model)))
        self.report.started.append(name)
        self.say(f"{name}: started evaluation {answer.id}")

    def _unknown(self, record: RunRecord, pending: EvaluationRecord, exc: OutcomeUnknown) -> None:
        name = record.name
        assert pending.intent is not None and record.run_id is not None
        self.say(f"{name}: {exc.message}; looking for the evaluation before anything else")
        try:
            found = self._look(record.run_id, pending.intent)
        except APIError as lookup_error:
            found, reason = None, f"the lookup failed too ({lookup_error.message})"
        else:
            reason = "no evaluation of the run is listed yet"
        if found is not None:
            self._adopt(record, found, pending.model)
            return
        message = (
            f"the outcome of its evaluation request is unknown and {reason}; it was not sent "
            "again. Run `dfr apply` again later: it looks for the evaluation before asking"
        )
        self.report.unresolved[name] = message
        self.say(f"{name}: {message}")

    # -- 2. read -------------------------------------------------------------------

    def _read(self, evaluation_id: str, listed: Any | None = None) -> Any:
        """The evaluation with its analysis (a listed one has none): GET it."""
        try:
            return self.client.get_evaluation(evaluation_id)
        except NotFoundError:
            if listed is None:
                raise
            return listed

    def _observe(self, names: Sequence[str]) -> list[str]:
        """Read the unfinished tracked evaluations; the names still unfinished after."""
        open_names = []
        for name in names:
            record = self.store.state.runs.get(name)
            if record is None or record.status != SUCCEEDED or not record.run_id:
                continue
            if name in self.report.unresolved or name in self.report.rejected:
                continue
            current = own_evaluation(record)
            if current is not None and (current.is_final or current.id is None):
                continue
            try:
                updated = self._current(record, current)
            except AuthError:
                raise
            except APIError as exc:
                self.say(f"warning: {name}: could not read its evaluation ({exc.message})")
                open_names.append(name)
                continue
            if updated is not None:
                if updated != current:
                    self.store.put(record.evolve(evaluation=updated))
                    self._changed(name, current, updated)
                if not updated.is_final:
                    open_names.append(name)
        return open_names

    def _current(
        self, record: RunRecord, current: EvaluationRecord | None
    ) -> EvaluationRecord | None:
        assert record.run_id is not None
        if current is not None and current.id is not None:
            try:
                evaluation = self._read(current.id)
            except NotFoundError:
                gone = f"evaluation {current.id} no longer exists in the API (404)"
                self.say(f"{record.name}: {gone}")
                return EvaluationRecord(at=utc_now(), run_id=record.run_id, error=gone)
            return _same_but_time(current, record_of(evaluation, record.run_id, current.model))
        listed = self.client.list_evaluations(record.run_id)
        if not listed:
            return None
        newest = max(listed, key=lambda e: (e.created_at or "", e.id))
        return record_of(self._read(newest.id, newest), record.run_id, None)

    def _changed(self, name: str, before: EvaluationRecord | None, after: EvaluationRecord) -> None:
        if before is not None and before.status == after.status:
            return
        detail = ""
        if after.status == SUCCEEDED and after.max_gap is not None:
            detail = f": largest gap {after.max_gap:.1f} points ({after.worst_property})"
        elif after.error:
            detail = f": {after.error}"
        self.say(f"{name}: evaluation {after.id} {after.status}{detail}")

    # -- 3. wait -------------------------------------------------------------------

    def _wait(self, pending: Sequence[str]) -> None:
        started = self.clock()
        deadline = self.options.deadline
        while pending:
            now = self.clock()
            if deadline is not None and now >= deadline:
                self.report.timed_out = True
                self.say(f"stopped waiting for {len(pending)} evaluation(s): the timeout passed")
                return
            pause = min(self.options.poll_max, max(self.options.poll_min, (now - started) / 4))
            if deadline is not None:
                pause = min(pause, deadline - now)
            if self.stop.wait(pause):
                raise KeyboardInterrupt
            pending = self._observe(pending)


def _same_but_time(old: EvaluationRecord, new: EvaluationRecord) -> EvaluationRecord:
    """`new`, or `old` itself when nothing but the time of writing differs (no write)."""
    if {**_fields(old), "at": ""} == {**_fields(new), "at": ""}:
        return old
    return new


def _fields(record: EvaluationRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__dataclass_fields__}


def run_evaluations(applier: Any, plan: Any) -> EvaluationReport | None:
    """The evaluations of `plan` for `reconciler.apply.Applier` (its client, store,
    options, voice and stop flag); None when the plan asks for none and no policy
    limit applies."""
    changes: Sequence[EvaluateChange] = tuple(getattr(plan, "evaluations", ()))
    options = applier.options
    limit = options.max_distribution_gap
    if not changes and limit is None:
        return None
    deadline = None if options.timeout is None else applier.clock() + options.timeout
    evaluator = EvaluationApplier(
        applier.client,
        applier.store,
        options=EvaluationOptions(
            wait=options.wait,
            deadline=deadline,
            poll_min=options.poll_min,
            poll_max=options.poll_max,
            max_distribution_gap=limit,
            skew=options.skew,
            recovery_grace=options.recovery_grace,
        ),
        voice=applier.say,
        stop=applier.stop,
        clock=applier.clock,
    )
    return evaluator.run(changes, applier.report.desired)


def refresh_evaluations(
    client: EvaluationClient, store: EvaluationStore, say: Callable[[str], None]
) -> int:
    """`dfr refresh`: the recorded evaluations not finished yet, read again and recorded
    (nothing is started here); how many were read."""
    names = sorted(
        name
        for name, record in store.state.runs.items()
        if (own := own_evaluation(record)) is not None and own.id and not own.is_final
    )
    reader = EvaluationApplier(client, store, options=EvaluationOptions(wait=False), voice=say)
    reader._observe(names)
    return len(names)
