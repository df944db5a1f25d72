"""`dfr apply` end to end: submissions, waiting, replaces, failures, refusals, pruning."""

from __future__ import annotations

from typing import Any

import pytest
from support.emulators import KEY, SLOW, cancels, emu_status, posts, requests, wait_for
from support.runner import Runner, apply_args
from support.unfinished import submit_unfinished
from support.workspace import Workspace

from dfr_emulator import SPEC_MEDICAL_NOTES, Emulator


def test_apply_submits_records_and_waits_then_reapplying_posts_nothing(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha", labels={"team": "a"})
    ws.write("beta", number_of_samples=30)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert "Apply complete: 2 submitted, 0 adopted, 2 succeeded" in out
    assert posts(emu) == 2 and emu.stats()["runs_created"] == 2
    doc = ws.state_doc()
    emulated = {r["id"] for r in emu.runs()}
    for name in ("alpha", "beta"):
        record = doc["runs"][name]
        assert record["run_id"] in emulated
        assert record["status"] == "SUCCEEDED"
        assert record["intent"] is None and record["attempts"] == 1
        assert record["samples_completed"] is not None and record["total_cost"] > 0
    assert doc["runs"]["alpha"]["labels"] == {"team": "a"}
    assert doc["runs"]["beta"]["spec"]["number_of_samples"] == 30
    assert "alpha: submitted run" in err and "alpha: SUCCEEDED" in err

    # Applying again: zero POSTs, same ids, exit 0; even without --auto-approve
    # (nothing to confirm) and with explicit defaults added.
    ws.write("alpha", labels={"team": "a"}, enable_revisions=False)
    code, out, _ = dfr("apply", "manifests")
    assert code == 0 and "No changes" in out
    assert posts(emu) == 2
    assert ws.state_doc()["runs"]["alpha"]["run_id"] == doc["runs"]["alpha"]["run_id"]


def test_changed_field_replaces_once_and_cancels_the_unfinished_run(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha", "beta")
    old = ws.record("alpha")["run_id"]
    ws.write("alpha", number_of_samples=99)
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert f"the current run {old} (PENDING) will be canceled" in out
    assert posts(emu) == 3  # one more, for alpha only
    assert cancels(emu) == 1 and emu_status(emu, old) == "CANCELED"
    record = ws.record("alpha")
    assert record["run_id"] != old and record["previous_run_ids"] == [old]
    assert record["spec"]["number_of_samples"] == 99 and record["attempts"] == 2
    assert emu.run(old) is not None  # canceled, never deleted
    assert emu.stats()["runs_deleted"] == 0


def test_replacing_a_finished_run_does_not_cancel_it(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    assert dfr(*apply_args("manifests")).code == 0
    old = ws.record("alpha")["run_id"]
    ws.write("alpha", number_of_samples=12)
    code, _out, _ = dfr(*apply_args("manifests"))
    assert code == 0
    assert posts(emu) == 2 and cancels(emu) == 0
    assert emu_status(emu, old) == "SUCCEEDED"
    assert ws.record("alpha")["previous_run_ids"] == [old]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"spec_version": 9}, "version 9"),
        ({"spec_id": SPEC_MEDICAL_NOTES}, "PROCESSING"),
    ],
)
def test_a_refused_manifest_leaves_the_others_applied(
    emu: Emulator, ws: Workspace, dfr: Runner, bad: dict[str, Any], words: str
) -> None:
    ws.write("alpha")
    ws.write("broken", **bad)
    ws.write("gamma")
    code, out, _err = dfr(*apply_args("manifests"))
    assert code == 1
    assert "broken: not submitted:" in out and words in out
    # Refused by the API (400/422), or blocked before any POST by the spec preflight.
    assert posts(emu) in (2, 3) and emu.stats()["runs_created"] == 2
    doc = ws.state_doc()["runs"]
    assert doc["alpha"]["status"] == doc["gamma"]["status"] == "SUCCEEDED"
    broken = doc["broken"]
    assert broken["run_id"] is None and broken["intent"] is None
    assert broken["last_error"]["status_code"] in (None, 400, 422)
    assert words in broken["last_error"]["message"]
    # The plan says why it will be tried again.
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2 and "the last submission failed" in out
    assert dfr("status").out.count("NOT SUBMITTED") == 1


