"""The spec planner (reconciler.specplan via reconciler.plan) and content normalisation.

Properties (hypothesis): the plan's order puts every change after what it
depends on, for random specs, runs and states; the graph never has a cycle;
normalising content YAML is idempotent and blind to key order, quoting and
flow/block style. Examples: what each recorded spec state plans.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import planfile
from reconciler.manifests import Manifest, SpecManifest
from reconciler.plan import Action, Plan, make_plan
from reconciler.render import plan_to_json, render_plan
from reconciler.speccontent import (
    content_sha256,
    content_yaml,
    normalise_yaml,
    parse_content,
    same_content,
)
from reconciler.specgraph import topological_order
from reconciler.specplan import KNOWN_AFTER_APPLY, SpecAction
from reconciler.state.model import (
    RunRecord,
    SpecIntent,
    SpecRecord,
    SpecVersionRecord,
    State,
)
from reconciler.views.markdown import render_plan_markdown

SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
CONTENT = {"description": "Support tickets", "requirements": "One ticket per sample.\n"}


# -- helpers --------------------------------------------------------------------------


def spec(name: str = "tickets", content: dict[str, Any] | None = None) -> SpecManifest:
    return SpecManifest(name, {"objectives": f"{name} data"}, content=content)


def run(name: str, ref: str = "tickets", version: int | str = "latest") -> Manifest:
    return Manifest(name, {"spec_ref": {"name": ref, "version": version}, "number_of_samples": 5})


def versions(*shas: str | None, by_dfr: bool = True) -> tuple[SpecVersionRecord, ...]:
    return tuple(SpecVersionRecord(n, sha, by_dfr=by_dfr) for n, sha in enumerate(shas, 1))


def recorded(name: str = "tickets", **fields: Any) -> SpecRecord:
    base: dict[str, Any] = {"spec_id": SPEC_ID, "status": "SUCCEEDED"}
    return SpecRecord(name, "2026-11-28T10:00:00.000Z", **{**base, **fields})


def finished_run(name: str, **spec: Any) -> RunRecord:
    body = {"spec_id": SPEC_ID, "number_of_samples": 5, **spec}
    return RunRecord(name, "t", run_id=f"run-{name}", status="SUCCEEDED", spec=body)


def state_with(specs: dict[str, SpecRecord], runs: dict[str, RunRecord] | None = None) -> State:
    return dataclasses.replace(State.empty("lineage-1"), specs=specs, runs=runs or {})


def change_of(plan: Plan, name: str) -> Any:
    return next(c for c in plan.changes if c.name == name)


# -- normalisation --------------------------------------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufeff")
    | st.just("\n"),
    max_size=30,
)
_SCALARS = (
    _TEXT
    | st.integers(-(10**15), 10**15)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)
_CONTENT = st.dictionaries(
    _TEXT.filter(lambda k: k not in ("spec", "metadata")), _VALUES, max_size=6
)


@given(_CONTENT)
@settings(max_examples=200, deadline=None)
def test_normalising_is_idempotent_and_keeps_the_value(content: dict[str, Any]) -> None:
    text = content_yaml(content)
    assert parse_content(text) == content
    assert normalise_yaml(text) == text
    assert normalise_yaml(normalise_yaml(text)) == text


@given(_CONTENT, st.randoms(use_true_random=False), st.sampled_from(['"', "'"]), st.booleans())
@settings(max_examples=200, deadline=None)
def test_normalising_ignores_key_order_quoting_and_style(
    content: dict[str, Any], rnd: Any, quote: str, flow: bool
) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rnd.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    other = yaml.safe_dump(
        {"metadata": {"ignored": True}, "spec": shuffled(content)},
        sort_keys=False,
        default_style=quote,
        default_flow_style=flow,
        allow_unicode=True,
    )
    assert normalise_yaml(other) == content_yaml(content)
    assert same_content(other, content_yaml(content))


def test_the_fields_alone_and_under_spec_are_the_same_content() -> None:
    under = "spec:\n  requirements: 'One ticket per sample.\n\n'\n  description: Support tickets\n"
    alone = 'description: "Support tickets"\nrequirements: |\n  One ticket per sample.\n'
    assert normalise_yaml(under) == normalise_yaml(alone) == content_yaml(CONTENT)
    assert not same_content(alone, "description: other\n")
    assert not same_content("spec: [", alone)  # does not parse: never "the same"


# -- the graph ------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(0, 12))
    keys = [f"k{i}" for i in range(n)]
    return {
        key: draw(st.lists(st.sampled_from(keys[:i]), max_size=3)) if i else []
        for i, key in enumerate(keys)
    }


@given(dags(), st.randoms(use_true_random=False))
def test_topological_order_puts_each_key_after_its_dependencies(
    edges: dict[str, list[str]], rnd: Any
) -> None:
    ranks = {k: rnd.randint(0, 3) for k in edges}
    order = topological_order(edges, ranks)
    assert sorted(order) == sorted(edges)
    place = {k: i for i, k in enumerate(order)}
    for key, deps in edges.items():
        assert all(place[d] < place[key] for d in deps)


def test_a_cycle_is_refused_naming_its_keys() -> None:
    with pytest.raises(ValueError, match="cycle among: a, b"):
        topological_order({"a": ["b"], "b": ["a"], "c": []})


_NAMES = st.sampled_from(["alpha", "beta", "gamma"])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Manifest], list[SpecManifest], State]:
    spec_names = draw(st.lists(_NAMES, unique=True))
    specs = [
        spec(n, draw(st.none() | st.just(CONTENT) | st.just({"description": n})))
        for n in spec_names
    ]
    records: dict[str, SpecRecord] = {}
    for n in draw(st.lists(_NAMES, unique=True)):
        shas = draw(st.lists(st.sampled_from([content_sha256(CONTENT), "other", None]), max_size=3))
        records[n] = recorded(
            n,
            spec_id=draw(st.none() | st.just(SPEC_ID)),
            status=draw(st.sampled_from(["SUCCEEDED", "PROCESSING", "FAILED"])),
            versions=versions(*shas, by_dfr=draw(st.booleans())),
        )
    known = spec_names + list(records)
    runs = []
    for i in range(draw(st.integers(0, 5))):
        if bool(known) and draw(st.booleans()):
            ref = draw(st.sampled_from(known))
            choices: list[int | str] = ["latest", 1, 2]
            version = draw(st.sampled_from(choices))
            runs.append(run(f"run-{i}", ref, version))
        else:
            runs.append(Manifest(f"run-{i}", {"spec_id": SPEC_ID, "number_of_samples": 1}))
    run_records = {m.name: finished_run(m.name) for m in runs if draw(st.booleans())}
    return runs, specs, state_with(records, run_records)


@given(worlds())
@settings(max_examples=150, deadline=None)
def test_every_change_comes_after_what_it_depends_on_and_no_cycle_forms(
    world: tuple[list[Manifest], list[SpecManifest], State],
) -> None:
    runs, specs, state = world
    plan = make_plan(runs, state, specs=specs)
    order = plan.order  # raises on a cycle
    keys = [s.key for s in plan.specs] + [c.key for c in plan.changes]
    assert sorted(order) == sorted(keys)
    place = {k: i for i, k in enumerate(order)}
    for c in plan.changes:
        assert all(d.startswith("spec/") for d in c.depends_on)  # runs wait only for specs
        assert all(place[d] < place[c.key] for d in c.depends_on)
    assert all(not s.depends_on for s in plan.specs)
    json.dumps(plan_to_json(plan))  # the JSON form holds for any plan


# -- what each state plans ------------------------------------------------------------


def test_from_nothing_the_spec_is_created_and_its_runs_wait_with_an_unknown_spec_id() -> None:
    plan = make_plan([run("a"), run("b", version=1)], State.empty(), specs=[spec(content=CONTENT)])
    (s,) = plan.specs
    assert s.action is SpecAction.CREATE and s.key == "spec/tickets"
    assert s.body == {"name": "tickets", "generation_objectives": "tickets data"}
    assert s.content_yaml == content_yaml(CONTENT)
    assert s.content_sha256 == content_sha256(CONTENT) and s.new_version == 2
    assert s.dependants == ("run/a", "run/b")
    a, b = change_of(plan, "a"), change_of(plan, "b")
    assert a.action is Action.CREATE and a.depends_on == ("spec/tickets",)
    assert a.unknown == ("spec_id",) and "spec_id" not in (a.body or {})
    assert b.body == {"number_of_samples": 5, "spec_version": 1}
    assert plan.order == ("spec/tickets", "run/a", "run/b")
    assert plan.has_changes
    text = render_plan(plan)
    assert f"spec_id           = {KNOWN_AFTER_APPLY}" in text
    assert "1. spec/tickets (spec-create)" in text
    assert "2. run/a (create) after spec/tickets" in text


def test_equal_content_after_normalisation_plans_nothing() -> None:
    reordered = parse_content(
        "spec: {requirements: \"One ticket per sample.\\n\", description: 'Support tickets'}"
    )
    state = state_with(
        {"tickets": recorded(versions=versions("v1", content_sha256(CONTENT)))},
        {"a": finished_run("a")},
    )
    plan = make_plan([run("a")], state, specs=[spec(content=reordered)])
    assert [s.action for s in plan.specs] == [SpecAction.NOOP]
    assert not plan.has_changes
    assert change_of(plan, "a").body == {"spec_id": SPEC_ID, "number_of_samples": 5}
    assert render_plan(plan).startswith("No changes. Manifests and state agree (1 run, 1 spec).")


def test_changed_content_is_one_update_and_only_runs_on_latest_are_affected() -> None:
    state = state_with(
        {"tickets": recorded(versions=versions("v1", content_sha256(CONTENT)))},
        {"latest": finished_run("latest"), "pinned": finished_run("pinned", spec_version=2)},
    )
    edited = {**CONTENT, "requirements": "Two tickets per sample.\n"}
    plan = make_plan([run("latest"), run("pinned", version=2)], state, specs=[spec(content=edited)])
    (s,) = plan.specs
    assert s.action is SpecAction.UPDATE and s.base_version == 2 and s.new_version == 3
    assert s.spec_id == SPEC_ID and s.content_yaml == content_yaml(edited)
    latest, pinned = change_of(plan, "latest"), change_of(plan, "pinned")
    assert latest.action is Action.NOOP and latest.affected_by == "spec/tickets"
    assert pinned.action is Action.NOOP and pinned.affected_by is None
    assert plan.to_submit == []
    text = render_plan(plan)
    assert "spec tickets will be updated (version 3)" in text
    assert "affected: uses latest of spec/tickets" in text
    assert "# pinned" not in text  # nothing to show for the pinned run
    markdown = render_plan_markdown(plan)
    assert "#### Affected" in markdown and "`latest`" in markdown


def test_a_version_made_in_the_web_app_is_drift_updated_back_or_only_recorded() -> None:
    state = state_with({"tickets": recorded(versions=versions(content_sha256(CONTENT), "web"))})
    state = dataclasses.replace(
        state,
        specs={
            "tickets": recorded(
                versions=(
                    SpecVersionRecord(1, content_sha256(CONTENT), by_dfr=True),
                    SpecVersionRecord(2, "web", by_dfr=False),
                )
            )
        },
    )
    back = make_plan([], state, specs=[spec(content=CONTENT)]).specs[0]
    assert back.action is SpecAction.UPDATE and back.drift and back.new_version == 3
    assert "made outside dfr" in back.reasons[-1]
    kept = make_plan([], state, specs=[spec()]).specs[0]
    assert kept.action is SpecAction.NOOP and kept.drift
    assert "only recorded" in kept.reasons[-1]


def test_lost_answers_are_resolved_before_anything_is_sent_again() -> None:
    intent = SpecIntent.new("create", {"name": "tickets"}, at="2026-11-28T10:00:00Z")
    lost_create = state_with({"tickets": recorded(spec_id=None, status=None, intent=intent)})
    c = make_plan([run("a")], lost_create, specs=[spec()]).specs[0]
    assert c.action is SpecAction.CREATE and c.resolve_intent
    sha = content_sha256(CONTENT)
    update = SpecIntent.new("update", {"content_yaml": content_yaml(CONTENT)}, content_sha256=sha)
    lost_update = state_with({"tickets": recorded(versions=versions("v1"), intent=update)})
    u = make_plan([], lost_update, specs=[spec(content=CONTENT)]).specs[0]
    assert u.action is SpecAction.UPDATE and u.resolve_intent and u.intent_sha256 == sha


def test_a_failed_spec_blocks_its_runs_with_its_error_and_a_processing_one_is_waited_for() -> None:
    failed = state_with({"tickets": recorded(status="FAILED", error="objectives too vague")})
    plan = make_plan(
        [run("a"), Manifest("b", {"spec_id": SPEC_ID, "number_of_samples": 1})],
        failed,
        specs=[spec()],
    )
    (s,) = plan.specs
    assert s.failed and s.error == "objectives too vague" and s.action is SpecAction.NOOP
    assert change_of(plan, "a").blocked_by == "spec/tickets"
    assert change_of(plan, "b").blocked_by == "spec/tickets"  # by its id
    assert "objectives too vague" in render_plan(plan)
    busy = state_with({"tickets": recorded(status="PROCESSING")})
    waiting = make_plan([run("a")], busy, specs=[spec(content=CONTENT)]).specs[0]
    assert waiting.waits and waiting.action is SpecAction.UPDATE  # no version recorded yet


def test_an_adopted_spec_resolves_without_a_manifest_and_adds_no_edge() -> None:
    state = state_with({"tickets": recorded(versions=versions("v1"))})
    plan = make_plan([run("a", version=1)], state)
    a = change_of(plan, "a")
    assert a.body == {"spec_id": SPEC_ID, "number_of_samples": 5, "spec_version": 1}
    assert a.depends_on == () and a.unknown == () and plan.specs == ()


def test_a_recorded_run_whose_spec_is_created_anew_is_replaced() -> None:
    state = state_with({}, {"a": finished_run("a")})
    a = change_of(make_plan([run("a")], state, specs=[spec()]), "a")
    assert a.action is Action.REPLACE
    assert [(f.field, f.after) for f in a.fields] == [("spec_id", KNOWN_AFTER_APPLY)]


def test_the_json_plan_has_each_actions_dependencies_and_the_order() -> None:
    plan = make_plan([run("a")], State.empty("l"), specs=[spec(content=CONTENT)])
    doc = plan_to_json(plan)
    assert doc["order"] == ["spec/tickets", "run/a"]
    (s,) = doc["specs"]
    assert s["action"] == "spec-create" and s["depends_on"] == [] and s["dependants"] == ["run/a"]
    assert s["content_sha256"] == content_sha256(CONTENT)
    (c,) = doc["changes"]
    assert c["key"] == "run/a" and c["depends_on"] == ["spec/tickets"]
    assert c["unknown"] == ["spec_id"] and c["spec_ref"] == {"name": "tickets", "version": "latest"}
    assert doc["summary"]["specs"]["create"] == 1


def test_a_saved_plan_round_trips_its_spec_changes(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    state = State.empty("l")
    plan = make_plan([run("a")], state, specs=[spec(content=CONTENT)])
    planfile.save("p.json", plan, (".",))
    saved = planfile.load("p.json")
    assert saved.plan["specs"] == plan_to_json(plan)["specs"]
    planfile.check_current(saved, make_plan([run("a")], state, specs=[spec(content=CONTENT)]), "p")
    edited = make_plan([run("a")], state, specs=[spec(content={"description": "x"})])
    with pytest.raises(Exception, match="stale: the manifests changed"):
        planfile.check_current(saved, edited, "p.json")


def test_changed_create_options_are_said_never_acted_on() -> None:
    sent = {"name": "tickets", "generation_objectives": "tickets data"}
    state = state_with({"tickets": recorded(versions=versions("v1"), body=sent)})
    same = make_plan([], state, specs=[spec()]).specs[0]
    assert same.action is SpecAction.NOOP and same.reasons == ()
    moved = SpecManifest("tickets", {"objectives": "other data", "generate_distributions": True})
    (s,) = make_plan([], state, specs=[moved]).specs
    assert s.action is SpecAction.NOOP and s.body is None
    assert (
        "create options changed since the spec was created (generate_distributions, "
        in (s.reasons[-1])
    )
    adopted = state_with({"tickets": recorded(versions=versions("v1"))})  # body {}: unknown
    assert make_plan([], adopted, specs=[moved]).specs[0].reasons == ()


def test_a_run_pinned_past_the_newest_recorded_version_is_warned_about() -> None:
    state = state_with({"tickets": recorded(versions=versions("v1", "v2"))})
    (past,) = make_plan([run("a", version=3)], state).changes
    assert "spec 'tickets' has no version 3 in state (its newest is 2)" in past.reasons[-1]
    (fine,) = make_plan([run("a", version=2)], state).changes
    assert not any("no version" in r for r in fine.reasons)


# -- any input ------------------------------------------------------------------------

_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_SPEC_KEYS = st.sampled_from(
    [
        "objectives",
        "dataset_id",
        "content",
        "content_file",
        "description",
        "generate_distributions",
        "generate_conditional_distributions",
        "spec_generation_model_name",
        "extrapolate_axes",
        "x",
    ]
)


@given(st.dictionaries(_SPEC_KEYS, _JSONISH, max_size=6), _JSONISH)
@settings(max_examples=150, deadline=None)
def test_any_spec_document_gives_located_diagnostics_never_an_exception(
    tmp_path_factory: Any, spec_body: dict[str, Any], ref: Any
) -> None:
    from reconciler.validate import validate_paths

    folder = tmp_path_factory.mktemp("any")
    docs = [
        {
            "apiVersion": "dataframer.ai/v1",
            "kind": "Spec",
            "metadata": {"name": "s"},
            "spec": spec_body,
        },
        {
            "apiVersion": "dataframer.ai/v1",
            "kind": "GenerationRun",
            "metadata": {"name": "r"},
            "spec": {"spec_ref": ref, "number_of_samples": 1},
        },
    ]
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    result = validate_paths([str(path)], root=folder)
    for d in result.diagnostics:
        assert d.file and d.line >= 1 and d.column >= 1, d
    if result.ok:
        plan = make_plan(result.manifests, State.empty("l"), specs=result.specs)
        json.dumps(plan_to_json(plan))
