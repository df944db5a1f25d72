"""The spending policy of dfr.yaml at each enforcement point: validate, plan, apply.

Every policy key is checked where it helps most: `dfr validate` (and so the
pre-commit hook) reports each manifest that breaks it at the offending line;
`dfr plan` refuses (exit 1) and `dfr apply` refuses with zero POSTs. The
budget (`max_samples_per_apply`) is a plan-level check: plan shows it beside the
total and fails over it; apply refuses before its first request.
"""

from __future__ import annotations

import json

import pytest
from support.emulators import REVIEWS, count
from support.runner import Runner, apply_args
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator

pytestmark = pytest.mark.repo

POLICY = """
policy:
  max_samples_per_run: 1000
  max_samples_per_apply: 1500
  allowed_models: [anthropic/claude-haiku-4-5, anthropic/claude-sonnet-5-5-thinking]
  required_labels: [team]
"""
TEAM = {"team": "support"}
#: Under a model policy every model a run uses is named (the API's default is not ours).
MODELS = (
    "  generation_model: anthropic/claude-haiku-4-5\n  outline_model: anthropic/claude-haiku-4-5\n"
)


def errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if ": error: " in line]


# -- validate: every key, at the offending line ------------------------------------------


def test_validate_reports_each_violation_at_its_place(ws: Workspace, dfr: Runner) -> None:
    ws.config(POLICY)
    ws.write_text("ok", labels=TEAM, samples=500, extra=MODELS)
    # labels at 5-6; spec: 7, spec_id 8, spec_version 9, number_of_samples 10, then extra.
    ws.write_text(
        "big",
        labels=TEAM,
        samples=5000,
        extra=(
            "  generation_model: openai/gpt-oss-120b\n  outline_model: anthropic/claude-haiku-4-5\n"
        ),
    )
    ws.write_text("nolabels", samples=10, extra=MODELS)  # metadata at line 3, no labels
    ws.write_text("otherlabels", labels={"owner": "x"}, extra=MODELS)
    r = dfr("validate", "runs")
    assert r.code == 1
    assert errors(r.err) == [
        "runs/big.yaml:10:22: error: spec.number_of_samples: 5,000 samples is over the limit of "
        "1,000 per run (policy.max_samples_per_run in dfr.yaml:2:3)",
        "runs/big.yaml:11:21: error: spec.generation_model: model 'openai/gpt-oss-120b' is not "
        "allowed (policy.allowed_models in dfr.yaml:4:3); allowed: anthropic/claude-haiku-4-5, "
        "anthropic/claude-sonnet-5-5-thinking",
        "runs/nolabels.yaml:3:1: error: metadata has no labels; every manifest must carry the "
        "label 'team' (policy.required_labels in dfr.yaml:5:3)",
        "runs/otherlabels.yaml:5:3: error: metadata.labels is missing the label 'team' that "
        "every manifest must carry (policy.required_labels in dfr.yaml:5:3)",
    ]
    assert r.err.splitlines()[-1] == "4 manifests in 4 files: 4 errors, 0 warnings."


