"""Saved plans end to end: `dfr plan --out F` then `dfr apply F`, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

from support.emulators import posts
from support.runner import POLL, Runner
from support.unfinished import apply_finished
from support.workspace import Workspace

from dfr_emulator import Emulator


def _save(dfr: Runner, *extra: str) -> Path:
    code, out, _ = dfr("plan", "--out", "the.plan", *extra, "manifests")
    assert code == 0 and "Saved the plan to the.plan" in out
    return Path("the.plan")


def test_a_valid_saved_plan_applies_without_confirmation(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    ws.write("beta")
    plan = _save(dfr)
    assert posts(emu) == 0
    # No terminal and no --auto-approve: the saved plan is the approval.
    code, out, err = dfr("apply", "--poll-interval", POLL, str(plan))
    assert code == 0, out + err
    assert posts(emu) == 2
    assert {r["status"] for r in ws.state_doc()["runs"].values()} == {"SUCCEEDED"}
    # Applying it a second time is refused: the state moved on.
    code, _, err = dfr("apply", str(plan))
    assert code == 1 and "make a new plan" in err
    assert posts(emu) == 2


def test_saved_plan_carries_its_options(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    apply_finished(ws, dfr, "alpha", "beta")
    ws.remove("beta")
    ws.write("alpha", number_of_samples=5)
    plan = _save(dfr, "--prune")
    code, out, _ = dfr("apply", "--prune", str(plan))
    assert code == 1  # options belong to `plan`, not to the apply of a saved plan
    code, out, err = dfr("apply", "--poll-interval", POLL, str(plan))
    assert code == 0, out + err
    assert set(ws.run_ids()) == {"alpha"} and posts(emu) == 3


def test_stale_plan_after_a_state_change_is_refused(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha", "beta")
    ws.write("alpha", number_of_samples=50)
    plan = _save(dfr)
    assert dfr("state", "rm", "beta").code == 0
    code, _out, err = dfr("apply", str(plan))
    assert code == 1
    assert "stale" in err and "state changed" in err
    assert posts(emu) == 2


def test_stale_plan_after_a_manifest_change_is_refused(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    plan = _save(dfr)
    ws.write("alpha", number_of_samples=11)
    code, _, err = dfr("apply", str(plan))
    assert code == 1 and "manifests changed" in err
    ws.write("alpha")
    ws.write("beta")  # a new manifest is a change too
    code, _, err = dfr("apply", str(plan))
    assert code == 1 and "manifests changed" in err
    assert posts(emu) == 0


def test_a_hand_edited_plan_is_refused(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    plan = _save(dfr)
    document = json.loads(plan.read_text())
    document["plan"]["changes"][0]["body"]["number_of_samples"] = 20000
    plan.write_text(json.dumps(document))
    code, _, err = dfr("apply", str(plan))
    assert code == 1 and "modified" in err
    plan.write_text('{"dfr_saved_plan": 1, ')  # truncated
    code, _, err = dfr("apply", str(plan))
    assert code == 1 and "error" in err
    assert posts(emu) == 0
