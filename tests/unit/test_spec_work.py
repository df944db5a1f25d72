"""`SpecWork` with a scripted API: the moments the emulator cannot stage.

An earlier create whose spec is not listed yet when looked for, then a 409 on
the create sent again: the spec is dfr's own (adopted, and said so). A 409 on a
first create is someone else's spec: an error naming the name. The state is the
in-memory backend; the client is a fake of the same methods the real one has.
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.api.models import Spec
from reconciler.api.specs import SpecDetail, SpecNameTaken
from reconciler.apply import ApplyOptions
from reconciler.specapply import SpecWork
from reconciler.specplan import SpecAction, SpecChange
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import SpecIntent, SpecRecord

BODY = {"name": "tickets", "generation_objectives": "support tickets"}
OPTIONS = ApplyOptions(poll_min=0.0, poll_max=0.0, recovery_grace=0.0)
MADE = {
    "id": "spec-1",
    "name": "tickets",
    "status": "SUCCEEDED",
    "created_at": "2099-01-01T00:00:00Z",
    "versions": [{"content_yaml": "spec:\n  description: x\n"}],
}


class ScriptedApi:
    """Lists nothing until the create is sent; the create answers 409."""

    base_url = "https://api.example.test"

    def __init__(self) -> None:
        self.posted = 0
        self.listed = 0

    def find_specs(self, name: str) -> list[Any]:
        self.listed += 1
        return [Spec.from_json(MADE)] if self.posted else []

    def get_spec_versions(self, spec_id: str) -> Any:
        return SpecDetail.from_json(MADE)

    def create_spec(self, body: Any) -> Any:
        self.posted += 1
        raise SpecNameTaken(
            "POST /api/dataframer/specs/ was rejected (409 Conflict)", status_code=409
        )


def work(api: ScriptedApi, backend: InMemoryBackend, said: list[str]) -> dict[str, Any]:
    change = SpecChange("tickets", SpecAction.CREATE, body=dict(BODY), resolve_intent=True)
    with backend.lock("apply") as store:
        specs = SpecWork(
            api, store, [change], options=OPTIONS, stop=threading.Event(), say=said.append
        )
        specs.start()
        return dict(specs.finish())


def test_a_409_after_an_earlier_unlisted_create_adopts_dfrs_own_spec() -> None:
    backend = InMemoryBackend()
    # Stamped in the future (a clock that went back): the look again after the grace
    # period waits one period at most (0 here), never until that time.
    earlier = SpecIntent.new("create", BODY, at="2098-12-31T23:59:00.000Z")
    with backend.lock("apply") as store:
        store.put_spec(SpecRecord.new("tickets", intent=earlier, body=dict(BODY)))
    api = ScriptedApi()
    said: list[str] = []
    outcomes = work(api, backend, said)
    assert outcomes["tickets"].ok and outcomes["tickets"].spec_id == "spec-1"
    assert api.posted == 1  # looked for first (not listed), sent once, never again
    record = backend.read().specs["tickets"]
    assert record.spec_id == "spec-1" and record.intent is None
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True)]
    assert any("409" in line and "adopted" in line for line in said), said


def test_a_409_on_a_first_create_is_someone_elses_spec() -> None:
    backend = InMemoryBackend()
    api = ScriptedApi()
    said: list[str] = []
    outcomes = work(api, backend, said)
    problem = outcomes["tickets"].problem or ""
    assert "a spec named 'tickets' exists that dfr did not create" in problem
    assert "dfr import spec tickets spec-1" in problem and api.posted == 1
    record = backend.read().specs["tickets"]
    assert record.spec_id is None and record.intent is None