def test_validate_without_a_policy_accepts_the_same_manifests(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("big", samples=5000, extra="  generation_model: openai/gpt-oss-120b\n")
    r = dfr("validate", "runs")
    assert (r.code, errors(r.err)) == (0, [])


def test_a_model_left_to_the_api_is_an_error_at_spec_under_a_model_policy(
    ws: Workspace, dfr: Runner
) -> None:
    ws.config("policy:\n  allowed_models: [anthropic/claude-sonnet-4-5]\n")
    ws.write_text("a", extra="  generation_model: anthropic/claude-sonnet-4-5\n")
    r = dfr("validate", "runs")
    assert r.code == 1
    # outline_model is left out: the API would choose, and its default is not ours to know.
    assert errors(r.err) == [
        "runs/a.yaml:5:1: error: spec.outline_model is not set, so the API would choose the "
        "model (its default changes over time) and policy.allowed_models in dfr.yaml:2:3 "
        "cannot hold; set outline_model to one of: anthropic/claude-sonnet-4-5"
    ]


def test_revision_model_counts_only_when_revisions_are_on_or_it_is_named(
    ws: Workspace, dfr: Runner
) -> None:
    ws.config("policy:\n  allowed_models: [anthropic/claude-haiku-4-5]\n")
    models = (
        "  generation_model: anthropic/claude-haiku-4-5\n"
        "  outline_model: anthropic/claude-haiku-4-5\n"
    )
    ws.write_text("off", extra=models)
    assert dfr("validate", "runs").code == 0
    for on in ("  enable_revisions: true\n", "  revision_types: [consistency]\n"):
        ws.write_text("on", extra=models + on)
        r = dfr("validate", "runs")
        assert r.code == 1
        assert [e.split(": error: ")[1][:50] for e in errors(r.err)] == [
            "spec.revision_model is not set, so the API would c"
        ]
    ws.write_text("on", extra=models + "  revision_model: anthropic/claude-opus-4-5\n")
    r = dfr("validate", "runs")
    assert errors(r.err) == [
        "runs/on.yaml:11:19: error: spec.revision_model: model 'anthropic/claude-opus-4-5' is not "
        "allowed (policy.allowed_models in dfr.yaml:2:3); allowed: anthropic/claude-haiku-4-5"
    ]


def test_an_empty_label_value_does_not_count(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  required_labels: [team, cost-center]\n")
    ws.write_text("a", labels={"team": '""', "cost-center": "cc-42"})
    r = dfr("validate", "runs")
    assert r.code == 1
    assert errors(r.err) == [
        "runs/a.yaml:5:3: error: metadata.labels is missing the label 'team' that every "
        "manifest must carry (policy.required_labels in dfr.yaml:2:3)"
    ]


def test_validate_json_and_github_formats_carry_policy_errors(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_samples_per_run: 5\n")
    ws.write_text("a", samples=10)
    r = dfr("validate", "--json", "runs")
    assert r.code == 1
    doc = json.loads(r.out)
    assert [(d["code"], d["line"], d["column"]) for d in doc["diagnostics"]] == [("policy", 8, 22)]
    r = dfr("validate", "--format", "github", "runs")
    assert r.out.startswith("::error file=runs/a.yaml,line=8,col=22::spec.number_of_samples")


# -- plan ----------------------------------------------------------------------------------


def test_plan_refuses_manifests_that_break_the_policy(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.config(POLICY)
    ws.write_text("a", labels=TEAM, samples=2000)
    r = dfr("plan")
    assert r.code == 1
    assert "runs/a.yaml:10:22: error: spec.number_of_samples: 2,000 samples" in r.err
    assert "nothing was planned or submitted" in r.err
    assert r.out == ""
    assert count(emu, "runs.create") == 0


def test_plan_shows_the_budget_and_exits_1_over_it(ws: Workspace, dfr: Runner) -> None:
    ws.config(POLICY)
    ws.write_text("a", labels=TEAM, samples=1000, extra=MODELS)
    ws.write_text("b", labels=TEAM, samples=400, extra=MODELS)
    r = dfr("plan")
    assert r.code == 0, r.err
    assert "Samples to request: 1,400 of a budget of 1,500 per apply.\n" in r.out
    ws.write_text("c", labels=TEAM, samples=200, extra=MODELS)
    r = dfr("plan", "--detailed-exitcode", "--out", "over.plan")
    assert r.code == 1
    assert "Plan: 3 to create" in r.out  # the plan is shown first
    assert "Samples to request: 1,600 of a budget of 1,500 per apply. Over budget by 100." in r.out
    assert [line for line in r.err.splitlines() if line.startswith("error: ")] == [
        "error: the plan requests 1,600 samples, over the budget of 1,500 per apply "
        "(policy.max_samples_per_apply in dfr.yaml:3:3); apply fewer changes at once (for "
        "example name some manifests as PATHs) or raise the budget"
    ]
    assert "The plan was not saved to over.plan" in r.err
    assert not (ws.root / "over.plan").exists()
    # Naming fewer manifests brings the apply within budget.
    assert dfr("plan", "runs/a.yaml", "runs/c.yaml").code == 0


def test_plan_json_carries_the_budget(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_samples_per_apply: 15\n")
    ws.write_text("a", samples=10)
    ws.write_text("b", samples=10)
    r = dfr("plan", "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["budget"] == {"max_samples_per_apply": 15, "samples": 20, "over": True}


def test_noops_do_not_count_against_the_budget(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    ws.write_text("a", samples=10)
    assert dfr(*apply_args("--no-wait")).code == 0
    ws.config("policy:\n  max_samples_per_apply: 15\n")
    ws.write_text("b", samples=10)
    r = dfr("plan")
    assert r.code == 0, r.err
    assert "Samples to request: 10 of a budget of 15 per apply." in r.out


# -- apply: refusals with zero POSTs -------------------------------------------------------


def test_apply_refuses_each_per_manifest_violation_with_zero_posts(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.config(POLICY)
    cases = {
        "max_samples_per_run": manifest_text("a", labels=TEAM, samples=1001),
        "allowed_models": manifest_text(
            "a", labels=TEAM, extra="  generation_model: anthropic/claude-opus-4-5\n"
        ),
        "required_labels": manifest_text("a"),
    }
    for key, text in cases.items():
        ws.write_text("a", text)
        r = dfr(*apply_args())
        assert r.code == 1, key
        assert f"policy.{key} in dfr.yaml" in r.err, key
        assert "nothing was planned or submitted" in r.err
    assert count(emu, "runs.create") == 0
    assert count(emu, "specs.get") == 0


def test_apply_refuses_over_the_budget_before_any_request(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.config(POLICY)
    ws.write_text("a", labels=TEAM, samples=1000, extra=MODELS)
    ws.write_text("b", labels=TEAM, samples=1000, extra=MODELS)
    r = dfr(*apply_args())
    assert r.code == 1
    assert "Samples to request: 2,000 of a budget of 1,500 per apply." in r.out
    assert (
        "error: refusing to apply: the plan requests 2,000 samples, over the budget of 1,500 "
        "per apply (policy.max_samples_per_apply in dfr.yaml:3:3)"
    ) in r.err
    assert r.err.rstrip().endswith("nothing was submitted")
    assert emu.stats()["requests_total"] == 0
    assert (
        not (ws.root / "dfr.state.json").exists()
        or "runs" not in (ws.root / "dfr.state.json").read_text()
    )


def test_apply_within_the_policy_submits(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    ws.config(POLICY)
    ws.write_text("a", labels=TEAM, samples=1000, extra=MODELS)
    ws.write_text("b", labels=TEAM, samples=500, spec_id=REVIEWS, extra=MODELS)
    r = dfr(*apply_args())
    assert r.code == 0, r.err
    assert count(emu, "runs.create") == 2


def test_a_saved_plan_is_checked_against_the_policy_at_apply_time(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ws.write_text("a", labels=TEAM, samples=800)
    ws.write_text("b", labels=TEAM, samples=800)
    assert dfr("plan", "--out", "reviewed.plan").code == 0
    # The policy arrives (or tightens) between review and apply.
    ws.config("policy:\n  max_samples_per_apply: 1000\n")
    r = dfr("apply", "reviewed.plan")
    assert r.code == 1
    assert "refusing to apply: the plan requests 1,600 samples" in r.err
    ws.config("policy:\n  max_samples_per_run: 500\n")
    r = dfr("apply", "reviewed.plan")
    assert r.code == 1
    assert "policy.max_samples_per_run in dfr.yaml" in r.err
    assert count(emu, "runs.create") == 0


# -- reproducibility warnings ---------------------------------------------------------------


def test_unpinned_spec_version_is_a_located_warning(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("pinned")
    ws.write_text("latest", version=None)
    r = dfr("validate", "runs")
    assert r.code == 0
    warnings = r.lines(": warning: ")
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "runs/latest.yaml:6:3: warning: spec.spec_version is not set, so the run uses the "
        "spec's latest version at submission time"
    )
    assert "'spec_version: N'" in warnings[0]
    assert r.err.splitlines()[-1] == "2 manifests in 2 files: valid, 1 warning."
    doc = json.loads(dfr("validate", "--json", "runs").out)
    assert [d["code"] for d in doc["diagnostics"]] == ["unpinned-version"]
    assert doc["valid"] is True


def test_plan_does_not_repeat_the_reproducibility_warning(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("latest", version=None)
    r = dfr("plan")
    assert r.code == 0
    assert "spec_version is not set" not in r.err


def test_plan_for_github_reports_policy_errors_as_annotations(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_samples_per_run: 5\n")
    ws.write_text("a", samples=10)
    r = dfr("plan", "--format", "github")
    assert r.code == 1
    assert "::error file=runs/a.yaml,line=8,col=22::spec.number_of_samples" in r.out
