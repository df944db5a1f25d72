"""The current API's models and fields through the real CLI: warnings and `extra_models`.

`dfr validate` warns, at the offending value and without changing the exit
status, about a model of the old reference page that the current API no
longer lists, the deprecated `enable_revisions`, a thinking budget for a
model without `-thinking`, and revision settings while no revision runs.
`extra_models:` in dfr.yaml allows models beyond this release's list, with no
error and no warning, and the validation cache never serves a result from
before dfr.yaml changed. plan and apply print the same warnings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.runner import Runner, apply_args
from support.workspace import Workspace, manifest_text

pytestmark = pytest.mark.repo

NEW = "acme/new-model-9"
SDK = "pydataframer 0.19.2"
EXTRA_HINT = "; to use a model newer than this dfr release, add it to extra_models: in dfr.yaml"


@pytest.fixture
def project(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository folder (the search for dfr.yaml stops at its .git), the cwd, with a
    validation cache of its own."""
    monkeypatch.delenv("DFR_NO_CACHE", raising=False)
    monkeypatch.setenv("DFR_CACHE_DIR", str(tmp_path / "cache"))
    return ws.root


def manifest(name: str, extra: str = "", samples: str = "100") -> str:
    """A manifest of 100 samples pinned to version 1, in the fixed layout (lines 1-8)."""
    return manifest_text(name, extra, samples=samples)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def only_warning(dfr: Runner, project: Path, extra: str) -> str:
    """The one diagnostic `dfr validate` gives for a manifest with `extra`; exit 0."""
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert r.code == 0, r.err
    (line,) = r.diagnostics
    assert r.summary == "1 manifest in 1 file: valid, 1 warning."
    return str(line)


# -- models of the old reference page -------------------------------------------------------


def test_a_legacy_model_warns_at_its_value_naming_a_close_current_one_and_extra_models(
    dfr: Runner, project: Path
) -> None:
    line = only_warning(dfr, project, "  generation_model: anthropic/claude-sonnet-4-5\n")
    assert line == (
        "m.yaml:9:21: warning: spec.generation_model: 'anthropic/claude-sonnet-4-5' is a model "
        f"of the old reference page that the current API ({SDK}) does not list, so the "
        "service will refuse the run; the closest current model is "
        "'anthropic/claude-sonnet-5-5-thinking'; if you know the service still takes it, "
        "allow it with 'extra_models: [anthropic/claude-sonnet-4-5]' in dfr.yaml"
    )


@pytest.mark.parametrize(
    ("key", "old", "closest"),
    [
        ("outline_model", "anthropic/claude-opus-4-5", "anthropic/claude-opus-5-5-thinking"),
        ("revision_model", "gemini/gemini-3-pro-preview", "gemini/gemini-3.1-pro-preview"),
        ("generation_model", "moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2.6"),
    ],
)
def test_each_model_field_warns_about_a_legacy_model(
    dfr: Runner, project: Path, key: str, old: str, closest: str
) -> None:
    revisions = "  revision_types: [consistency]\n" if key == "revision_model" else ""
    line = only_warning(dfr, project, f"  {key}: {old}\n{revisions}")
    assert line.startswith(f"m.yaml:9:{len(key) + 5}: warning: spec.{key}: {old!r} is a model")
    assert f"the closest current model is {closest!r};" in line


def test_a_legacy_model_without_a_close_current_one_says_where_the_list_is(
    dfr: Runner, project: Path
) -> None:
    line = only_warning(dfr, project, "  generation_model: Qwen/Qwen2.5-72B-Instruct-Turbo\n")
    assert "; no current model is close (`dfr schema` lists them under $defs/current_model);" in (
        line
    )
    assert line.endswith("'extra_models: [Qwen/Qwen2.5-72B-Instruct-Turbo]' in dfr.yaml")


def test_legacy_models_the_current_api_still_lists_do_not_warn(dfr: Runner, project: Path) -> None:
    extra = "  generation_model: openai/gpt-oss-120b\n  outline_model: anthropic/claude-haiku-4-5\n"
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert (r.code, r.diagnostics) == (0, [])


