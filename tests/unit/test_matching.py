"""Does a run answer a body? The one rule behind recovery, import and plan.

The runs here are shaped as the official SDK describes them: `runtime_params`
with every create field but `spec_id`, `spec_version` and `enable_revisions`,
nulls where a setting does not apply, spec ids in lower case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reconciler.manifests import Manifest
from reconciler.matching import (
    body_of,
    mismatches,
    recorded_matches,
    run_mismatches,
    used_of,
)
from reconciler.plan import MISSING, Action, FieldChange, make_plan
from reconciler.state.model import RunRecord, State

SPEC = "3C90C3CC-0D44-4B50-8888-8DD25736052A"
THINKING = "anthropic/claude-sonnet-5-5-thinking"
PLAIN = "anthropic/claude-haiku-4-5"


def api_params(body: dict[str, Any]) -> dict[str, Any]:
    """What an SDK-shaped API reports for `body`: its values over made-up defaults."""
    gen = body.get("generation_model", THINKING)
    out_model = body.get("outline_model", THINKING)
    rev_model = body.get("revision_model", THINKING)
    revision_types = list(body.get("revision_types", []))
    filtering_types = list(body.get("filtering_types", []))
    if body.get("enable_revisions") and not {"revision_types", "filtering_types"} & body.keys():
        # "When set to true without those fields, enables all revision types and
        # structural filtering" (the SDK's docstring).
        revision_types = ["coherence_flow", "consistency", "conformance"]
        filtering_types = ["structural"]
    on = bool(revision_types or filtering_types)

    def budget(name: str, model: str) -> int | None:
        return body.get(name, 8000) if model.endswith("-thinking") else None

    return {
        "number_of_samples": body["number_of_samples"],
        "generation_model": gen,
        "generation_thinking_budget": budget("generation_thinking_budget", gen),
        "outline_model": out_model,
        "outline_thinking_budget": budget("outline_thinking_budget", out_model),
        "revision_model": rev_model if on else None,
        "revision_thinking_budget": budget("revision_thinking_budget", rev_model) if on else None,
        "max_revision_cycles": body.get("max_revision_cycles", 1) if on else None,
        "revision_types": revision_types,
        "filtering_types": filtering_types,
        "skip_outline": body.get("skip_outline", False),
        "tools": list(body.get("tools", [])),
        "seed_shuffling_level": body.get("seed_shuffling_level", "none"),
        "max_examples_in_prompt": body.get("max_examples_in_prompt"),
        "unified_multifield": body.get("unified_multifield", True),
    }


@dataclass
class FakeRun:
    spec_id: str | None
    spec_version: int | None
    runtime_params: dict[str, Any] | None = field(default_factory=dict)


def run_for(body: dict[str, Any], *, version: int = 3) -> FakeRun:
    return FakeRun(
        spec_id=str(body["spec_id"]).lower(),
        spec_version=body.get("spec_version", version),
        runtime_params=api_params(body),
    )


def body(**fields: Any) -> dict[str, Any]:
    return {"spec_id": SPEC, "number_of_samples": 10, **fields}


# -- the rules, one by one ------------------------------------------------------------------


def test_a_default_body_matches_the_run_the_api_made_of_it() -> None:
    # The duplicate of issue 12: nulls for revision settings, no enable_revisions key,
    # a lower-case spec id. All of it is the same run.
    assert run_mismatches(body(), run_for(body())) == []


def test_spec_ids_compare_in_any_letter_case() -> None:
    assert run_mismatches(body(), FakeRun(SPEC.lower(), 1, None)) == []
    other = run_mismatches(body(), FakeRun("6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c", 1, None))
    assert [m.field for m in other] == ["spec_id"]


def test_fields_left_out_match_anything_and_stated_ones_must_agree() -> None:
    run = run_for(body(number_of_samples=10, generation_model=PLAIN))
    assert run_mismatches(body(), run) == []
    found = run_mismatches(body(generation_model=THINKING), run)
    assert [(m.field, m.wanted, m.found) for m in found] == [("generation_model", THINKING, PLAIN)]
    assert "the run has 'anthropic/claude-haiku-4-5'" in found[0].describe()


def test_revision_settings_match_null_when_revisions_are_off() -> None:
    sent = body(revision_model=PLAIN, max_revision_cycles=3, revision_thinking_budget=100)
    run = run_for(body())  # revisions off: the API reports all three as null
    assert run_mismatches(sent, run) == []
    # ... but not when revisions are on and the API reports another value.
    on = run_for(body(revision_types=["consistency"], max_revision_cycles=2))
    wrong = run_mismatches(body(revision_types=["consistency"], max_revision_cycles=4), on)
    assert [m.field for m in wrong] == ["max_revision_cycles"]


def test_a_thinking_budget_matches_null_for_a_model_without_thinking() -> None:
    sent = body(generation_model=PLAIN, generation_thinking_budget=5000)
    assert run_mismatches(sent, run_for(body(generation_model=PLAIN))) == []
    thinking = body(generation_model=THINKING, generation_thinking_budget=5000)
    assert run_mismatches(thinking, run_for(thinking)) == []
    other = run_mismatches(thinking, run_for(body(generation_model=THINKING)))
    assert [m.field for m in other] == ["generation_thinking_budget"]


def test_a_stated_value_that_comes_back_null_where_it_applies_differs() -> None:
    run = run_for(body())  # max_examples_in_prompt not set: null
    assert [m.field for m in run_mismatches(body(max_examples_in_prompt=4), run)] == [
        "max_examples_in_prompt"
    ]


def test_lists_compare_as_sets() -> None:
    sent = body(revision_types=["consistency", "coherence_flow"], tools=["calculator"])
    run = run_for(body(revision_types=["coherence_flow", "consistency"], tools=["calculator"]))
    assert run_mismatches(sent, run) == []
    fewer = run_mismatches(body(revision_types=["consistency"]), run)
    assert [m.field for m in fewer] == ["revision_types"]


def test_enable_revisions_is_judged_by_what_the_api_turned_on() -> None:
    on = run_for(body(enable_revisions=True))
    off = run_for(body())
    assert run_mismatches(body(enable_revisions=True), on) == []
    assert run_mismatches(body(enable_revisions=False), off) == []
    assert [m.field for m in run_mismatches(body(enable_revisions=True), off)] == [
        "enable_revisions"
    ]
    # An API that still reports the key (the old page's) is compared directly.
    legacy = FakeRun(SPEC, 1, {"enable_revisions": False, "number_of_samples": 10})
    assert run_mismatches(body(enable_revisions=False), legacy) == []
    assert run_mismatches(body(enable_revisions=True), legacy) != []


def test_spec_version_must_agree_only_when_the_body_pins_one() -> None:
    run = run_for(body(), version=3)
    assert run_mismatches(body(), run) == []
    assert run_mismatches(body(spec_version=3), run) == []
    assert [m.field for m in run_mismatches(body(spec_version=2), run)] == ["spec_version"]


def test_no_runtime_params_leaves_only_spec_and_version_to_compare() -> None:
    assert (
        mismatches(body(skip_outline=True), spec_id=SPEC, spec_version=1, runtime_params=None) == []
    )


def test_a_boolean_is_never_equal_to_a_number() -> None:
    run = FakeRun(SPEC, 1, {"number_of_samples": 1, "skip_outline": 1})
    found = run_mismatches(body(number_of_samples=True, skip_outline=True), run)
    assert [m.field for m in found] == ["number_of_samples", "skip_outline"]


def test_used_and_body_of_a_run() -> None:
    run = run_for(body(generation_model=PLAIN), version=2)
    used = used_of(run)
    assert used["spec_version"] == 2 and used["revision_model"] is None
    rebuilt = body_of(run)
    assert rebuilt["spec_id"] == SPEC.lower() and "revision_model" not in rebuilt
    assert run_mismatches(rebuilt, run) == []


# -- properties -----------------------------------------------------------------------------

MODELS = st.sampled_from([THINKING, PLAIN, "openai/gpt-oss-120b", "moonshotai/Kimi-K3"])
OPTIONAL: dict[str, Any] = {
    "spec_version": st.integers(1, 5),
    "generation_model": MODELS,
    "outline_model": MODELS,
    "revision_model": MODELS,
    "generation_thinking_budget": st.integers(1, 50_000),
    "outline_thinking_budget": st.integers(1, 50_000),
    "revision_thinking_budget": st.integers(1, 50_000),
    "revision_types": st.lists(
        st.sampled_from(["coherence_flow", "consistency", "distinguishability", "conformance"]),
        unique=True,
    ),
    "filtering_types": st.lists(st.sampled_from(["structural", "conformance"]), unique=True),
    "max_revision_cycles": st.integers(1, 5),
    "enable_revisions": st.booleans(),
    "tools": st.lists(st.sampled_from(["calculator", "search"]), unique=True),
    "skip_outline": st.booleans(),
    "seed_shuffling_level": st.sampled_from(["none", "sample", "field", "prompt"]),
    "max_examples_in_prompt": st.integers(1, 50),
    "unified_multifield": st.booleans(),
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    chosen = draw(st.sets(st.sampled_from(sorted(OPTIONAL))))
    out = {
        "spec_id": draw(st.sampled_from([SPEC, SPEC.lower()])),
        "number_of_samples": draw(st.integers(1, 20_000)),
    }
    for name in sorted(chosen):
        out[name] = draw(OPTIONAL[name])
    return out


@given(bodies(), st.randoms())
def test_every_body_matches_the_run_the_api_made_of_it(sent: dict[str, Any], rnd: Any) -> None:
    run = run_for(sent)
    for name in ("revision_types", "filtering_types", "tools"):
        if isinstance(run.runtime_params, dict) and run.runtime_params.get(name):
            rnd.shuffle(run.runtime_params[name])  # any order the API likes
    assert run_mismatches(sent, run) == []


@given(bodies(), st.integers(1, 20_000))
def test_another_sample_count_is_never_the_same_run(sent: dict[str, Any], other: int) -> None:
    run = run_for({**sent, "number_of_samples": other})
    found = [m.field for m in run_mismatches(sent, run)]
    assert ("number_of_samples" in found) == (other != sent["number_of_samples"])


@given(bodies())
def test_the_plan_of_a_body_against_its_own_run_is_a_noop(sent: dict[str, Any]) -> None:
    run = run_for(sent)
    record = RunRecord.new("a", spec=sent, run_id="r", status="SUCCEEDED", used=used_of(run))
    state = State.empty().with_record(record)
    plan = make_plan([Manifest("a", sent)], state)
    assert [c.action for c in plan.changes] == [Action.NOOP]


# -- the planner: sent, used, and what the manifest states -----------------------------------


def plan_of(spec: dict[str, Any], record: RunRecord) -> Any:
    return make_plan([Manifest("a", spec)], State.empty().with_record(record)).changes[0]


def test_pinning_the_spec_version_a_run_used_is_not_a_change() -> None:
    record = RunRecord.new(
        "a", spec=body(), run_id="r", status="SUCCEEDED", used={"spec_version": 3}
    )
    assert plan_of(body(spec_version=3), record).action is Action.NOOP
    change = plan_of(body(spec_version=2), record)
    assert change.action is Action.REPLACE
    assert change.fields == (FieldChange("spec_version", 3, 2),)


def test_a_field_neither_sent_nor_reported_is_a_change() -> None:
    record = RunRecord.new("a", spec=body(), run_id="r", status="PENDING")
    change = plan_of(body(skip_outline=True), record)
    assert change.action is Action.REPLACE
    assert change.fields == (FieldChange("skip_outline", MISSING, True),)


def test_naming_the_model_the_api_chose_is_not_a_change() -> None:
    used = used_of(run_for(body()))
    record = RunRecord.new("a", spec=body(), run_id="r", status="SUCCEEDED", used=used)
    assert plan_of(body(generation_model=THINKING), record).action is Action.NOOP
    assert plan_of(body(generation_model=PLAIN), record).action is Action.REPLACE


def test_a_state_written_with_the_old_pages_defaults_plans_no_change() -> None:
    # dfr before 0.x filled the old page's defaults into what it sent and recorded.
    old = body(
        generation_model="gemini/gemini-3-pro-preview-thinking",
        outline_model="gemini/gemini-3-pro-preview-thinking",
        revision_model="gemini/gemini-3-pro-preview-thinking",
        enable_revisions=False,
        max_revision_cycles=1,
        seed_shuffling_level="none",
        unified_multifield=True,
    )
    record = RunRecord.new("a", spec=old, run_id="r", status="SUCCEEDED")
    assert plan_of(body(), record).action is Action.NOOP


def test_recorded_matches_reads_sent_first_then_used() -> None:
    assert recorded_matches("tools", ["b", "a"], {"tools": ["a", "b"]}, {}, {})
    assert recorded_matches("spec_version", 2, {}, {"spec_version": 2}, {})
    assert not recorded_matches("spec_version", 2, {}, {}, {})
    assert recorded_matches(
        "revision_model", PLAIN, {}, {"revision_model": None, "revision_types": []}, {}
    )
