"""What became of a spec create or update whose answer was lost (`reconciler.specrecovery`).

The lookup is given as a small fake (the same protocol the client answers); the
values are the client's own (`SpecDetail`, `Spec`), built from JSON as the API
sends it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from reconciler.api.models import Spec
from reconciler.api.specs import SpecDetail
from reconciler.errors import NotFoundError
from reconciler.speccontent import text_sha256
from reconciler.specrecovery import Verdict, contradicts, resolve_create, resolve_update
from reconciler.state.model import SpecIntent, SpecRecord, SpecVersionRecord

SKEW = timedelta(minutes=5)
AT = "2026-06-01T12:00:00.000Z"
BODY = {"name": "tickets", "generation_objectives": "support tickets", "description": "d"}


class Lookup:
    def __init__(self, *specs: dict[str, Any], gone: tuple[str, ...] = ()) -> None:
        self.specs = {s["id"]: s for s in specs}
        self.gone = gone

    def find_specs(self, name: str) -> list[Any]:
        return [Spec.from_json(s) for s in self.specs.values() if s.get("name") == name]

    def get_spec_versions(self, spec_id: str) -> Any:
        if spec_id in self.gone:
            raise NotFoundError(f"spec {spec_id} was not found")
        return SpecDetail.from_json(self.specs[spec_id])


def made(spec_id: str = "s-1", at: str = "2026-06-01T12:00:01Z", **fields: Any) -> dict[str, Any]:
    return {
        "id": spec_id,
        "name": "tickets",
        "status": "SUCCEEDED",
        "description": "d",
        "created_at": at,
        "runtime_params": {"generation_objectives": "support tickets"},
        **fields,
    }


def create_intent() -> SpecIntent:
    return SpecIntent.new("create", BODY, at=AT)


def test_the_spec_made_after_the_intent_with_the_same_body_is_adopted() -> None:
    found = resolve_create(Lookup(made()), "tickets", create_intent(), skew=SKEW)
    assert found.verdict is Verdict.ADOPT and found.detail is not None
    assert found.detail.id == "s-1"


def test_a_clock_a_little_behind_still_adopts() -> None:
    behind = made(at="2026-06-01T11:58:00Z")  # 2 minutes before the intent, within skew
    assert resolve_create(Lookup(behind), "tickets", create_intent(), skew=SKEW).verdict is (
        Verdict.ADOPT
    )


def test_a_spec_of_that_name_made_long_before_is_taken() -> None:
    old = made(at="2026-05-01T00:00:00Z")
    found = resolve_create(Lookup(old), "tickets", create_intent(), skew=SKEW)
    assert found.verdict is Verdict.TAKEN and "before dfr sent its create" in found.why


def test_a_spec_of_that_name_with_another_body_is_taken() -> None:
    other = made(description="someone else's", runtime_params={"generation_objectives": "x"})
    found = resolve_create(Lookup(other), "tickets", create_intent(), skew=SKEW)
    assert found.verdict is Verdict.TAKEN
    assert "another description, generation_objectives" in found.why


def test_nothing_listed_another_dataset_or_gone_since_is_absent() -> None:
    assert resolve_create(Lookup(), "tickets", create_intent(), skew=SKEW).verdict is (
        Verdict.ABSENT
    )
    seeded = made(dataset_id="ds-1")  # a seeded spec: not the seedless one dfr sent
    assert resolve_create(Lookup(seeded), "tickets", create_intent(), skew=SKEW).verdict is (
        Verdict.ABSENT
    )
    gone = Lookup(made(), gone=("s-1",))
    assert resolve_create(gone, "tickets", create_intent(), skew=SKEW).verdict is Verdict.ABSENT


def test_contradicts_only_what_the_spec_reports() -> None:
    detail = SpecDetail.from_json({"id": "x", "description": None, "runtime_params": None})
    assert contradicts(BODY, detail) == []


SENT = "spec:\n  description: new\n"


def recorded(*numbers: int) -> SpecRecord:
    versions = tuple(SpecVersionRecord(n, None, None, True) for n in numbers)
    intent = SpecIntent.new("update", {"content_yaml": SENT}, content_sha256=text_sha256(SENT))
    return SpecRecord.new("tickets", spec_id="s-1", versions=versions, intent=intent)


def with_versions(*texts: str | None) -> Lookup:
    return Lookup(made(versions=[{"content_yaml": t} for t in texts]))


def test_an_update_found_among_the_newer_versions_is_applied() -> None:
    record = recorded(1)
    assert record.intent is not None
    # Written another way (the API may re-emit it), then edited again in the web app.
    again = "spec: {description: 'new'}\n"
    found = resolve_update(
        with_versions("spec: {}", again, "spec:\n  x: 1\n"), record, record.intent
    )
    assert found.verdict is Verdict.APPLIED and found.version == 2


def test_an_update_not_listed_is_absent_and_an_old_version_does_not_count() -> None:
    record = recorded(1, 2)
    assert record.intent is not None
    # Version 1 holds the sent content, but it is no newer than what state recorded.
    found = resolve_update(with_versions(SENT, "spec: {}"), record, record.intent)
    assert found.verdict is Verdict.ABSENT


def test_a_newer_version_without_yaml_cannot_be_compared() -> None:
    record = recorded(1)
    assert record.intent is not None
    found = resolve_update(with_versions("spec: {}", None), record, record.intent)
    assert found.verdict is Verdict.UNKNOWN and "your own cloud" in found.why


def test_two_specs_of_that_name_are_never_guessed_between() -> None:
    # An API that lets names repeat (names are unique per dataset, and may not be
    # enforced everywhere): one old spec of someone else's and dfr's own is dfr's own;
    # two that both answer the body are a question for the user.
    old = made("s-0", at="2026-05-01T00:00:00Z")
    found = resolve_create(Lookup(old, made("s-1")), "tickets", create_intent(), skew=SKEW)
    assert found.verdict is Verdict.ADOPT and found.detail is not None
    assert found.detail.id == "s-1"
    both = Lookup(made("s-1"), made("s-2", at="2026-06-01T12:00:02Z"))
    found = resolve_create(both, "tickets", create_intent(), skew=SKEW)
    assert found.verdict is Verdict.UNKNOWN and "s-1, s-2" in found.why
