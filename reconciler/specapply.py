"""Applying the spec half of a plan: create, wait, update, then release the runs.

`SpecWork` is started by `reconciler.apply.Applier` before the runs are
submitted. Each spec change of the plan (`reconciler.specplan.SpecChange`)
that has something to do gets a worker thread (at most `--parallelism` at
once), which:

1. resolves an earlier create or update whose answer was lost
   (`reconciler.specrecovery`): looked for, never sent again blindly;
2. creates the spec when none is recorded: the intent (the exact body) is made
   durable BEFORE the POST and the spec id the moment the answer arrives; a
   409 (the name taken) is looked up and adopted only if it is the spec dfr
   sent; a lost answer is looked up by the spec's unique name at once;
3. waits until the spec is SUCCEEDED or FAILED, pausing like the runs' wait
   (a share of the spec's age, within `poll_min`..`poll_max`);
4. PUTs the manifest's content when the newest version differs from it, with
   the same write-ahead intent; the version it made is recorded at once.

A run change that depends on a spec (`depends_on` "spec/NAME") waits in its
own worker for that spec's outcome (`fill`), gets the spec's id filled in, and
is submitted; a spec that ends FAILED, is refused or stays unresolved blocks
only its dependants, with the spec's error. Independent runs are submitted
while the specs are being made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from reconciler import hooks
from reconciler.errors import APIError, AuthError, NotFoundError, OutcomeUnknown
from reconciler.recovery import age_of, grace_pause
from reconciler.specrecord import content_digest, with_detail
from reconciler.specrecovery import Finding, Verdict, resolve_create, resolve_update
from reconciler.state.model import (
    FAILED,
    PROCESSING,
    SUCCEEDED,
    SpecIntent,
    SpecRecord,
)

if TYPE_CHECKING:
    from reconciler.apply import ApplyOptions
    from reconciler.plan import Change
    from reconciler.specplan import SpecChange

SPEC_PREFIX = "spec/"


class Blocked(Exception):
    """A spec cannot be used by this apply; the message says why (shown for its runs)."""


@dataclass(frozen=True, slots=True)
class SpecOutcome:
    """How a spec stands when its work ended: usable, or the reason it is not."""

    name: str
    spec_id: str | None = None
    latest: int | None = None  # the newest version recorded
    problem: str | None = None  # None: SUCCEEDED and usable

    @property
    def ok(self) -> bool:
        return self.problem is None


def _needs_work(change: SpecChange) -> bool:
    return change.acts or change.waits or change.resolve_intent or change.failed


class SpecWork:
    """The spec workers of one apply (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        store: Any,
        changes: Sequence[SpecChange],
        *,
        options: ApplyOptions,
        stop: threading.Event,
        say: Callable[[str], None] = lambda _line: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.store = store
        self.changes = {c.name: c for c in changes}
        self.options = options
        self.stop = stop
        self.say = say
        self.clock = clock
        self.api: str | None = getattr(client, "base_url", None)
        self.problems: dict[str, str] = {}  # spec name -> why it is not usable
        self._futures: dict[str, Future[SpecOutcome]] = {}
        self._pool: ThreadPoolExecutor | None = None

    # -- running -------------------------------------------------------------

    def start(self) -> None:
        todo = [c for c in self.changes.values() if _needs_work(c)]
        if not todo:
            return
        workers = max(1, min(self.options.parallelism, len(todo)))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dfr-spec")
        for change in todo:
            self._futures[change.name] = self._pool.submit(self._settle_safely, change)

    def close(self) -> None:
        """Wait for the workers still running (after an error or an interrupt)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> dict[str, SpecOutcome]:
        """Wait for every spec worker; re-raise what must stop the apply (a refused key)."""
        outcomes = {name: self.outcome(name) for name in sorted(self._futures)}
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for future in self._futures.values():
            exc = future.exception()
            if exc is not None:
                raise exc
        return outcomes

    def outcome(self, name: str) -> SpecOutcome:
        """How spec `name` stands, once its worker ended (from state when it had none)."""
        future = self._futures.get(name)
        if future is None:
            return self._from_state(name)
        exc = future.exception()
        if exc is not None:
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            return SpecOutcome(name, problem=message)
        return future.result()

    def _from_state(self, name: str) -> SpecOutcome:
        record = self.store.state.specs.get(name)
        if record is None or not record.spec_id:
            return SpecOutcome(name, problem=f"spec {name!r} is not recorded in state")
        if record.status != SUCCEEDED:
            detail = f": {record.error}" if record.error else ""
            return SpecOutcome(
                name, record.spec_id, problem=f"spec {name!r} is {record.status}{detail}"
            )
        return SpecOutcome(name, record.spec_id, record.latest_number)

    def _settle_safely(self, change: SpecChange) -> SpecOutcome:
        try:
            return self._settle(change)
        except Blocked as exc:
            message = str(exc)
        except KeyboardInterrupt:
            message = "interrupted before the spec was ready"
        self.problems[change.name] = message
        self.say(f"spec {change.name}: {message}")
        return SpecOutcome(change.name, problem=message)

    # -- one spec ------------------------------------------------------------

    def _settle(self, change: SpecChange) -> SpecOutcome:
        name = change.name
        if change.failed:
            raise Blocked(f"the spec ended FAILED: {change.error or 'no error given'}")
        record = self.store.state.specs.get(name)
        since = None
        if record is not None and record.intent is not None:
            record, since = self._resolve(change, record)
        if record is None or not record.spec_id:
            if change.body is None:
                raise Blocked("no spec is recorded and the plan creates none")
            record = self._create(change, record, since)
        record = self._until_final(record)
        if record.status == FAILED:
            raise Blocked(f"the spec ended FAILED: {record.error or 'no error given'}")
        latest = record.latest
        wanted = change.content_sha256
        if change.content_yaml is not None and (latest is None or latest.sha256 != wanted):
            record = self._until_final(self._update(change, record))
        return SpecOutcome(name, record.spec_id, record.latest_number)

    def _put(self, record: SpecRecord) -> SpecRecord:
        self.store.put_spec(record)
        return record

    def _create(
        self, change: SpecChange, record: SpecRecord | None, since: str | None
    ) -> SpecRecord:
        name, body = change.name, dict(change.body or {})
        base = record or SpecRecord.new(name, source=change.source, api=self.api)
        # An earlier create found absent keeps its time: a spec made from either
        # POST is created no earlier than the first.
        intent = SpecIntent.new("create", body, at=since)
        pending = self._put(base.evolve(intent=intent, body=body, error=None, source=change.source))
        hooks.hit("before-spec-post")
        try:
            detail = self.client.create_spec(body)
        except AuthError:
            raise
        except OutcomeUnknown as exc:
            self.say(f"spec {name}: {exc.message}; looking for it by its name")
            return self._found_after_create(pending, intent, "the answer was lost")
        except APIError as exc:
            if exc.status_code == 409:
                return self._name_taken(pending, intent, earlier=since is not None)
            self._put(pending.evolve(intent=None, error=exc.message))
            raise Blocked(f"not created: {exc.message}") from None
        hooks.hit("after-spec-post")
        created = self._put(
            pending.evolve(
                spec_id=detail.id, status=detail.status or PROCESSING, intent=None, error=None
            )
        )
        self.say(f"spec {name}: created {detail.id}")
        return created

    def _found_after_create(self, pending: SpecRecord, intent: SpecIntent, why: str) -> SpecRecord:
        try:
            finding = resolve_create(self.client, pending.name, intent, skew=self.options.skew)
        except AuthError:
            raise
        except APIError as exc:
            finding = Finding(Verdict.UNKNOWN, why=f"the lookup failed too ({exc.message})")
        if finding.verdict is Verdict.ADOPT:
            return self._adopt(pending, finding, why)
        if finding.verdict is Verdict.TAKEN:
            raise Blocked(self._taken(pending.name, finding))
        # Nothing listed yet: keep the intent; the next apply looks again first.
        reason = finding.why or "no spec of that name is listed yet"
        raise Blocked(
            f"{why} and {reason}; nothing was sent again. Run `dfr apply` again later: it "
            "looks for the spec by its name before creating it"
        )

    def _name_taken(self, pending: SpecRecord, intent: SpecIntent, *, earlier: bool) -> SpecRecord:
        """409 on create. The spec of that name is dfr's own only when an earlier create
        of this spec was sent (its answer lost, and it was not listed when looked for):
        then it is adopted, and said so. Otherwise it is someone else's: an error."""
        why = "the API answered 409: the name is taken"
        if earlier:
            return self._found_after_create(pending, intent, why)
        try:
            finding = resolve_create(self.client, pending.name, intent, skew=self.options.skew)
        except APIError as exc:
            finding = Finding(Verdict.UNKNOWN, why=f"looking it up failed ({exc.message})")
        self._put(pending.evolve(intent=None))  # nothing of this POST was made
        detail = finding.detail if finding.verdict in (Verdict.ADOPT, Verdict.TAKEN) else None
        made = f", made at {detail.created_at}" if detail is not None else ""
        raise Blocked(self._taken(pending.name, Finding(Verdict.TAKEN, detail, why=f"{why}{made}")))

    def _adopt(self, record: SpecRecord, finding: Finding, why: str) -> SpecRecord:
        detail = finding.detail
        assert detail is not None  # ADOPT always carries the spec it found
        adopted = with_detail(record.evolve(intent=None, error=None), detail, made=(1,))
        self.say(
            f"spec {record.name}: {why}; found spec {detail.id} by its name, made by dfr's "
            "own create: adopted it"
        )
        return self._put(adopted)

    @staticmethod
    def _taken(name: str, finding: Finding) -> str:
        detail = finding.detail
        spec_id = detail.id if detail is not None else "?"
        return (
            f"a spec named {name!r} exists that dfr did not create ({finding.why}); nothing "
            f"was sent. If it is the one, adopt it: `dfr import spec {name} {spec_id}`; "
            "else rename the Spec manifest"
        )

    # -- lost answers ---------------------------------------------------------

    def _resolve(self, change: SpecChange, record: SpecRecord) -> tuple[SpecRecord, str | None]:
        """Settle the intent of an earlier apply; (the record, the create time to keep)."""
        intent = record.intent
        assert intent is not None
        finding = self._look(record, intent)
        if finding.verdict is Verdict.ABSENT and self._young(intent):
            pause = grace_pause(age_of(intent.at), self.options.recovery_grace)
            self.say(
                f"spec {record.name}: an unconfirmed {intent.kind} is only seconds old and the "
                f"API may still be making it; looking again in {pause:.0f}s"
            )
            if self.stop.wait(pause):
                raise KeyboardInterrupt
            finding = self._look(record, intent)
        return self._settle_intent(record, intent, finding)

    def _look(self, record: SpecRecord, intent: SpecIntent) -> Finding:
        try:
            if intent.kind == "create":
                return resolve_create(self.client, record.name, intent, skew=self.options.skew)
            return resolve_update(self.client, record, intent)
        except AuthError:
            raise
        except APIError as exc:
            raise Blocked(
                f"an earlier {intent.kind}'s answer was lost and looking for it failed "
                f"({exc.message}); nothing was sent again"
            ) from None

    def _settle_intent(
        self, record: SpecRecord, intent: SpecIntent, finding: Finding
    ) -> tuple[SpecRecord, str | None]:
        verdict = finding.verdict
        if verdict is Verdict.ADOPT:
            return self._adopt(record, finding, "an earlier create's answer was lost"), None
        if verdict is Verdict.APPLIED:
            assert finding.version is not None
            done = with_detail(record.evolve(intent=None), finding.detail, made=(finding.version,))
            self.say(
                f"spec {record.name}: an earlier update's answer was lost; version "
                f"{finding.version} holds what it sent: recorded it"
            )
            return self._put(done), None
        if verdict is Verdict.TAKEN:
            raise Blocked(self._taken(record.name, finding))
        if verdict is Verdict.UNKNOWN:
            raise Blocked(
                f"an earlier {intent.kind}'s answer was lost and {finding.why}; nothing was sent "
                "again"
            )
        # ABSENT: nothing was made; forget the intent (sending again is safe now).
        cleared = record.evolve(intent=None)
        if finding.detail is not None:
            cleared = with_detail(cleared, finding.detail)
        return self._put(cleared), (intent.at if intent.kind == "create" else None)

    def _young(self, intent: SpecIntent) -> bool:
        return age_of(intent.at) < self.options.recovery_grace

    # -- waiting and updating -------------------------------------------------

    def _until_final(self, record: SpecRecord) -> SpecRecord:
        """Poll the spec until SUCCEEDED or FAILED; its versions recorded when it ends."""
        assert record.spec_id is not None
        started = self.clock()
        timeout = self.options.timeout
        while True:
            try:
                detail = self.client.get_spec_versions(record.spec_id)
            except AuthError:
                raise
            except NotFoundError:
                raise Blocked(f"spec {record.spec_id} no longer exists in the API (404)") from None
            except APIError as exc:
                self.say(f"warning: could not read spec {record.name} ({exc.message}); retrying")
                detail = None
            if detail is not None and detail.status in (SUCCEEDED, FAILED):
                made = (1,) if not record.versions and record.body else ()
                final = with_detail(record, detail, made=made)
                if final != record:
                    self._put(final)
                if final.status != record.status:
                    self.say(f"spec {record.name}: {final.status}")
                return final
            if detail is not None and detail.status and detail.status != record.status:
                record = self._put(record.evolve(status=detail.status))  # PROCESSING, say
            age = self.clock() - started
            if timeout is not None and age >= timeout:
                status = record.status or "not finished"
                raise Blocked(f"spec {record.spec_id} is still {status} after {timeout:g}s")
            pause = max(self.options.poll_min, self.options.poll_share * age)
            if self.stop.wait(min(pause, self.options.poll_max)):
                raise KeyboardInterrupt

    def _update(self, change: SpecChange, record: SpecRecord) -> SpecRecord:
        assert record.spec_id is not None and change.content_yaml is not None
        text, sha = change.content_yaml, change.content_sha256
        intent = SpecIntent.new("update", {"content_yaml": text}, content_sha256=sha)
        pending = self._put(record.evolve(intent=intent))
        hooks.hit("before-spec-put")
        try:
            detail = self.client.update_spec(record.spec_id, text)
        except AuthError:
            raise
        except OutcomeUnknown as exc:
            self.say(f"spec {record.name}: {exc.message}; reading its versions")
            finding = self._look(pending, intent)
            if finding.verdict is Verdict.APPLIED:
                return self._settle_intent(pending, intent, finding)[0]
            # Not listed (yet): the intent stays, and the next apply reads again first.
            raise Blocked(
                "the update's answer was lost and its version is not listed yet; nothing was "
                "sent again. Run `dfr apply` again later: it reads the versions first"
            ) from None
        except APIError as exc:
            self._put(pending.evolve(intent=None, error=exc.message))
            raise Blocked(f"the update was refused: {exc.message}") from None
        hooks.hit("after-spec-put")
        return self._record_update(pending, detail, sha)

    def _record_update(self, pending: SpecRecord, detail: Any, sha: str | None) -> SpecRecord:
        assert pending.spec_id is not None
        if detail.versions is None:
            detail = self.client.get_spec_versions(pending.spec_id)
        known = pending.latest_number or 0
        ours = [
            v.number
            for v in detail.versions or ()
            if v.number > known and content_digest(v.content_yaml) == sha
        ]
        made = ours[-1:] or [v.number for v in (detail.versions or ())][-1:]
        done = with_detail(pending.evolve(intent=None, error=None), detail, made=made)
        # A version whose YAML the API keeps in the customer's cloud has no digest of
        # its own; dfr knows what it sent, so the plan does not PUT it again each time.
        versions = tuple(
            replace(v, sha256=sha) if v.number in made and v.sha256 is None else v
            for v in done.versions
        )
        done = self._put(done.evolve(versions=versions))
        number = made[0] if made else "?"
        self.say(f"spec {pending.name}: updated, version {number}")
        return done

    # -- the runs that use a spec ---------------------------------------------

    def fill(self, change: Change) -> tuple[Change | None, str | None]:
        """The run change with its spec's id filled in, or (None, why it is blocked).

        Waits for the specs it depends on (their workers) first.
        """
        deps = [
            k[len(SPEC_PREFIX) :]
            for k in getattr(change, "depends_on", ())
            if k.startswith(SPEC_PREFIX)
        ]
        if not deps or change.body is None:
            return change, None
        body = dict(change.body)
        for name in deps:
            outcome = self.outcome(name)
            if not outcome.ok:
                return None, f"its spec {name!r} is not ready: {outcome.problem}"
            ref = getattr(change, "spec_ref", None)
            if ref is not None and getattr(ref, "name", name) != name:
                continue
            body["spec_id"] = outcome.spec_id
            pinned = getattr(ref, "version", None) if ref is not None else None
            if pinned is not None and (outcome.latest or 0) < pinned:
                return None, (
                    f"its spec {name!r} has no version {pinned} (the newest is "
                    f"{outcome.latest or 'unknown'})"
                )
        return replace(change, body=body), None


#: What apply says of a recorded spec without a manifest, `--prune` or not.
ORPHAN_NOTE = (
    "in state but no Spec manifest names it (orphan); kept: dfr never deletes a spec, "
    "in Dataframer or in state, --prune included (runs may still name it by spec_ref); "
    "dfr state rm spec/NAME forgets it"
)


def spec_changes(plan: Any) -> Sequence[SpecChange]:
    """The plan's spec changes (`Plan.specs`), () for a plan without them."""
    specs = getattr(plan, "specs", ())
    return tuple(specs) if specs else ()


def summary(outcomes: Mapping[str, SpecOutcome]) -> dict[str, str]:
    """Spec name -> its problem, for the specs that are not usable."""
    return {name: o.problem for name, o in outcomes.items() if o.problem is not None}
