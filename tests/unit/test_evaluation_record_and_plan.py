"""The run's evaluation in state (format 3) and the pure evaluation planner (issue 16).

The record round-trips through the state file; the hand-written fast path never
accepts an evaluation the schema refuses (fuzzed near the boundary); a record
without the key (a format-2 journal line) still reads. The planner asks for an
evaluation exactly when the run has none of its own, and `gap_problems` names
every property over the limit.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.evaluate import EvaluateAction, gap_problems, plan_evaluations
from reconciler.manifests import Evaluate, Manifest
from reconciler.policy import Policy, policy_changes
from reconciler.state import docschema, statefile
from reconciler.state.model import (
    FORMAT_VERSION,
    EvaluationRecord,
    Intent,
    RunRecord,
    State,
)
from reconciler.state.records import evaluation_to_dict, record_from_dict, record_to_dict

INTENT = Intent(id="i-1", body={"run_id": "r-1"}, at="2026-01-01T00:00:00Z")
FULL = EvaluationRecord(
    at="2026-01-01T00:01:00Z",
    run_id="r-1",
    id="e-1",
    status="SUCCEEDED",
    model="openai/gpt-6-astra",
    max_gap=7.5,
    worst_property="tone",
    gaps={"tone": 7.5, "topic": 3.75},
)


def record(evaluation: EvaluationRecord | None = FULL, **fields: Any) -> RunRecord:
    base: dict[str, Any] = {"run_id": "r-1", "status": "SUCCEEDED"}
    return RunRecord.new("a", spec={"spec_id": "s"}, now="t", **{**base, **fields}).evolve(
        now="t", evaluation=evaluation
    )


def test_the_record_round_trips_through_the_state_file() -> None:
    for evaluation in (FULL, EvaluationRecord(at="t", run_id="r-1", intent=INTENT), None):
        state = State(FORMAT_VERSION, 3, "L", {"a": record(evaluation)})
        again = statefile.loads(statefile.dumps(state), "mem")
        assert again.runs["a"].evaluation == evaluation


def test_a_record_without_the_key_reads_as_none() -> None:
    obj = record_to_dict(record())
    del obj["evaluation"]
    assert record_from_dict({"name": "a", **obj}).evaluation is None


BASE = record_to_dict(record(dataclasses.replace(FULL, intent=INTENT)))
KEYS = list(evaluation_to_dict(FULL) or {})
VALUES: st.SearchStrategy[object] = (
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 200) | st.text(max_size=3)
)
VALUES = VALUES | st.dictionaries(st.text(max_size=2), VALUES, max_size=2)


@st.composite
def near_records(draw: st.DrawFn) -> Any:
    obj = copy.deepcopy(BASE)
    evaluation = obj["evaluation"]
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["evaluation", "intent", "gaps"]))
        target = {
            "evaluation": evaluation,
            "intent": evaluation.get("intent"),
            "gaps": evaluation.get("gaps"),
        }[where]
        if not isinstance(target, dict):
            continue
        key = draw(st.sampled_from([*KEYS, "id", "body", "at", "tone", "extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    return obj


@given(near_records())
@settings(max_examples=400, derandomize=True, database=None)
def test_the_fast_path_accepts_only_what_the_schema_accepts(obj: Any) -> None:
    valid = not list(docschema._validator("/$defs/run").iter_errors(obj))
    if docschema._fast_run_ok(obj):
        assert valid, obj["evaluation"]
    assert docschema._fast_run_ok(BASE)


# -- the planner -----------------------------------------------------------------------


def manifest(model: str | None = None) -> Manifest:
    return Manifest("a", {"spec_id": "s"}, evaluate=Evaluate(model))


STATUSES = st.sampled_from([None, "PENDING", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELED"])
EVALUATIONS = st.none() | st.builds(
    EvaluationRecord,
    at=st.just("t"),
    run_id=st.sampled_from([None, "r-1", "R-1", "r-0"]),
    id=st.sampled_from([None, "e-1"]),
    status=st.sampled_from([None, "PENDING", "SUCCEEDED", "FAILED"]),
    intent=st.sampled_from([None, INTENT]),
    error=st.sampled_from([None, "refused"]),
)


@given(STATUSES, EVALUATIONS, st.booleans(), st.booleans())
def test_evaluate_exactly_when_the_run_has_no_evaluation_of_its_own(
    status: str | None, evaluation: EvaluationRecord | None, has_run: bool, submitting: bool
) -> None:
    runs = {"a": record(evaluation, status=status, run_id="r-1" if has_run else None)}
    (change,) = plan_evaluations(
        [manifest()], State(FORMAT_VERSION, 1, "L", runs), ["a"] if submitting else []
    )
    own = evaluation is not None and (
        evaluation.run_id is None or evaluation.run_id.lower() == "r-1"
    )
    if submitting or not has_run:
        assert change.acts and change.depends_on == ("run/a",)
    elif status in ("FAILED", "CANCELED"):
        assert not change.acts
    else:
        failed = evaluation is not None and evaluation.status == "FAILED"
        assert change.acts == (not own or evaluation is None or evaluation.id is None or failed)
        assert change.resolve_intent == (
            own
            and evaluation is not None
            and evaluation.intent is not None
            and evaluation.id is None
        )
        assert bool(change.depends_on) == (change.acts and status != "SUCCEEDED")
    if change.acts:
        assert change.action is EvaluateAction.EVALUATE and change.key == "evaluate/a"


def test_manifests_without_evaluate_plan_nothing() -> None:
    assert plan_evaluations([Manifest("a", {})], State(FORMAT_VERSION, 1, "L", {})) == ()


def test_gap_problems_name_every_property_over_the_limit() -> None:
    runs = {"a": record(), "b": record(None), "c": record(dataclasses.replace(FULL, run_id="r-0"))}
    problems, unchecked = gap_problems(3.0, runs, ["a", "b", "c"])
    assert [(p.name, p.property_name, p.gap) for p in problems] == [
        ("a", "tone", 7.5),
        ("a", "topic", 3.75),
    ]
    assert "property 'tone' is evaluated 7.5 percentage points" in problems[0].message
    assert unchecked == ["b", "c"]  # none, and one of an earlier run
    assert gap_problems(10.0, runs, ["a"]) == ([], [])
    assert gap_problems(None, runs, ["a", "b"]) == ([], [])


def test_the_policy_limit_is_canonical_and_worded_in_changes() -> None:
    assert Policy(max_distribution_gap=10).settings() == {"max_distribution_gap": 10.0}
    recorded = Policy.from_settings({"max_distribution_gap": 10.0}, source="state")
    assert recorded.settings() == Policy(max_distribution_gap=10).settings()
    assert recorded.active
    assert policy_changes({"max_distribution_gap": 10.0}, {}) == [
        "max_distribution_gap 10.0 -> (none)"
    ]
