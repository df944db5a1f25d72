"""The policy in force is kept with the state: another dfr.yaml cannot drop or loosen it.

`--config other.yaml`, `DFR_CONFIG` and running from a folder without dfr.yaml used to
drop the policy. Now the first apply under a policy records it in state; from then on
plan checks against the recorded policy and shows a difference, and apply refuses a
different (or missing) one unless `--policy-change`, which records the new one under
the lock before anything is submitted. Saved plans remember the policy they were made
under. Through the real CLI against the emulator with a state file; the postgres
backend's twin is tests/postgres/test_policy.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from support.emulators import count
from support.runner import Runner, apply_args
from support.workspace import Workspace

from dfr_emulator import Emulator

pytestmark = pytest.mark.repo

STRICT = "policy:\n  max_samples_per_run: 1000\n"
LOOSE = "policy:\n  max_samples_per_run: 5000\n"


def stored(ws: Workspace) -> dict[str, Any] | None:
    policy: dict[str, Any] | None = json.loads((ws.root / "dfr.state.json").read_text()).get(
        "policy"
    )
    return policy


def settings_in_force(ws: Workspace) -> dict[str, Any]:
    """The settings of the policy recorded in state (one must be recorded)."""
    policy = stored(ws)
    assert policy is not None
    settings: dict[str, Any] = policy["settings"]
    return settings


def digest(settings: dict[str, Any]) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def posts(emu: Emulator) -> int:
    return count(emu, "runs.create")


def test_the_first_apply_records_the_policy_and_says_so(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.config(STRICT + "  required_labels: [team, env]\n")
    ws.write_text("a", samples=500, labels={"team": "x", "env": "dev"})
    r = dfr("plan")
    assert r.code == 0 and "dfr.yaml's policy will be recorded in state" in r.out
    r = dfr(*apply_args())
    assert r.code == 0, r.err
    assert "Recorded the policy of dfr.yaml in state dfr.state.json" in r.err
    settings = {"max_samples_per_run": 1000, "required_labels": ["env", "team"]}
    policy = stored(ws)
    assert policy is not None
    assert policy["settings"] == settings and policy["sha256"] == digest(settings)
    assert policy["source"] == "dfr.yaml" and policy["at"]
    # Recorded once: the next apply and plan say nothing of it.
    serial = json.loads((ws.root / "dfr.state.json").read_text())["serial"]
    r = dfr(*apply_args())
    assert r.code == 0 and "Recorded the policy" not in r.err and "Policy" not in r.out
    assert json.loads((ws.root / "dfr.state.json").read_text())["serial"] == serial
    assert "Policy" not in dfr("plan").out
    # The same policy written another way (keys and lists in another order) is no change.
    ws.config("policy:\n  required_labels: [team, env]\n  max_samples_per_run: 1000\n")
    assert dfr(*apply_args()).code == 0 and stored(ws) == policy


@pytest.mark.parametrize("how", ["--config", "DFR_CONFIG", "another folder"])
def test_a_policy_loosened_another_way_is_refused_until_policy_change(
    how: str,
    ws: Workspace,
    dfr: Runner,
    emu: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ws.config(STRICT)
    ws.write_text("a", samples=500)
    assert dfr(*apply_args()).code == 0
    ws.write_text("b", samples=3000)  # over the policy in force, within the loose one
    (ws.root / "other.yaml").write_text(LOOSE)
    args: tuple[str, ...] = ()
    change = "max_samples_per_run 1000 -> 5000 (other.yaml)"
    if how == "--config":
        args = ("--config", "other.yaml")
    elif how == "DFR_CONFIG":
        monkeypatch.setenv("DFR_CONFIG", "other.yaml")
    else:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)
        args = ("--state", str(ws.root / "dfr.state.json"), str(ws.manifests))
        change = "max_samples_per_run 1000 -> (none) (no dfr.yaml found)"

    r = dfr(*apply_args(*args))
    assert r.code == 1 and posts(emu) == 1
    assert "refusing to apply: the policy in force for state" in r.err
    assert change.split(" (")[0] in r.err and "--policy-change" in r.err
    goal = "drop the policy" if how == "another folder" else "make other.yaml's policy the one"
    assert f"or, to {goal}" in r.err
    assert settings_in_force(ws) == {"max_samples_per_run": 1000}

    # plan checks the manifests against the policy in force, and shows the difference.
    r = dfr("plan", *args)
    assert r.code == 1 and f"Policy change: {change}; apply needs --policy-change" in r.err
    assert "3,000 samples is over the limit of 1,000 per run" in r.err
    assert "the policy in force for state" in r.err
    r = dfr("plan", "--policy-change", *args)
    assert r.code == 0, r.err
    assert f"Policy change: {change}; apply --policy-change records it in state" in r.out

    r = dfr(*apply_args("--policy-change", *args))
    assert r.code == 0, r.err
    assert posts(emu) == 2 and "Recorded " in r.err
    after = stored(ws)
    if how == "another folder":
        assert after is None  # no policy: nothing in force any more
    else:
        assert after is not None and after["settings"] == {"max_samples_per_run": 5000}
        # Now the team's own dfr.yaml is the different one: refused in turn.
        monkeypatch.delenv("DFR_CONFIG", raising=False)
        ws.write_text("b", samples=500)
        r = dfr(*apply_args())
        assert r.code == 1 and "max_samples_per_run 5000 -> 1000 (dfr.yaml)" in r.err


def test_a_stricter_policy_is_a_change_too(ws: Workspace, dfr: Runner) -> None:
    ws.config(LOOSE)
    ws.write_text("a", samples=500)
    assert dfr(*apply_args()).code == 0
    ws.config(STRICT + "  allowed_models: [anthropic/claude-haiku-4-5]\n")
    models = "  generation_model: anthropic/claude-haiku-4-5\n"
    ws.write_text("a", samples=500, extra=models + models.replace("generation", "outline"))
    r = dfr(*apply_args())
    assert r.code == 1
    assert (
        "max_samples_per_run 5000 -> 1000; allowed_models (any) -> anthropic/claude-haiku-4-5"
        in r.err
    )


def test_validate_keeps_using_dfr_yaml(ws: Workspace, dfr: Runner) -> None:
    ws.config(STRICT)
    ws.write_text("a", samples=500)
    assert dfr(*apply_args()).code == 0
    ws.config(LOOSE)
    ws.write_text("b", samples=3000)
    assert dfr("validate", "runs").code == 0  # no state: dfr.yaml's policy


def test_plan_out_is_not_saved_under_a_policy_apply_would_refuse(
    ws: Workspace, dfr: Runner
) -> None:
    ws.config(STRICT)
    ws.write_text("a", samples=500)
    assert dfr(*apply_args()).code == 0
    ws.config("policy:\n  max_samples_per_run: 900\n")
    ws.write_text("b", samples=500)
    r = dfr("plan", "--out", "p.plan")
    assert r.code == 1 and not (ws.root / "p.plan").exists()
    assert "The plan was not saved to p.plan" in r.err and "--policy-change" in r.err


def test_a_saved_plan_made_under_one_policy_is_refused_under_another(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.config(STRICT)
    ws.write_text("a", samples=500)
    assert dfr(*apply_args()).code == 0
    ws.write_text("b", samples=500)
    assert dfr("plan", "--out", "p1.plan").code == 0
    ws.config("policy:\n  max_samples_per_run: 800\n")  # b still fits
    r = dfr("apply", "p1.plan")
    assert r.code == 1 and posts(emu) == 1
    assert "refusing to apply: the policy in force" in r.err
    r = dfr("apply", "--policy-change", "p1.plan")
    assert r.code == 1 and posts(emu) == 1
    assert "p1.plan was made under another policy" in r.err
    assert settings_in_force(ws) == {"max_samples_per_run": 1000}

    # A plan made with --policy-change records the change when it is applied.
    r = dfr("plan", "--policy-change", "--out", "p2.plan")
    assert r.code == 0, r.err
    assert "Policy change: max_samples_per_run 1000 -> 800 (dfr.yaml)" in r.out
    r = dfr("apply", "p2.plan")
    assert r.code == 0, r.err
    assert posts(emu) == 2 and settings_in_force(ws) == {"max_samples_per_run": 800}

    ws.config("policy:\n  max_samples_per_run: 600\n")
    ws.write_text("c", samples=500)
    assert dfr("plan", "--policy-change", "--out", "p3.plan").code == 0
    ws.config("policy:\n  max_samples_per_run: 700\n")
    r = dfr("apply", "p3.plan")
    assert r.code == 1 and "p3.plan was made under another policy" in r.err
    assert posts(emu) == 2 and settings_in_force(ws) == {"max_samples_per_run": 800}


def test_plan_json_carries_the_policy(ws: Workspace, dfr: Runner) -> None:
    ws.config(STRICT)
    ws.write_text("a", samples=500)
    r = dfr("plan", "--json")
    assert json.loads(r.out)["policy"]["action"] == "record"
    assert dfr(*apply_args()).code == 0
    assert "policy" not in json.loads(dfr("plan", "--json").out)
    (ws.root / "other.yaml").write_text(LOOSE)
    doc = json.loads(dfr("plan", "--json", "--config", "other.yaml").out)
    assert doc["policy"] == {
        "action": "refused",
        "changes": ["max_samples_per_run 1000 -> 5000"],
        "in_force": {"max_samples_per_run": 1000},
        "in_force_sha256": digest({"max_samples_per_run": 1000}),
        "file": "other.yaml",
        "file_policy": {"max_samples_per_run": 5000},
        "file_sha256": digest({"max_samples_per_run": 5000}),
    }
    doc = json.loads(dfr("plan", "--json", "--config", "other.yaml", "--policy-change").out)
    assert doc["policy"]["action"] == "change"