def test_failed_run_is_reported_not_resubmitted_until_replace(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    ws.write("beta")
    emu.configure(fail_next=1)
    code, out, _ = dfr(*apply_args("manifests"))
    assert code == 1
    records = ws.state_doc()["runs"]
    failed = next(n for n, r in records.items() if r["status"] == "FAILED")
    assert records[failed]["failure_reason"] is None  # the run model has no reason
    assert f"{failed}: run {records[failed]['run_id']} ended FAILED: the API gives no reason" in out
    assert f"resubmit with: dfr apply --replace {failed}" in out
    assert "1 failed" in out and "Apply finished with problems" in out

    code, out, _ = dfr(*apply_args("manifests"))
    assert code == 1  # still failed, and not resubmitted
    assert posts(emu) == 2

    code, out, _ = dfr(*apply_args("--replace", failed, "manifests"))
    assert code == 0
    assert posts(emu) == 3
    record = ws.record(failed)
    assert record["status"] == "SUCCEEDED"
    assert record["previous_run_ids"] == [records[failed]["run_id"]]


def test_forced_failure_while_waiting_is_reported_with_what_the_api_says(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    run_id = ws.record("alpha")["run_id"]
    emu.force_status(run_id, "FAILED", "the seed data ran out")
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 1
    assert "alpha: FAILED: the API gives no reason" in err
    assert "the seed data ran out" not in err + out  # not a field of the run model
    assert "dfr apply --replace alpha" in out
    assert ws.record("alpha")["failure_reason"] is None
    assert posts(emu) == 1


def test_in_progress_spelling_is_understood(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    emu.configure(status_spelling="IN_PROGRESS", pending_seconds=0.0, processing_seconds=0.2)
    ws.write("alpha")
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert "IN_PROGRESS" not in err + out  # seen running, spelled the SDK's way
    assert ws.record("alpha")["status"] == "SUCCEEDED"
    emu.configure(processing_seconds=60.0)
    ws.write("beta")
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    beta = ws.record("beta")["run_id"]
    wait_for(lambda: emu_status(emu, beta) == "IN_PROGRESS")
    assert dfr("refresh").code == 0
    assert ws.record("beta")["status"] == "PROCESSING"
    assert "IN_PROGRESS" not in ws.state.read_text()


def test_no_wait_exits_0_once_submitted(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    emu.configure(**SLOW)
    ws.write("alpha")
    code, out, _ = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0
    assert "1 submitted" in out and "1 still running" in out
    record = ws.record("alpha")
    assert record["run_id"] and record["status"] == "PENDING"
    assert emu.stats()["requests"].get("runs.list", 0) == 0  # did not wait


def test_timeout_stops_waiting_with_exit_1_and_state_saved(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(**SLOW)
    ws.write("alpha")
    code, out, _ = dfr(*apply_args("--timeout", "0.3s", "manifests"))
    assert code == 1
    assert "Stopped waiting (--timeout)" in out
    record = ws.record("alpha")
    assert record["run_id"] == emu.runs()[0]["id"] and record["status"] == "PENDING"
    # A later apply does not submit it again.
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    assert posts(emu) == 1


def test_apply_without_a_terminal_refuses_without_posting(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    code, out, err = dfr("apply", "manifests")
    assert code == 1
    assert "--auto-approve" in err
    assert "# alpha will be created" in out  # the plan was shown
    assert posts(emu) == 0
    assert not ws.state.exists() or ws.state_doc()["runs"] == {}


def test_prune_cancels_unfinished_orphans_and_forgets_them(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("done")
    assert dfr(*apply_args("manifests")).code == 0
    submit_unfinished(emu, ws, dfr, "running", "kept")
    ids = ws.run_ids()
    ws.remove("done")
    ws.remove("running")

    # Without --prune: only reported, nothing canceled or forgotten.
    code, out, _ = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0 and "is orphaned" in out
    assert cancels(emu) == 0 and set(ws.run_ids()) == {"done", "running", "kept"}

    code, out, err = dfr(*apply_args("--no-wait", "--prune", "manifests"))
    assert code == 0, out + err
    assert "2 pruned" in out
    running, done = ids["running"], ids["done"]
    assert running is not None and done is not None
    assert cancels(emu) == 1 and emu_status(emu, running) == "CANCELED"
    assert emu_status(emu, done) == "SUCCEEDED"  # finished: not canceled
    assert set(ws.run_ids()) == {"kept"}
    assert emu.stats()["runs_deleted"] == 0 and emu.stats()["requests"].get("runs.delete", 0) == 0
    assert posts(emu) == 3


def test_missing_api_key_is_a_clear_error(
    emu: Emulator, ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("alpha")
    monkeypatch.delenv("DATAFRAMER_API_KEY")
    for args in (apply_args("manifests"), ["refresh"], ["import", "alpha", "x", "manifests"]):
        code, _out, err = dfr(*args)
        assert code == 1
        assert "DATAFRAMER_API_KEY" in err
    assert requests(emu) == 0
    # Offline commands do not need it.
    assert dfr("plan", "manifests").code == 0


def test_refused_api_key_is_a_clear_error(
    emu: Emulator, ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("alpha")
    wrong = "not-the-key-" + KEY[::-1]
    monkeypatch.setenv("DATAFRAMER_API_KEY", wrong)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 1
    assert "DATAFRAMER_API_KEY" in err
    assert wrong not in out + err
    assert emu.stats()["runs_created"] == 0
    assert emu.stats()["responses"].get("403", 0) + emu.stats()["responses"].get("401", 0) >= 1
    if ws.state.exists():  # refused at the first request: maybe nothing was recorded
        assert wrong not in ws.state.read_text()
        record = ws.state_doc()["runs"].get("alpha")
        assert record is None or (record["run_id"] is None and record["intent"] is None)
    # With the right key, the next apply submits it.
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    assert dfr(*apply_args("manifests")).code == 0
    assert emu.stats()["runs_created"] == 1


def test_prune_with_no_manifests_found_is_refused_and_cancels_nothing(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    """`dfr apply --prune` in the wrong folder must not cancel every run in state."""
    submit_unfinished(emu, ws, dfr, "keep-me")
    (ws.root / "empty").mkdir()
    code, _out, err = dfr("apply", "--auto-approve", "--prune", "empty")
    assert code == 1
    assert "warning: no manifests found under empty" in err
    assert "refusing to prune" in err
    assert cancels(emu) == 0
    assert ws.run_ids()["keep-me"] is not None
