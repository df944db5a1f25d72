"""The spec preflight of `dfr plan --refresh` and `dfr apply`, against the emulator.

One specs GET (with versions) per distinct spec id among the runs to submit: an
unknown spec, a spec that is not SUCCEEDED and a spec_version that does not exist
are reported by manifest name with the spec id and the reason; such manifests are
not submitted (zero POSTs for them), the others go ahead, and the command exits 1.
"""

from __future__ import annotations

import json

import pytest
from support.emulators import LEGAL, MEDICAL, REVIEWS, SUPPORT, UNKNOWN, count
from support.runner import Runner, apply_args
from support.workspace import Workspace

from dfr_emulator import Emulator

pytestmark = pytest.mark.repo


def findings(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


def write_bad_and_good(ws: Workspace) -> None:
    ws.write_text("good", spec_id=SUPPORT, version=3)
    ws.write_text("unknown", spec_id=UNKNOWN)
    ws.write_text("processing", spec_id=MEDICAL)
    ws.write_text("failed", spec_id=LEGAL)
    ws.write_text("noversion", spec_id=REVIEWS, version=9)


EXPECTED = [
    f"runs/failed.yaml:4:9: error: failed: spec {LEGAL} (legal-contracts) is FAILED; a run "
    "needs a SUCCEEDED spec; it will not be submitted",
    f"runs/noversion.yaml:4:9: error: noversion: spec {REVIEWS} (product-reviews) has versions "
    "1-2; spec_version 9 does not exist; it will not be submitted",
    f"runs/processing.yaml:4:9: error: processing: spec {MEDICAL} (medical-notes) is "
    "PROCESSING; a run needs a SUCCEEDED spec; it will not be submitted",
    f"runs/unknown.yaml:4:9: error: unknown: spec {UNKNOWN} not found; it will not be submitted",
]


def test_plan_refresh_reports_each_bad_spec_by_manifest(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    write_bad_and_good(ws)
    r = dfr("plan", "--refresh")
    assert r.code == 1
    assert "Plan: 5 to create" in r.out
    assert findings(r.err) == EXPECTED
    assert count(emu, "specs.get") == 5
    assert count(emu, "runs.create") == 0


def test_plan_without_refresh_stays_offline(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    write_bad_and_good(ws)
    r = dfr("plan")
    assert r.code == 0
    assert emu.stats()["requests_total"] == 0


def test_plan_refresh_json_lists_the_blocked_runs(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("good")
    ws.write_text("unknown", spec_id=UNKNOWN)
    r = dfr("plan", "--refresh", "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["preflight"] == {
        "specs_read": 2,
        "blocked": {"unknown": f"spec {UNKNOWN} not found"},
        "warnings": {},
    }


def test_apply_submits_the_good_and_none_of_the_bad(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    write_bad_and_good(ws)
    r = dfr(*apply_args())
    assert r.code == 1
    assert findings(r.err)[:4] == EXPECTED
    assert count(emu, "runs.create") == 1  # only "good"
    assert count(emu, "specs.get") == 5
    assert "noversion: not submitted: spec" in r.text
    state = json.loads(dfr("state", "list", "--json").out)
    by_name = {s["name"]: s for s in state}
    assert by_name["good"]["status"] == "SUCCEEDED"
    for name in ("unknown", "processing", "failed", "noversion"):
        assert by_name[name]["run_id"] is None
    shown = json.loads(dfr("state", "show", "unknown", "--json").out)
    assert shown["last_error"]["message"] == f"spec {UNKNOWN} not found"
    assert shown["attempts"] == 0
    # The next plan says why they are still to create.
    r = dfr("plan")
    assert f"the last submission failed: spec {UNKNOWN} not found" in r.out


def test_one_specs_call_per_spec_id_however_many_manifests(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    for i in range(4):
        ws.write_text(f"support-{i}", spec_id=SUPPORT, samples=10 + i)
    for i in range(3):
        ws.write_text(f"reviews-{i}", spec_id=REVIEWS, samples=10 + i, version=2)
    # The same id in capitals is the same spec.
    ws.write_text("upper", spec_id=SUPPORT.upper(), samples=99)
    assert dfr("plan", "--refresh").code == 0
    assert count(emu, "specs.get") == 2
    r = dfr(*apply_args("--no-wait"))
    assert r.code == 0, r.err
    assert count(emu, "specs.get") == 4
    assert count(emu, "runs.create") == 8


def test_no_spec_is_read_when_nothing_is_submitted(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.write_text("a")
    assert dfr(*apply_args("--no-wait")).code == 0
    before = count(emu, "specs.get")
    assert dfr(*apply_args("--no-wait")).code == 0
    assert dfr("plan", "--refresh").code == 0
    assert count(emu, "specs.get") == before


def test_a_version_of_an_unpinned_manifest_is_not_checked(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.write_text("latest", spec_id=REVIEWS, version=None)
    r = dfr(*apply_args("--no-wait"))
    assert r.code == 0, r.err
    assert count(emu, "runs.create") == 1


def test_a_replace_is_checked_too(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    ws.write_text("a", spec_id=SUPPORT, version=1)
    assert dfr(*apply_args()).code == 0
    ws.write_text("a", spec_id=SUPPORT, version=7)
    r = dfr(*apply_args())
    assert r.code == 1
    assert "has versions 1-3; spec_version 7 does not exist" in r.err
    assert count(emu, "runs.create") == 1
    # The recorded run is kept as it was.
    shown = json.loads(dfr("state", "show", "a", "--json").out)
    assert shown["status"] == "SUCCEEDED"
    assert shown["spec"]["spec_version"] == 1