def test_an_unknown_model_is_an_error_that_lists_the_current_ones(
    dfr: Runner, project: Path
) -> None:
    write(project / "m.yaml", manifest("m", f"  generation_model: {NEW}\n"))
    r = dfr("validate", "m.yaml")
    assert r.code == 1
    (line,) = r.diagnostics
    assert line.startswith(
        f"m.yaml:9:21: error: spec.generation_model: string {NEW!r} is not allowed; the current "
        f"API ({SDK}) offers: anthropic/claude-fable-5-1-thinking, "
    )
    assert line.endswith(EXTRA_HINT)


# -- enable_revisions -----------------------------------------------------------------------


def test_enable_revisions_true_says_what_to_write_instead(dfr: Runner, project: Path) -> None:
    assert only_warning(dfr, project, "  enable_revisions: true\n") == (
        "m.yaml:9:21: warning: spec.enable_revisions is deprecated by the current API; write "
        "what it turns on instead: revision_types: [coherence_flow, consistency, conformance] "
        "(add distinguishability for a seeded spec) and filtering_types: [structural]"
    )


def test_enable_revisions_false_says_to_remove_it(dfr: Runner, project: Path) -> None:
    assert only_warning(dfr, project, "  enable_revisions: false\n") == (
        "m.yaml:9:21: warning: spec.enable_revisions is deprecated by the current API; remove "
        "it: no revisions is the default"
    )


def test_enable_revisions_beside_revision_types_says_to_keep_only_them(
    dfr: Runner, project: Path
) -> None:
    line = only_warning(dfr, project, "  filtering_types: [structural]\n  enable_revisions: true\n")
    assert line == (
        "m.yaml:10:21: warning: spec.enable_revisions is deprecated by the current API; this "
        "spec already chooses its revisions with revision_types or filtering_types: list "
        "everything you want there and remove enable_revisions"
    )


# -- settings the API ignores ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "key", "model", "fix"),
    [
        (
            "generation_thinking_budget",
            "generation_model",
            "openai/gpt-6-astra",
            "use 'openai/gpt-6-astra-thinking'",
        ),
        ("outline_thinking_budget", "outline_model", "moonshotai/Kimi-K3", "use a -thinking model"),
        (
            "revision_thinking_budget",
            "revision_model",
            "anthropic/claude-haiku-4-5",
            "use 'anthropic/claude-haiku-4-5-thinking'",
        ),
    ],
)
def test_a_thinking_budget_for_a_model_without_thinking_warns(
    dfr: Runner, project: Path, budget: str, key: str, model: str, fix: str
) -> None:
    extra = f"  {key}: {model}\n  {budget}: 2048\n  revision_types: [consistency]\n"
    assert only_warning(dfr, project, extra) == (
        f"m.yaml:10:{len(budget) + 5}: warning: spec.{budget} has no effect: the API uses a "
        f"thinking budget only with a -thinking model, and spec.{key} is {model!r}; {fix} or "
        f"remove {budget}"
    )


def test_a_thinking_budget_with_a_thinking_model_or_the_apis_default_is_quiet(
    dfr: Runner, project: Path
) -> None:
    extra = (
        "  generation_model: anthropic/claude-sonnet-5-5-thinking\n"
        "  generation_thinking_budget: 4096\n"
        "  outline_thinking_budget: 1024\n"  # outline_model left to the API
    )
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert (r.code, r.diagnostics) == (0, [])


@pytest.mark.parametrize(
    "setting",
    [
        "revision_model: anthropic/claude-haiku-4-5",
        "max_revision_cycles: 2",
        "revision_thinking_budget: 512",
    ],
)
def test_a_revision_setting_without_revisions_warns(
    dfr: Runner, project: Path, setting: str
) -> None:
    key = setting.split(":")[0]
    assert only_warning(dfr, project, f"  {setting}\n") == (
        f"m.yaml:9:{len(key) + 5}: warning: spec.{key} has no effect: no revision or filtering "
        "runs (spec sets neither revision_types nor filtering_types); add one of them, or "
        f"remove {key}"
    )


def test_empty_revision_lists_are_no_revisions(dfr: Runner, project: Path) -> None:
    extra = "  revision_types: []\n  filtering_types: []\n  max_revision_cycles: 2\n"
    assert "spec.max_revision_cycles has no effect" in only_warning(dfr, project, extra)


