"""The model lists of the schema, the helpers over them, and the manifest warnings' rules."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler import schema
from reconciler.model_advice import _advice

NEW = "acme/new-model-9"


def spec(**fields: Any) -> dict[str, Any]:
    return {"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": 1, **fields}


def advice(*, extra: tuple[str, ...] = (), **fields: Any) -> list[tuple[str, str]]:
    """(key, code) of each warning for a spec with `fields`."""
    return [(key, code) for key, _message, code in _advice(spec(**fields), extra)]


# -- the lists ------------------------------------------------------------------------------


def test_model_is_current_then_the_legacy_ones_not_current() -> None:
    current, legacy = schema.current_models(), schema.legacy_models()
    assert len(current) == 34 and len(legacy) == 12
    assert schema.models() == [*current, *[m for m in legacy if m not in current]]
    assert {m for m in legacy if m in current} == {
        "anthropic/claude-haiku-4-5",
        "openai/gpt-oss-120b",
    }


def test_sdk_version_comes_from_the_schema() -> None:
    assert schema.sdk_version() == "0.19.2"


def test_is_thinking_is_the_suffix() -> None:
    assert schema.is_thinking("anthropic/claude-sonnet-5-5-thinking")
    assert schema.is_thinking(f"{NEW}-thinking")
    assert not schema.is_thinking("openai/gpt-6-astra")
    assert not schema.is_thinking("acme/thinking-model")


@pytest.mark.parametrize(
    ("old", "closest"),
    [
        ("anthropic/claude-opus-4-5", "anthropic/claude-opus-5-5-thinking"),
        ("anthropic/claude-opus-4-5-thinking", "anthropic/claude-opus-5-5-thinking"),
        ("anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-5-5-thinking"),
        ("anthropic/claude-sonnet-4-5-thinking", "anthropic/claude-sonnet-5-5-thinking"),
        ("deepseek-ai/DeepSeek-V3.1", "deepseek-ai/DeepSeek-V4-Pro-0813"),
        ("deepseek-ai/DeepSeek-R1-0528-tput", "deepseek-ai/DeepSeek-V4-Pro-0813"),
        ("Qwen/Qwen2.5-72B-Instruct-Turbo", None),
        ("moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2.6"),
        ("gemini/gemini-3-pro-preview", "gemini/gemini-3.1-pro-preview"),
        ("gemini/gemini-3-pro-preview-thinking", "gemini/gemini-3.1-pro-preview-thinking"),
    ],
)
def test_the_closest_current_model_is_of_the_same_family_and_mode(
    old: str, closest: str | None
) -> None:
    assert schema.closest_current_model(old) == closest


def test_new_models_are_the_unknown_ones_sorted_once() -> None:
    assert schema.new_models([]) == ()
    assert schema.new_models(["b/x", "a/y", "b/x", "openai/gpt-6-astra"]) == ("a/y", "b/x")
    assert schema.new_models(["anthropic/claude-sonnet-4-5"]) == ()  # legacy: known


def test_with_extra_models_copies_and_never_changes_the_loaded_schema() -> None:
    doc = schema.manifest_schema()
    before = list(doc["$defs"]["model"]["enum"])
    extended = schema.with_extra_models(doc, [NEW, NEW, "openai/gpt-6-astra"])
    assert extended["$defs"]["model"]["enum"] == [*before, NEW]
    assert doc["$defs"]["model"]["enum"] == before
    assert schema.with_extra_models(doc, []) is doc


def test_one_validator_per_set_of_new_models() -> None:
    assert schema.validator() is schema.validator(())
    assert schema.validator(["openai/gpt-6-astra"]) is schema.validator()  # nothing new
    assert schema.validator([NEW, "b/x"]) is schema.validator(["b/x", NEW, NEW])
    doc = {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": {"name": "a"},
        "spec": spec(generation_model=NEW),
    }
    assert not schema.validator().is_valid(doc)
    assert schema.validator([NEW]).is_valid(doc)


# -- the rules ------------------------------------------------------------------------------


def test_a_current_spec_gets_no_advice() -> None:
    assert (
        advice(
            generation_model="anthropic/claude-sonnet-5-5-thinking",
            generation_thinking_budget=100,
            outline_model="anthropic/claude-haiku-4-5",
            revision_types=["consistency"],
            revision_model="openai/gpt-6-luna-thinking",
            revision_thinking_budget=100,
            max_revision_cycles=2,
        )
        == []
    )


def test_every_legacy_model_field_is_advised_unless_listed_as_extra() -> None:
    old = "gemini/gemini-3-pro-preview"
    fields: dict[str, Any] = {"generation_model": old, "outline_model": old, "revision_model": old}
    fields["filtering_types"] = ["structural"]
    assert advice(**fields) == [(k, "legacy-model") for k in schema.MODEL_FIELDS]
    assert advice(extra=(old,), **fields) == []


def test_an_extra_model_is_never_advised_as_legacy() -> None:
    assert advice(extra=(NEW,), generation_model=NEW) == []


@pytest.mark.parametrize("value", [True, False])
def test_enable_revisions_is_always_deprecated(value: bool) -> None:
    assert advice(enable_revisions=value) == [("enable_revisions", "deprecated")]


def test_a_budget_whose_model_is_not_thinking() -> None:
    assert advice(outline_model="openai/gpt-6-astra", outline_thinking_budget=5) == [
        ("outline_thinking_budget", "no-effect")
    ]
    assert advice(outline_thinking_budget=5) == []  # the API's default model: unknown here


def test_a_revision_budget_without_revisions_is_said_once() -> None:
    found = advice(revision_model="openai/gpt-6-astra", revision_thinking_budget=5)
    assert found == [("revision_model", "no-effect"), ("revision_thinking_budget", "no-effect")]
    messages = [m for _k, m, _c in _advice(spec(revision_thinking_budget=5), ())]
    assert messages == [
        "spec.revision_thinking_budget has no effect: no revision or filtering runs (spec sets "
        "neither revision_types nor filtering_types); add one of them, or remove "
        "revision_thinking_budget"
    ]


@pytest.mark.parametrize(
    "on",
    [
        {"revision_types": ["conformance"]},
        {"filtering_types": ["conformance"]},
        {"enable_revisions": True},
    ],
)
def test_revision_settings_count_while_revisions_run(on: dict[str, Any]) -> None:
    found = advice(**on, max_revision_cycles=3, revision_model="openai/gpt-6-astra-thinking")
    assert [k for k, _ in found] == (["enable_revisions"] if "enable_revisions" in on else [])
