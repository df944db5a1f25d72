"""A lost submission that is only seconds old is looked for again before resubmitting.

The API may still be working on a POST whose sender died; concluding "nothing
was created" at once would pay for the run twice when it lands a moment later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from reconciler.api import Run
from reconciler.apply import Applier, ApplyOptions
from reconciler.manifests import Manifest
from reconciler.plan import make_plan
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import Intent, RunRecord, State

SPEC = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


@dataclass
class FakeRun:
    id: str
    spec_id: str
    spec_version: int | None
    created_at: str
    status: str = "PENDING"
    runtime_params: dict[str, Any] | None = None


@dataclass
class LateAPI:
    """Lists nothing at first; the run appears once the caller has waited."""

    body: dict[str, Any]
    lists: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)
    appeared: bool = False
    created_at: str | None = None  # the API's clock; default: now

    def list_runs(self) -> list[Any]:
        self.lists += 1
        return [self._run()] if self.appeared else []

    def get_run(self, run_id: str) -> Any:
        return self._run()

    def create_run(self, body: dict[str, Any]) -> Run:
        self.posts.append(body)
        return Run(id="new-run")

    def cancel_run(self, run_id: str) -> None:
        raise AssertionError("nothing to cancel")

    def _run(self) -> FakeRun:
        at = self.created_at or datetime.now(timezone.utc).isoformat()
        return FakeRun("late-run", SPEC, 2, at, runtime_params=dict(self.body))


def _setup(intent_age: float) -> tuple[InMemoryBackend, Manifest, dict[str, Any]]:
    manifest = Manifest(
        name="tickets", spec={"spec_id": SPEC, "spec_version": 2, "number_of_samples": 10}
    )
    body = manifest.body
    at = datetime.now(timezone.utc) - timedelta(seconds=intent_age)
    intent = Intent.new(body, at=at.isoformat().replace("+00:00", "Z"))
    record = RunRecord.new("tickets", spec=body, intent=intent, attempts=1)
    return InMemoryBackend(State.empty().with_record(record)), manifest, body


def _apply(
    backend: InMemoryBackend,
    manifest: Manifest,
    api: LateAPI,
    grace: float,
    waits: list[float | None] | None = None,
) -> Any:
    with backend.lock("apply") as store:
        plan = make_plan([manifest], store.state)
        applier = Applier(api, store, options=ApplyOptions(wait=False, recovery_grace=grace))
        original_wait = applier.stop.wait

        def wait_and_land(timeout: float | None = None) -> bool:
            if waits is not None:
                waits.append(timeout)
            api.appeared = True  # the API finishes the POST while dfr waits
            return original_wait(0)

        applier.stop.wait = wait_and_land  # type: ignore[method-assign]
        report = applier.run(plan)
        return report, store.state


def test_young_intent_is_looked_for_again_and_adopted_without_a_post() -> None:
    backend, manifest, body = _setup(intent_age=1.0)
    api = LateAPI(body)
    report, state = _apply(backend, manifest, api, grace=60.0)
    assert api.posts == []
    assert api.lists == 2
    assert report.adopted == ["tickets"]
    assert state.runs["tickets"].run_id == "late-run"


def test_old_intent_with_no_match_is_submitted_at_once() -> None:
    backend, manifest, body = _setup(intent_age=600.0)
    api = LateAPI(body)
    report, state = _apply(backend, manifest, api, grace=60.0)
    assert api.lists == 1
    assert len(api.posts) == 1
    assert report.submitted == ["tickets"]
    assert state.runs["tickets"].run_id == "new-run"


def test_an_intent_stamped_in_the_future_waits_one_grace_period_not_hours() -> None:
    """The clock went back two hours since the intent was written: its age is
    negative, and the wait must stay one grace period, not grace + 2 h. (The
    API's clock did not move: the run it made carries the intent's time.)"""
    backend, manifest, body = _setup(intent_age=-7200.0)
    intent = backend.read().runs["tickets"].intent
    assert intent is not None
    api = LateAPI(body, created_at=intent.at)
    waits: list[float | None] = []
    report, _ = _apply(backend, manifest, api, grace=60.0, waits=waits)
    assert waits == [60.0]
    assert api.posts == [] and report.adopted == ["tickets"]


def test_the_grace_pause_is_what_is_left_and_never_more_than_one_period() -> None:
    """One rule for runs, specs and evaluations (reconciler.recovery.grace_pause)."""
    from reconciler.recovery import age_of, grace_pause

    assert grace_pause(10.0, 60.0) == 50.0
    assert grace_pause(0.0, 60.0) == 60.0
    assert grace_pause(-7200.0, 60.0) == 60.0  # stamped in the future: one period
    assert age_of(None) == float("inf") and age_of("not a time") == float("inf")
    future = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    assert age_of(future) < -7000