@pytest.mark.parametrize(
    "switch",
    ["revision_types: [coherence_flow]", "filtering_types: [conformance]"],
)
def test_revision_settings_with_revisions_on_are_quiet(
    dfr: Runner, project: Path, switch: str
) -> None:
    extra = (
        f"  {switch}\n  revision_model: anthropic/claude-opus-5-5-thinking\n"
        "  max_revision_cycles: 3\n  revision_thinking_budget: 2048\n"
    )
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert (r.code, r.diagnostics) == (0, [])


def test_enable_revisions_true_still_counts_as_revisions_on(dfr: Runner, project: Path) -> None:
    extra = "  enable_revisions: true\n  max_revision_cycles: 3\n"
    line = only_warning(dfr, project, extra)  # the deprecation, not "no effect"
    assert "spec.enable_revisions is deprecated" in line


def test_warnings_in_json_keep_valid_true_and_exit_0(dfr: Runner, project: Path) -> None:
    extra = (
        "  generation_model: deepseek-ai/DeepSeek-V3.1\n  enable_revisions: false\n"
        "  max_revision_cycles: 2\n"
    )
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "--json", "m.yaml")
    assert (r.code, r.err) == (0, "")
    doc = json.loads(r.out)
    assert (doc["valid"], doc["errors"], doc["warnings"]) == (True, 0, 3)
    found = [
        (d["severity"], d["code"], d["line"], d["column"], d["path"]) for d in doc["diagnostics"]
    ]
    assert found == [
        ("warning", "legacy-model", 9, 21, ["spec", "generation_model"]),
        ("warning", "deprecated", 10, 21, ["spec", "enable_revisions"]),
        ("warning", "no-effect", 11, 24, ["spec", "max_revision_cycles"]),
    ]
    assert "'deepseek-ai/DeepSeek-V4-Pro-0813'" in doc["diagnostics"][0]["message"]


# -- extra_models -----------------------------------------------------------------------------


def test_extra_models_are_accepted_in_every_model_field_with_no_warning(
    dfr: Runner, project: Path
) -> None:
    write(project / "dfr.yaml", f"extra_models: [{NEW}, acme/other-thinking]\n")
    extra = (
        f"  generation_model: {NEW}\n  outline_model: acme/other-thinking\n"
        f"  outline_thinking_budget: 100\n  revision_types: [consistency]\n"
        f"  revision_model: {NEW}\n"
    )
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert (r.code, r.diagnostics) == (0, []), r.err
    assert r.summary == "1 manifest in 1 file: valid."


def test_extra_models_silence_the_legacy_warning_of_a_listed_model(
    dfr: Runner, project: Path
) -> None:
    write(project / "dfr.yaml", "extra_models: [anthropic/claude-sonnet-4-5]\n")
    extra = (
        "  generation_model: anthropic/claude-sonnet-4-5\n"
        "  outline_model: anthropic/claude-opus-4-5\n"  # not listed: still a warning
    )
    write(project / "m.yaml", manifest("m", extra))
    r = dfr("validate", "m.yaml")
    assert r.code == 0
    assert [d.split(": warning: ")[1][:40] for d in r.diagnostics] == [
        "spec.outline_model: 'anthropic/claude-op"
    ]


def test_a_thinking_suggestion_may_be_an_extra_model(dfr: Runner, project: Path) -> None:
    write(project / "dfr.yaml", f"extra_models: [{NEW}, {NEW}-thinking]\n")
    line = only_warning(
        dfr, project, f"  generation_model: {NEW}\n  generation_thinking_budget: 9\n"
    )
    assert f"use '{NEW}-thinking' or remove generation_thinking_budget" in line


