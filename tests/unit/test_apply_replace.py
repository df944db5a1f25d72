"""A replace cancels the old run only once the new one exists.

If the new POST is refused, the user keeps the run they had (still recorded,
not canceled), with the refusal recorded beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.api import Run
from reconciler.apply import Applier, ApplyOptions
from reconciler.errors import RequestRejected
from reconciler.manifests import Manifest
from reconciler.plan import Action, make_plan
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import PROCESSING, RunRecord, State

SPEC = "3c90c3cc-0d44-4b50-8888-8dd25736052a"


@dataclass
class FakeAPI:
    refuse: bool
    calls: list[tuple[str, str]] = field(default_factory=list)

    def create_run(self, body: dict[str, Any]) -> Run:
        self.calls.append(("create", ""))
        if self.refuse:
            raise RequestRejected("number_of_samples: over the account's quota", status_code=422)
        return Run(id="new-run")

    def cancel_run(self, run_id: str) -> None:
        self.calls.append(("cancel", run_id))

    def list_runs(self) -> list[Any]:
        return []

    def get_run(self, run_id: str) -> Any:
        raise AssertionError("not needed")


def _replace(api: FakeAPI) -> tuple[State, Any]:
    old = Manifest(name="tickets", spec={"spec_id": SPEC, "number_of_samples": 10})
    new = Manifest(name="tickets", spec={"spec_id": SPEC, "number_of_samples": 20})
    record = RunRecord.new("tickets", spec=old.body, run_id="old-run", status=PROCESSING)
    backend = InMemoryBackend(State.empty().with_record(record))
    with backend.lock("apply") as store:
        plan = make_plan([new], store.state)
        assert [c.action for c in plan.changes] == [Action.REPLACE]
        report = Applier(api, store, options=ApplyOptions(wait=False)).run(plan)
        return store.state, report


def test_replace_cancels_the_old_run_after_the_new_one_is_recorded() -> None:
    api = FakeAPI(refuse=False)
    state, report = _replace(api)
    assert api.calls == [("create", ""), ("cancel", "old-run")]
    record = state.runs["tickets"]
    assert record.run_id == "new-run"
    assert record.previous_run_ids == ["old-run"]
    assert report.submitted == ["tickets"] and report.canceled == ["tickets"]


def test_refused_replacement_keeps_the_old_run_recorded_and_running() -> None:
    api = FakeAPI(refuse=True)
    state, report = _replace(api)
    assert api.calls == [("create", "")]  # no cancel
    record = state.runs["tickets"]
    assert record.run_id == "old-run" and record.status == PROCESSING
    assert record.intent is None
    assert record.last_error is not None and "quota" in record.last_error["message"]
    assert "tickets" in report.rejected
