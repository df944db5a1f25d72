"""Hostile evaluations (issue 16, item 4): odd `distribution_analysis` answers, odd
policies in dfr.yaml, and what `max_distribution_gap` does when it cannot tell.

The emulator's `rewrite` turns its evaluation answers into what a broken API
might send, over real HTTP. The promises: exactly one evaluation is paid for;
a policy never passes a run it could not check; every odd answer or setting
ends in one line and exit 1, never a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from support.runner import Result, Runner
from support.workspace import Workspace, manifest_text
from test_evaluations import EVALUATE, QUICK, the_one_evaluation

from dfr_emulator import Emulator

pytestmark = pytest.mark.emulator(**QUICK)


def _apply(ws: Workspace, dfr: Runner, *extra: str) -> Result:
    ws.write_text("tickets", manifest_text("tickets", EVALUATE))
    return dfr("apply", "--auto-approve", "--poll-interval", "0.05s", *extra, "manifests")


def _analysis_as(change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def rewrite(answer: Any) -> Any:
        if isinstance(answer, dict) and answer.get("distribution_analysis") is not None:
            answer["distribution_analysis"] = change(answer["distribution_analysis"])
        return answer

    return rewrite


def _each_property(**fields: Any) -> Callable[[Any], Any]:
    return lambda analysis: [{**p, **fields} for p in analysis]


SHAPES: dict[str, Callable[[Any], Any]] = {
    "empty list": lambda analysis: [],
    "an object": lambda analysis: {"tone": analysis},
    "a string": lambda analysis: "n/a",
    "items not objects": lambda analysis: [1, "two", None],
    "no requested": _each_property(requested_distributions=None),
    "no evaluated": _each_property(evaluated_distributions=None),
    "strings for numbers": lambda analysis: [
        {**p, "evaluated_distributions": {k: "lots" for k in p["evaluated_distributions"]}}
        for p in analysis
    ],
    "NaN": lambda analysis: [
        {**p, "evaluated_distributions": {k: math.nan for k in p["evaluated_distributions"]}}
        for p in analysis
    ],
    "lists for shares": _each_property(evaluated_distributions=[1, 2]),
    "no property name": _each_property(property_name=None),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_an_unreadable_analysis_never_passes_the_policy(
    ws: Workspace, dfr: Runner, emu: Emulator, shape: str
) -> None:
    ws.config("policy:\n  max_distribution_gap: 5\n")
    emu.rewrite("evaluations.get", _analysis_as(SHAPES[shape]))
    result = _apply(ws, dfr)
    assert "Traceback" not in result.err
    assert len(emu.evaluations()) == 1
    assert result.code == 1, result.text
    run_id = ws.record("tickets")["run_id"]
    assert f"tickets: run {run_id}: " in result.out
    assert "not checked (no finished evaluation yet)" not in result.out


@pytest.mark.parametrize(
    "value", ["-1", "101", "ten", ".nan", ".inf", "true", "null", "[5]", "{a: 1}", "1e400", "''"]
)
def test_an_odd_max_distribution_gap_is_a_located_error_everywhere(
    ws: Workspace, dfr: Runner, emu: Emulator, value: str
) -> None:
    ws.config(f"policy:\n  max_distribution_gap: {value}\n")
    ws.write_text("tickets", manifest_text("tickets", EVALUATE))
    for command in (("validate",), ("plan",), ("apply", "--auto-approve")):
        result = dfr(*command, "manifests")
        assert result.code == 1, (command, result.text)
        assert "Traceback" not in result.err
        errors = result.lines(": error: ")
        assert errors and errors[0].startswith("dfr.yaml:2:"), (command, result.text)
    assert emu.runs() == [] and emu.evaluations() == []


def test_a_gap_of_zero_demands_an_exact_match(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    ws.config("policy:\n  max_distribution_gap: 0\n")
    result = _apply(ws, dfr)
    assert result.code == 1, result.text
    assert "(policy max_distribution_gap is 0)" in result.out
    assert len(emu.evaluations()) == 1


def _without_id(answer: Any) -> Any:
    return {k: v for k, v in answer.items() if k != "id"} if isinstance(answer, dict) else answer


@pytest.mark.parametrize(
    "change",
    [_without_id, lambda a: {**a, "id": None}, lambda a: {**a, "id": 42}, lambda a: []],
    ids=["no id", "null id", "number id", "a list"],
)
def test_a_create_answer_without_a_usable_id_is_looked_up_never_paid_twice(
    ws: Workspace, dfr: Runner, emu: Emulator, change: Callable[[Any], Any]
) -> None:
    emu.rewrite("evaluations.create", change)
    first = _apply(ws, dfr)
    assert "Traceback" not in first.err
    emu.rewrite("evaluations.create", None)
    for _ in range(2):
        again = _apply(ws, dfr)
        assert "Traceback" not in again.err
    the_one_evaluation(ws, emu)


@pytest.mark.emulator(**{**QUICK, "evaluation_pending_seconds": 3600.0})
def test_an_evaluation_stuck_pending_is_kept_not_started_again(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    first = _apply(ws, dfr, "--timeout", "1s")
    assert "Traceback" not in first.err
    _, record = the_one_evaluation(ws, emu)
    assert record["status"] == "PENDING"
    again = _apply(ws, dfr, "--timeout", "1s")
    assert "Traceback" not in again.err
    assert len(emu.evaluations()) == 1


@pytest.mark.parametrize("status", ["COMPLETED", "succeeded", None, 7, ""], ids=repr)
def test_an_odd_evaluation_status_never_hangs_nor_pays_twice(
    ws: Workspace, dfr: Runner, emu: Emulator, status: object
) -> None:
    def odd(answer: Any) -> Any:
        return {**answer, "status": status} if isinstance(answer, dict) else answer

    emu.rewrite("evaluations.get", odd)
    emu.rewrite("runs.evaluations", lambda items: [odd(i) for i in items])
    first = _apply(ws, dfr, "--timeout", "2s")
    assert "Traceback" not in first.err
    again = _apply(ws, dfr, "--timeout", "2s")
    assert "Traceback" not in again.err
    the_one_evaluation(ws, emu)


@pytest.mark.parametrize(
    "listing",
    [{"results": "x"}, "nope", [1, None, "x"], [{"id": None}], {"detail": "Not found."}],
    ids=repr,
)
def test_an_odd_evaluation_listing_is_one_line_never_a_second_evaluation(
    ws: Workspace, dfr: Runner, emu: Emulator, listing: object
) -> None:
    emu.configure(ambiguous_evaluation_posts=1)  # so dfr must look the evaluation up
    emu.rewrite("runs.evaluations", lambda items: listing)
    result = _apply(ws, dfr)
    assert "Traceback" not in result.err
    # Unreadable, the listing stops the evaluation before its POST (exit 1, one
    # line); a listing of nothing usable lets it start, once.
    assert len(emu.evaluations()) == (1 if listing == [{"id": None}] else 0), result.text
    assert result.code == 1, result.text
    emu.rewrite("runs.evaluations", None)
    assert _apply(ws, dfr).code == 0
    the_one_evaluation(ws, emu)


@pytest.mark.emulator(**{**QUICK, "ambiguous_evaluation_posts": 2})
def test_two_evaluate_runs_whose_answers_were_lost_each_find_their_own(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    for name in ("tickets", "reviews"):
        ws.write_text(name, manifest_text(name, EVALUATE))
    result = dfr("apply", "--auto-approve", "--poll-interval", "0.05s", "manifests")
    assert result.code == 0, result.text
    made = {e["run_id"].lower(): e["id"] for e in emu.evaluations()}
    assert len(made) == 2 and len(emu.evaluations()) == 2
    for name in ("tickets", "reviews"):
        record = ws.record(name)
        assert record["evaluation"]["id"] == made[record["run_id"].lower()]


@pytest.mark.parametrize("where", ["property name", "error message", "status"])
def test_the_key_echoed_in_an_evaluation_never_reaches_output_or_state(
    ws: Workspace, dfr: Runner, emu: Emulator, where: str
) -> None:
    """The runner fails the test if the key reaches stdout or stderr, the workspace
    fixture if it reaches any file (the state among them)."""
    from support.emulators import KEY

    ws.config("policy:\n  max_distribution_gap: 5\n")
    if where == "property name":
        emu.rewrite("evaluations.get", _analysis_as(_each_property(property_name=KEY)))
    elif where == "error message":
        emu.configure(evaluation_fail_next=1)
        emu.rewrite(
            "evaluations.get", lambda a: {**a, "error_message": f"bad key {KEY}"} if a else a
        )
    else:
        emu.rewrite("evaluations.get", lambda a: {**a, "status": KEY} if a else a)
    result = _apply(ws, dfr, "--timeout", "2s")
    # An unknown status is waited for (until --timeout here), then reported as not
    # checked: not a failure, as for any evaluation not finished yet.
    assert result.code == (0 if where == "status" else 1), result.text
    assert len(emu.evaluations()) == 1