def test_changing_extra_models_never_reads_a_stale_cached_result(
    dfr: Runner, project: Path, tmp_path: Path
) -> None:
    write(project / "new.yaml", manifest("new", f"  generation_model: {NEW}\n"))
    write(project / "old.yaml", manifest("old", "  generation_model: anthropic/claude-opus-4-5\n"))
    config = project / "dfr.yaml"
    with_both = f"extra_models: [{NEW}, anthropic/claude-opus-4-5]\n"

    write(config, with_both)
    for _ in range(2):  # the second run reads both files from the cache
        r = dfr("validate", ".")
        assert (r.code, r.diagnostics) == (0, []), r.err
    assert list((tmp_path / "cache").rglob("*.json")), "the clean files were cached"

    write(config, "extra_models: [anthropic/claude-opus-4-5]\n")
    r = dfr("validate", ".")
    assert r.code == 1
    assert [d.split(": ")[0:2] for d in r.diagnostics] == [["new.yaml:9:21", "error"]]

    write(config, f"extra_models: [{NEW}]\n")
    r = dfr("validate", ".")
    assert r.code == 0
    assert [d.split(": ")[0:2] for d in r.diagnostics] == [["old.yaml:9:21", "warning"]]

    config.unlink()
    r = dfr("validate", ".")
    assert r.code == 1 and len(r.diagnostics) == 2

    write(config, with_both)
    assert dfr("validate", ".").diagnostics == []


def test_policy_allowed_models_may_name_an_extra_model(dfr: Runner, project: Path) -> None:
    write(project / "m.yaml", manifest("m", f"  generation_model: {NEW}\n  outline_model: {NEW}\n"))
    write(project / "dfr.yaml", f"extra_models: [{NEW}]\npolicy:\n  allowed_models: [{NEW}]\n")
    r = dfr("validate", "m.yaml")
    assert (r.code, r.diagnostics) == (0, []), r.err
    # Without extra_models, the same list is an error in dfr.yaml, with the way out.
    write(project / "dfr.yaml", f"policy:\n  allowed_models: [{NEW}]\n")
    r = dfr("validate", "m.yaml")
    assert r.code == 1
    assert r.diagnostics[0].startswith(
        f"dfr.yaml:2:20: error: policy.allowed_models[0]: string {NEW!r} is not allowed; "
    )
    assert r.diagnostics[0].endswith(EXTRA_HINT)


def test_an_extra_model_this_release_knows_is_a_warning_in_dfr_yaml(
    dfr: Runner, project: Path
) -> None:
    write(project / "dfr.yaml", "extra_models:\n  - acme/x\n  - moonshotai/Kimi-K3\n")
    write(project / "m.yaml", manifest("m"))
    r = dfr("validate", "m.yaml")
    assert r.code == 0
    assert r.diagnostics == [
        "dfr.yaml:3:5: warning: extra_models: 'moonshotai/Kimi-K3' is a model of the current "
        f"API that this dfr release knows ({SDK}); it needs no entry here"
    ]


def test_a_project_error_elsewhere_keeps_good_extra_models(dfr: Runner, project: Path) -> None:
    write(project / "dfr.yaml", f"extra_models: [{NEW}]\nparalelism: 3\n")
    write(project / "m.yaml", manifest("m", f"  generation_model: {NEW}\n"))
    r = dfr("validate", "m.yaml")
    assert r.code == 1
    assert [d.split(": ")[0] for d in r.diagnostics] == ["dfr.yaml:2:1"]


# -- plan and apply show the same warnings ---------------------------------------------------


def test_plan_and_apply_print_the_manifest_warnings(ws: Workspace, dfr: Runner) -> None:
    text = manifest("w", "  outline_model: openai/gpt-6-luna\n  outline_thinking_budget: 64\n")
    ws.write_text("w", text)
    expected = "runs/w.yaml:10:28: warning: spec.outline_thinking_budget has no effect: "
    r = dfr("plan")
    assert r.code == 0, r.err
    assert expected in r.err
    r = dfr(*apply_args())
    assert r.code == 0, r.text
    assert expected in r.err


def test_plan_accepts_extra_models(ws: Workspace, dfr: Runner) -> None:
    ws.config(f"extra_models: [{NEW}]\n")
    ws.write_text("x", manifest("x", f"  generation_model: {NEW}\n"))
    r = dfr("plan")
    assert r.code == 0, r.err
    assert "warning" not in r.err and "error" not in r.err
    assert NEW in r.out
    ws.config("version: 1\n")
    r = dfr("plan")
    assert r.code == 1
    assert f"runs/x.yaml:9:21: error: spec.generation_model: string {NEW!r}" in r.err
