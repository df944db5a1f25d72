"""Evaluations against the emulator over real HTTP (issue 16, item 4).

A manifest's `evaluate:` asks dfr to start an evaluation once its run
SUCCEEDED: `plan` shows it as its own action, `apply` starts exactly one (a
paid POST: write-ahead intent, lost answers looked up, never a blind retry),
records its status and its largest requested-vs-evaluated gap per property
and overall, `status -l` / `--json` show them, and dfr.yaml's
`max_distribution_gap` makes apply exit 1 naming the run and the property.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from typing import Any

import pytest
from support.emulators import EmulatorProcess
from support.runner import Result, Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator

#: Evaluations finish within a few polls; the gap is known: 7.5 points on the
#: spec's first property, half of it on every other.
QUICK: dict[str, float] = {
    "evaluation_pending_seconds": 0.05,
    "evaluation_processing_seconds": 0.15,
    "evaluation_gap": 7.5,
}
pytestmark = pytest.mark.emulator(**QUICK)
EVALUATE = "evaluate:\n  model: openai/gpt-6-astra\n"


def write(ws: Workspace, name: str = "tickets", extra: str = EVALUATE) -> None:
    ws.write_text(name, manifest_text(name, extra))


def apply(dfr: Runner, *extra: str) -> Result:
    return dfr("apply", "--auto-approve", "--poll-interval", "0.05s", *extra, "manifests")


def write_and_apply(ws: Workspace, dfr: Runner, code: int, *extra: str) -> Result:
    """Write `tickets` with `evaluate:`, apply it with `extra`: it must exit `code`."""
    write(ws)
    r = apply(dfr, *extra)
    assert r.code == code, r.text
    return r


def evaluation(ws: Workspace, name: str = "tickets") -> dict[str, Any]:
    value: dict[str, Any] = ws.record(name)["evaluation"]
    return value


def the_one_evaluation(ws: Workspace, emu: Emulator) -> tuple[dict[str, Any], dict[str, Any]]:
    """The emulator made exactly one evaluation and state records its id: (made, record)."""
    (made,) = emu.evaluations()
    record = evaluation(ws)
    assert record["id"] == made["id"]
    return made, record


def finished_without_evaluate(ws: Workspace, dfr: Runner) -> str:
    """`tickets` applied, finished, with no `evaluate:` in its manifest: its run id."""
    write(ws, extra="")
    assert apply(dfr).code == 0
    return str(ws.record("tickets")["run_id"])


def evaluate_elsewhere(emu: Emulator, run_id: str) -> Any:
    """An evaluation of `run_id` started outside dfr, as the web app would."""
    from reconciler.api.client import client_from_env

    with client_from_env(emu.base_url) as client:
        return client.create_evaluation(run_id)


# -- plan ------------------------------------------------------------------------------------


def test_plan_shows_evaluate_as_its_own_action(ws: Workspace, dfr: Runner) -> None:
    write(ws)
    r = dfr("plan", "manifests")
    assert r.code == 0, r.text
    assert "# evaluation of tickets will be started" in r.out
    assert '+ evaluate "tickets" {' in r.out
    assert "after: run/tickets" in r.out
    assert "run_id           = (known after apply)" in r.out
    assert "Evaluations: 1 to start" in r.out
    doc = json.loads(dfr("plan", "--json", "manifests").out)
    (change,) = doc["evaluations"]
    assert change["action"] == "evaluate" and change["key"] == "evaluate/tickets"
    assert change["depends_on"] == ["run/tickets"]
    assert change["body"]["evaluation_model"] == "openai/gpt-6-astra"
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 2


def test_a_finished_run_without_evaluation_plans_one_with_its_id(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = finished_without_evaluate(ws, dfr)
    write(ws)  # evaluate: added later
    doc = json.loads(dfr("plan", "--json", "manifests").out)
    (change,) = doc["evaluations"]
    assert change["action"] == "evaluate" and change["depends_on"] == []
    assert change["body"] == {"run_id": run_id, "evaluation_model": "openai/gpt-6-astra"}
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 2


# -- apply: one evaluation, recorded ----------------------------------------------------------


def test_apply_starts_one_evaluation_and_records_status_and_gaps(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    r = write_and_apply(ws, dfr, 0)
    assert "tickets: started evaluation" in r.text
    made, record = the_one_evaluation(ws, emu)
    assert record["run_id"] == ws.record("tickets")["run_id"]
    assert record["status"] == "SUCCEEDED" and record["intent"] is None
    assert record["model"] == "openai/gpt-6-astra"
    assert record["max_gap"] == pytest.approx(7.5)
    first = made["distribution_analysis"][0]["property_name"]
    assert record["worst_property"] == first
    assert record["gaps"][first] == pytest.approx(7.5)
    assert all(g == pytest.approx(3.75) for p, g in record["gaps"].items() if p != first)
    # Converged: a second apply and plan ask for nothing more.
    assert apply(dfr).code == 0
    assert len(emu.evaluations()) == 1
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 0


def test_status_long_and_json_show_the_evaluation(ws: Workspace, dfr: Runner) -> None:
    write(ws)
    assert apply(dfr).code == 0
    record = evaluation(ws)
    long = dfr("status", "--long")
    assert long.code == 0
    assert f"evaluation: {record['id']} SUCCEEDED, model openai/gpt-6-astra" in long.out
    assert f"largest gap: 7.5 points ({record['worst_property']})" in long.out
    doc = json.loads(dfr("status", "--json").out)
    (run,) = doc["runs"]
    assert run["evaluation"]["max_gap"] == pytest.approx(7.5)
    assert run["evaluation"]["gaps"] == record["gaps"]


# -- the policy --------------------------------------------------------------------------------


def test_max_distribution_gap_fails_apply_naming_run_and_property(
    ws: Workspace, dfr: Runner
) -> None:
    ws.config("policy:\n  max_distribution_gap: 5\n")
    r = write_and_apply(ws, dfr, 1)
    record = evaluation(ws)
    run_id = ws.record("tickets")["run_id"]
    worst = record["worst_property"]
    line = f"tickets: run {run_id}: property {worst!r} is evaluated 7.5 percentage points"
    assert line in r.out
    assert "max_distribution_gap is 5" in r.out
    assert "1 over max_distribution_gap" in r.out
    # The properties within the limit (3.75 points) are not named.
    assert all(f"property {p!r}" not in r.out for p in record["gaps"] if p != worst)


def test_a_gap_within_the_limit_passes(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_distribution_gap: 10\n")
    r = write_and_apply(ws, dfr, 0)
    assert "max_distribution_gap" not in r.out


def test_the_policy_checks_evaluations_started_outside_dfr(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    # No evaluate: in the manifest; someone evaluated the run in the web app.
    run_id = finished_without_evaluate(ws, dfr)
    evaluate_elsewhere(emu, run_id)
    ws.config("policy:\n  max_distribution_gap: 2.5\n")
    r = apply(dfr, "--policy-change")
    assert r.code == 1, r.text
    assert f"tickets: run {run_id}: property" in r.out
    assert evaluation(ws)["status"] == "SUCCEEDED"
    assert len(emu.evaluations()) == 1  # dfr read it; it started none


def test_max_distribution_gap_is_part_of_the_recorded_policy(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_distribution_gap: 10\n")
    write(ws)
    assert apply(dfr).code == 0
    assert ws.state_doc()["policy"]["settings"] == {"max_distribution_gap": 10.0}
    ws.config("policy:\n  max_distribution_gap: 2\n")
    refused = apply(dfr)
    assert refused.code == 1
    assert "max_distribution_gap 10.0 -> 2.0" in refused.text
    assert "--policy-change" in refused.text
    assert apply(dfr, "--policy-change").code == 1  # now in force: 7.5 > 2
    assert ws.state_doc()["policy"]["settings"] == {"max_distribution_gap": 2.0}


def test_a_bad_max_distribution_gap_is_a_located_error(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_distribution_gap: -1\n")
    write(ws)
    r = dfr("validate", "manifests")
    assert r.code == 1
    assert any(line.startswith("dfr.yaml:2:") for line in r.lines(": error: "))


# -- a paid POST: exactly one evaluation --------------------------------------------------------


@pytest.mark.emulator(**QUICK, ambiguous_evaluation_posts=1)
def test_a_lost_answer_is_looked_up_not_sent_again(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    r = write_and_apply(ws, dfr, 0)
    assert "looking for the evaluation before anything else" in r.text
    _, record = the_one_evaluation(ws, emu)
    assert record["status"] == "SUCCEEDED"


@pytest.mark.emulator(**QUICK, evaluation_5xx_before_create_rate=1.0)
def test_a_5xx_without_effect_is_unresolved_never_retried_blindly(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    write_and_apply(ws, dfr, 1)
    assert emu.evaluations() == []
    assert evaluation(ws)["intent"] is not None  # kept: the next apply looks first
    emu.configure(evaluation_5xx_before_create_rate=0.0)
    plan = dfr("plan", "manifests")
    assert "will be looked up, else started" in plan.out
    assert apply(dfr).code == 0
    assert len(emu.evaluations()) == 1
    assert evaluation(ws)["intent"] is None


def test_no_wait_defers_the_evaluation_until_the_run_succeeded(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    r = write_and_apply(ws, dfr, 0, "--no-wait")
    assert "evaluation not started: the run is PENDING" in r.text
    assert emu.evaluations() == []
    assert ws.record("tickets")["evaluation"] is None
    assert apply(dfr).code == 0
    assert len(emu.evaluations()) == 1


# -- kills, with the emulator in its own process ---------------------------------------------------


def _evaluations(emu: EmulatorProcess) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{emu.url}/_emulator/evaluations", timeout=10) as answer:
        value: list[dict[str, Any]] = json.loads(answer.read())
    return value


@pytest.mark.parametrize("point", ["before-evaluation-post:1", "after-evaluation-post:1"])
def test_a_kill_around_the_post_leaves_exactly_one_evaluation(
    start_emulator: Any, workspace: Any, point: str
) -> None:
    emu = start_emulator(
        evaluation_pending_seconds=0.1, evaluation_processing_seconds=0.3, evaluation_gap=7.5
    )
    ws = workspace(emu)
    write(ws)
    killed = ws.dfr(*ws.apply_args(), crash_at=point)
    assert killed.code == -signal.SIGKILL, killed.text
    state = ws.record("tickets")["evaluation"]
    assert state["intent"] is not None and state["id"] is None  # durable before the POST
    expected_before = 0 if point.startswith("before") else 1
    assert len(_evaluations(emu)) == expected_before
    # The recovery grace is 0 in tests: a lost answer is looked up at once.
    again = ws.dfr(*ws.apply_args())
    assert again.code == 0, again.text
    (made,) = _evaluations(emu)
    record = ws.record("tickets")["evaluation"]
    assert record["id"] == made["id"] and record["intent"] is None
    assert record["status"] == "SUCCEEDED"


@pytest.mark.emulator(**(QUICK | {"evaluation_processing_seconds": 600}))
def test_refresh_records_an_evaluation_that_finished_later(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    r = write_and_apply(ws, dfr, 0, "--timeout", "1s")
    assert "stopped waiting for 1 evaluation(s)" in r.text
    assert evaluation(ws)["status"] in ("PENDING", "PROCESSING")
    assert evaluation(ws)["max_gap"] is None
    emu.advance(700)
    refreshed = dfr("refresh")
    assert refreshed.code == 0, refreshed.text
    assert "Read 1 unfinished evaluation." in refreshed.out
    assert evaluation(ws)["status"] == "SUCCEEDED"
    assert evaluation(ws)["max_gap"] == pytest.approx(7.5)
    assert len(emu.evaluations()) == 1


def test_an_evaluation_made_elsewhere_is_adopted_not_paid_twice(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = finished_without_evaluate(ws, dfr)
    made = evaluate_elsewhere(emu, run_id)
    write(ws)  # evaluate: added after someone evaluated the run in the web app
    r = apply(dfr)
    assert r.code == 0, r.text
    assert f"already has evaluation {made.id}; recorded it" in r.text
    assert len(emu.evaluations()) == 1
    assert evaluation(ws)["id"] == made.id
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 0


# -- saved plans and the Markdown plan ---------------------------------------------------------


def test_a_saved_plan_carries_its_evaluations(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    write(ws)
    assert dfr("plan", "--out", "p.plan", "manifests").code == 0
    saved = json.loads((ws.root / "p.plan").read_text())
    assert [e["key"] for e in saved["plan"]["evaluations"]] == ["evaluate/tickets"]
    r = dfr("apply", "--poll-interval", "0.05s", "p.plan")
    assert r.code == 0, r.text
    assert len(emu.evaluations()) == 1


def test_a_saved_plan_whose_evaluations_moved_is_refused(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    finished_without_evaluate(ws, dfr)
    assert dfr("plan", "--out", "p.plan", "manifests").code == 0
    write(ws)  # evaluate: added after the plan was saved (the run's body is the same)
    r = dfr("apply", "p.plan")
    assert r.code == 1
    assert "does not match what its manifests and state give" in r.text
    assert emu.evaluations() == []


def test_the_markdown_plan_lists_the_evaluations_to_start(ws: Workspace, dfr: Runner) -> None:
    write(ws)
    r = dfr("plan", "--format", "markdown", "manifests")
    assert r.code == 0, r.text
    assert "#### Evaluations to start (1, each paid like a run)" in r.out
    assert "`tickets` with `openai/gpt-6-astra` after `run/tickets`" in r.out


@pytest.mark.emulator(**QUICK, evaluation_fail_next=1)
def test_a_failed_evaluation_fails_apply_and_the_next_apply_asks_again(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    r = write_and_apply(ws, dfr, 1)
    record = evaluation(ws)
    assert record["status"] == "FAILED" and record["error"]
    assert f"evaluation {record['id']} ended FAILED" in r.out
    plan = dfr("plan", "manifests")
    assert "ended FAILED" in plan.out and "a new one is started" in plan.out
    again = apply(dfr)
    assert again.code == 0, again.text
    assert len(emu.evaluations()) == 2
    assert evaluation(ws)["status"] == "SUCCEEDED"
