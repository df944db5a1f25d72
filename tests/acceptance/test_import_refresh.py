"""`dfr import`, `dfr refresh`, drift (a recorded run that now 404s), `plan --refresh`."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from support.emulators import KEY, emu_status, posts, wait_for
from support.runner import Runner, apply_args
from support.unfinished import submit_unfinished
from support.workspace import Workspace, spec

from dfr_emulator import Emulator
from reconciler.api import DataframerClient


@pytest.fixture
def api(emu: Emulator) -> Iterator[DataframerClient]:
    """A client of our own, to create runs behind dfr's back."""
    with DataframerClient(emu.base_url, KEY) as client:
        yield client


def test_import_adopts_a_matching_run(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    ws.write("alpha", labels={"team": "x"}, number_of_samples=40)
    # Created with the spec id in upper case and a field the manifest leaves out.
    body = spec(number_of_samples=40, skip_outline=True)
    body["spec_id"] = body["spec_id"].upper()
    run_id = api.create_run(body).id
    code, out, err = dfr("import", "alpha", run_id, "manifests")
    assert code == 0, out + err
    assert f"Imported run {run_id}" in out
    record = ws.record("alpha")
    assert record["run_id"] == run_id and record["labels"] == {"team": "x"}
    assert record["spec"]["number_of_samples"] == 40
    assert record["used"]["skip_outline"] is True and record["used"]["spec_version"] == 3
    # Adopted: applying submits nothing and waits for it.
    code, out, _ = dfr(*apply_args("manifests"))
    assert code == 0 and "No changes" in out
    assert posts(emu) == 1  # ours, not dfr's
    assert ws.record("alpha")["status"] == "SUCCEEDED"
    # Importing the same run again is a no-op; another run is refused.
    assert dfr("import", "alpha", run_id, "manifests").code == 0
    other = api.create_run(spec(number_of_samples=40)).id
    code, _, err = dfr("import", "alpha", other, "manifests")
    assert code == 1 and "already records" in err


def test_import_refuses_a_mismatching_run_saying_what_differs(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    ws.write("alpha", number_of_samples=40)
    run_id = api.create_run(spec(number_of_samples=41, generation_model="openai/gpt-oss-120b")).id
    ws.write("alpha", number_of_samples=40, generation_model="anthropic/claude-haiku-4-5")
    code, _out, err = dfr("import", "alpha", run_id, "manifests")
    assert code == 1
    assert "does not match" in err and "--force" in err
    assert "number_of_samples" in err and "41" in err and "40" in err
    assert "generation_model" in err and "openai/gpt-oss-120b" in err
    assert "alpha" not in ws.run_ids()
    code, _, err = dfr("import", "alpha", run_id, "manifests", "--state", ws.state)
    assert code == 1


def test_import_force_adopts_a_differing_run_and_the_plan_shows_the_difference(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    run_id = api.create_run(spec(number_of_samples=41, generation_model="openai/gpt-oss-120b")).id
    ws.write("alpha", number_of_samples=40)
    code, out, err = dfr("import", "--force", "alpha", run_id, "manifests")
    assert code == 0, err
    assert f"Imported run {run_id}" in out
    assert "differs from the manifest" in err and "number_of_samples" in err
    record = ws.record("alpha")
    assert record["run_id"] == run_id and record["spec"]["number_of_samples"] == 41
    # The difference is not hidden: the next plan wants a replace, naming it.
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2, out
    assert "number_of_samples" in out and "41" in out and "40" in out
    assert "generation_model" not in out  # left to the API by the manifest
    assert posts(emu) == 1


def test_import_refuses_a_nonexistent_run_or_manifest(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    missing = "00000000-0000-4000-8000-000000000000"
    code, _, err = dfr("import", "alpha", missing, "manifests")
    assert code == 1 and "error:" in err
    assert "404" in err or "not found" in err.lower() or "does not exist" in err
    code, _, err = dfr("import", "nobody", missing, "manifests")
    assert code == 1 and "nobody" in err
    assert not ws.state.exists() or ws.state_doc()["runs"] == {}
    assert posts(emu) == 0


def test_refresh_records_statuses(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    emu.configure(pending_seconds=0.0, processing_seconds=0.1)
    ws.write("alpha")
    ws.write("beta")
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    ids = ws.run_ids()
    # As the create answer said (the current API answers the whole run).
    first = {r["status"] for r in ws.state_doc()["runs"].values()}
    assert first <= {"PENDING", "PROCESSING"}
    wait_for(lambda: all(emu_status(emu, str(i)) == "SUCCEEDED" for i in ids.values()))
    code, out, err = dfr("refresh")
    assert code == 0 and "Refreshed 2 unfinished runs." in out
    assert re.search(r"alpha: (PENDING|PROCESSING) -> SUCCEEDED", err), err
    records = ws.state_doc()["runs"]
    assert {r["status"] for r in records.values()} == {"SUCCEEDED"}
    assert all(r["total_cost"] and r["completed_at"] for r in records.values())
    assert posts(emu) == 2
    # Nothing unfinished: refresh asks for nothing.
    before = emu.stats()["requests_total"]
    assert dfr("refresh").out == "Refreshed 0 unfinished runs.\n"
    assert emu.stats()["requests_total"] == before


def test_refresh_records_a_failure_without_inventing_a_reason(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    run_id = str(ws.record("alpha")["run_id"])
    emu.force_status(run_id, "FAILED", "quota exceeded")
    assert dfr("refresh").code == 0
    record = ws.record("alpha")
    # The run model has no reason field: none is recorded, and none is made up.
    assert (record["status"], record["failure_reason"]) == ("FAILED", None)
    assert record["used"]["number_of_samples"] == 10  # read once, as it ended
    _code, out, _ = dfr("status")
    assert "FAILED" in out and "the API gives no reason" in out
    assert "quota exceeded" not in out and "dfr apply --replace alpha" in out


def test_a_vanished_run_is_drift_and_plans_a_create(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha", "beta")
    gone = str(ws.record("alpha")["run_id"])
    emu.forget(gone)

    # plan --refresh sees it without writing state.
    code, out, _ = dfr("plan", "--refresh", "--detailed-exitcode", "manifests")
    assert code == 2
    assert f"the recorded run {gone} no longer exists in the API (404)" in out
    assert ws.record("alpha")["drift"] is None

    code, _, err = dfr("refresh")
    assert code == 0 and f"alpha: run {gone} no longer exists in the API (404)" in err
    assert ws.record("alpha")["drift"] == "not_found"
    code, out, _ = dfr("status")
    row = next(line for line in out.splitlines() if line.startswith("alpha"))
    assert "GONE (404)" in row
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2 and "# alpha will be created" in out and "404" in out
    assert "Plan: 1 to create, 0 to replace, 0 orphaned." in out

    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert posts(emu) == 3
    record = ws.record("alpha")
    assert record["run_id"] != gone and record["drift"] is None
    assert emu_status(emu, str(record["run_id"])) == "PENDING"
