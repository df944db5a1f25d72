"""The spec half of apply (`reconciler.specapply`) against the emulator over real HTTP.

The plan is made by the pure planner from Spec and run manifests and executed by
`Applier` with the real client and the file backend: a spec is created, waited
for and updated before the runs that use it; lost answers and a taken name are
looked up, never sent again blindly; a FAILED spec blocks only its runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.emulators import KEY, SUPPORT

from dfr_emulator import Emulator
from reconciler.api import DataframerClient, RetryPolicy
from reconciler.apply import Applier, ApplyOptions, ApplyReport
from reconciler.manifests import Manifest, SpecManifest
from reconciler.plan import PlanOptions, make_plan
from reconciler.speccontent import content_sha256
from reconciler.state.local import LocalBackend
from reconciler.state.model import SpecIntent

OPTIONS = ApplyOptions(parallelism=4, poll_min=0.02, poll_max=0.1, recovery_grace=0.0)


def spec_manifest(
    name: str = "tickets", content: dict[str, Any] | None = None, **body: Any
) -> SpecManifest:
    return SpecManifest(
        name,
        {"objectives": f"support tickets for {name}", **body},
        content=content,
        file=f"specs/{name}.yaml",
        source=f"specs/{name}.yaml",
    )


def run_manifest(
    name: str, spec: str = "tickets", version: int | str = "latest", n: int = 5
) -> Manifest:
    return Manifest(
        name=name,
        labels={},
        spec={"spec_ref": {"name": spec, "version": version}, "number_of_samples": n},
        file=f"runs/{name}.yaml",
    )


def plain_run(name: str) -> Manifest:
    return Manifest(
        name=name,
        labels={},
        spec={"spec_id": SUPPORT, "number_of_samples": 3},
        file=f"runs/{name}.yaml",
    )


class Harness:
    def __init__(self, emu: Emulator, state: Path) -> None:
        self.emu = emu
        self.path = state
        self.backend = LocalBackend(state)
        self.said: list[str] = []

    def apply(self, specs: list[SpecManifest], runs: list[Manifest]) -> ApplyReport:
        client = DataframerClient(
            self.emu.base_url, KEY, retry=RetryPolicy(max_retries=2, sleep=lambda _s: None)
        )
        with client, self.backend.lock("apply") as store:
            plan = make_plan(runs, store.state, PlanOptions(), specs=specs)
            applier = Applier(client, store, options=OPTIONS, say=self.said.append)
            return applier.run(plan)

    def spec_named(self, name: str) -> list[dict[str, Any]]:
        return [s for s in self.emu.specs() if s["name"] == name]


@pytest.fixture
def h(emu: Emulator, tmp_path: Path) -> Harness:
    return Harness(emu, tmp_path / "dfr.state.json")


def test_a_spec_and_three_runs_apply_from_nothing_spec_first(h: Harness) -> None:
    runs = [run_manifest(f"run-{i}") for i in (1, 2, 3)]
    report = h.apply([spec_manifest()], runs)
    assert report.ok, h.said
    (spec,) = h.spec_named("tickets")
    state = h.backend.read()
    record = state.specs["tickets"]
    assert (record.spec_id, record.status, record.intent) == (spec["id"], "SUCCEEDED", None)
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True)]
    assert record.versions[0].sha256 is not None
    for name in ("run-1", "run-2", "run-3"):
        run = state.runs[name]
        assert run.spec["spec_id"] == spec["id"] and run.status == "SUCCEEDED"
        assert run.used["spec_version"] == 1
        # Created after the spec was SUCCEEDED.
        on_api = h.emu.run(run.run_id or "")
        assert on_api is not None
        assert on_api["created_at"] >= spec["versions"][0]["created_at"]
    # Applying again sends nothing.
    assert (h.emu.stats()["specs_created"], h.emu.stats()["specs_updated"]) == (1, 0)
    again = h.apply([spec_manifest()], runs)
    assert again.ok and again.submitted == [] and len(h.spec_named("tickets")) == 1
    assert (h.emu.stats()["specs_created"], h.emu.stats()["specs_updated"]) == (1, 0)


def test_content_makes_exactly_one_new_version_and_runs_on_latest_use_it(h: Harness) -> None:
    content = {"description": "tickets", "requirements": "one ticket per file"}
    report = h.apply([spec_manifest(content=content)], [run_manifest("r")])
    assert report.ok, h.said
    record = h.backend.read().specs["tickets"]
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True), (2, True)]
    assert record.versions[1].sha256 == content_sha256(content)
    assert h.backend.read().runs["r"].used["spec_version"] == 2
    edited = {**content, "requirements": "two tickets per file"}
    report = h.apply([spec_manifest(content=edited)], [run_manifest("r")])
    assert report.ok, h.said
    (spec,) = h.spec_named("tickets")
    assert len(spec["versions"]) == 3
    record = h.backend.read().specs["tickets"]
    assert record.latest is not None and record.latest.sha256 == content_sha256(edited)
    assert report.submitted == []  # the recorded run is not redone


def test_a_failed_spec_blocks_only_its_runs_with_its_error(h: Harness) -> None:
    h.emu.configure(spec_fail_pattern="^bad$")
    specs = [spec_manifest("bad"), spec_manifest("good")]
    runs = [run_manifest("uses-bad", "bad"), run_manifest("uses-good", "good"), plain_run("plain")]
    report = h.apply(specs, runs)
    assert not report.ok
    error = h.backend.read().specs["bad"].error
    assert (
        error and "FAILED" in report.spec_problems["bad"] and error in report.spec_problems["bad"]
    )
    assert set(report.rejected) == {"uses-bad"} and error in report.rejected["uses-bad"]
    state = h.backend.read()
    assert (
        state.runs["uses-good"].status == "SUCCEEDED" and state.runs["plain"].status == "SUCCEEDED"
    )
    assert state.runs["uses-bad"].run_id is None


def test_a_lost_create_answer_is_found_by_name_and_adopted(h: Harness) -> None:
    h.emu.configure(spec_ambiguous_creates=1)
    report = h.apply([spec_manifest()], [run_manifest("r")])
    assert report.ok, h.said
    assert len(h.spec_named("tickets")) == 1
    assert any("found spec" in line and "adopted" in line for line in h.said)


def test_a_lost_update_answer_is_resolved_from_the_versions(h: Harness) -> None:
    h.apply([spec_manifest()], [])
    h.emu.configure(spec_ambiguous_updates=1)
    content = {"description": "edited"}
    report = h.apply([spec_manifest(content=content)], [run_manifest("r")])
    assert report.ok, h.said
    (spec,) = h.spec_named("tickets")
    assert len(spec["versions"]) == 2
    record = h.backend.read().specs["tickets"]
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True), (2, True)]
    assert any("holds what it sent" in line for line in h.said)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_5xx_on_create_or_update_never_makes_two(h: Harness, when: str) -> None:
    h.emu.configure(**{f"spec_5xx_{when}_create_rate": 1.0})
    first = h.apply([spec_manifest()], [])
    h.emu.configure(**{f"spec_5xx_{when}_create_rate": 0.0})
    if not first.ok:  # before: nothing made, the intent stays until looked for
        assert h.apply([spec_manifest()], []).ok, h.said
    assert len(h.spec_named("tickets")) == 1
    h.emu.configure(**{f"spec_5xx_{when}_update_rate": 1.0})
    content = {"description": "x"}
    h.apply([spec_manifest(content=content)], [])
    h.emu.configure(**{f"spec_5xx_{when}_update_rate": 0.0})
    assert h.apply([spec_manifest(content=content)], []).ok, h.said
    (spec,) = h.spec_named("tickets")
    assert len(spec["versions"]) == 2


def test_a_name_taken_by_a_spec_dfr_did_not_make_is_an_error_naming_it(h: Harness) -> None:
    first = Harness(h.emu, h.path.parent / "other.state.json")  # someone else
    assert first.apply([spec_manifest()], []).ok
    report = h.apply([spec_manifest()], [run_manifest("r")])
    assert not report.ok
    problem = report.spec_problems["tickets"]
    assert "a spec named 'tickets' exists that dfr did not create" in problem
    assert "dfr import spec tickets" in problem
    assert "r" in report.rejected and len(h.spec_named("tickets")) == 1


def test_a_409_for_dfrs_own_earlier_create_adopts_it_and_says_so(h: Harness) -> None:
    # An earlier apply's POST was made but its intent is still unresolved, and the
    # name did not list yet: the new POST gets 409, and the lookup finds dfr's spec.
    h.apply([spec_manifest()], [])
    state = h.backend.read()
    record = state.specs["tickets"]
    with h.backend.lock("test") as store:
        intent = SpecIntent.new("create", spec_manifest().create_body, at="2000-01-01T00:00:00Z")
        store.put_spec(record.evolve(spec_id=None, versions=(), intent=intent))
    # The lookup by name before the POST finds it: adopted without a POST.
    report = h.apply([spec_manifest()], [])
    assert report.ok, h.said
    assert h.backend.read().specs["tickets"].spec_id == record.spec_id
    assert len(h.spec_named("tickets")) == 1


def test_refresh_records_an_edit_made_elsewhere_as_not_dfrs(h: Harness) -> None:
    from reconciler.specrecord import refresh_specs

    assert h.apply([spec_manifest()], []).ok
    spec_id = h.backend.read().specs["tickets"].spec_id or ""
    with DataframerClient(h.emu.base_url, KEY) as client:
        client.update_spec(spec_id, "spec:\n  description: edited in the web app\n")
        with h.backend.lock("refresh") as store:
            changes = refresh_specs(client, store)
            assert [c.describe() for c in changes] == [
                "spec tickets: new version 2 (edited outside dfr, in the web app?)"
            ]
            assert refresh_specs(client, store) == []  # nothing new the second time
    versions = h.backend.read().specs["tickets"].versions
    assert [(v.number, v.by_dfr) for v in versions] == [(1, True), (2, False)]
    # The manifest states content: the next apply updates back to it (one more version).
    content = {"description": "as the manifest says"}
    assert h.apply([spec_manifest(content=content)], []).ok, h.said
    record = h.backend.read().specs["tickets"]
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True), (2, False), (3, True)]
    assert len(h.spec_named("tickets")[0]["versions"]) == 3


def test_a_spec_gone_from_the_api_is_marked_not_deleted(h: Harness) -> None:
    from reconciler.specrecord import refresh_specs

    assert h.apply([spec_manifest()], []).ok
    spec_id = h.backend.read().specs["tickets"].spec_id or ""
    with DataframerClient(h.emu.base_url, KEY) as client:
        client._http.delete(f"/api/dataframer/specs/{spec_id}/", params={"force": "true"})
        with h.backend.lock("refresh") as store:
            (change,) = refresh_specs(client, store)
    assert "no longer exists in the API (404)" in change.describe()
    assert h.backend.read().specs["tickets"].drift == "not_found"


def test_an_update_the_api_refuses_is_reported_and_blocks_only_its_runs(h: Harness) -> None:
    """A spec whose YAML lives in the customer's own cloud is updated there, not through
    the API: the refusal is shown with the API's reason, recorded, and nothing else is
    sent for it; a run on another spec goes on."""
    from dfr_emulator import seeds
    from reconciler.specrecord import adopted

    with DataframerClient(h.emu.base_url, KEY) as client, h.backend.lock("import") as store:
        detail = client.get_spec_versions(seeds.SPEC_INSURANCE_CLAIMS)
        store.put_spec(adopted("insurance-claims", detail, source=None, api=None))
    before = len(h.spec_named("insurance-claims")[0]["versions"])
    manifest = spec_manifest("insurance-claims", content={"description": "claims, as code"})
    runs = [run_manifest("on-claims", "insurance-claims"), plain_run("plain")]
    report = h.apply([manifest, spec_manifest()], runs)
    assert not report.ok
    problem = report.spec_problems["insurance-claims"]
    assert problem.startswith("the update was refused") and "data plane" in problem
    assert set(report.rejected) == {"on-claims"} and report.submitted == ["plain"]
    record = h.backend.read().specs["insurance-claims"]
    assert record.intent is None and record.error is not None and "data plane" in record.error
    assert len(h.spec_named("insurance-claims")[0]["versions"]) == before


def test_runs_pinned_to_a_version_this_apply_makes_wait_for_it(h: Harness) -> None:
    content = {"description": "as the manifest says"}
    runs = [run_manifest("on-v2", version=2), run_manifest("on-v1", version=1)]
    report = h.apply([spec_manifest(content=content)], runs)
    assert report.ok, h.said
    state = h.backend.read()
    assert state.runs["on-v2"].used["spec_version"] == 2
    assert state.runs["on-v1"].used["spec_version"] == 1


def test_a_run_pinned_past_the_newest_version_is_blocked_alone(h: Harness) -> None:
    runs = [run_manifest("on-v5", version=5), run_manifest("on-latest")]
    report = h.apply([spec_manifest()], runs)
    assert not report.ok
    assert "has no version 5 (the newest is 1)" in report.rejected["on-v5"]
    assert h.backend.read().runs["on-latest"].status == "SUCCEEDED"


def test_independent_runs_are_submitted_while_the_spec_is_being_made(h: Harness) -> None:
    h.emu.configure(spec_processing_seconds=1.0)
    report = h.apply([spec_manifest()], [plain_run("plain"), run_manifest("uses")])
    assert report.ok, h.said
    (spec,) = h.spec_named("tickets")
    state = h.backend.read()
    plain = h.emu.run(state.runs["plain"].run_id or "")
    uses = h.emu.run(state.runs["uses"].run_id or "")
    assert plain is not None and uses is not None
    ready = spec["versions"][0]["created_at"]
    assert plain["created_at"] < ready <= uses["created_at"]
