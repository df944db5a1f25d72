"""The emulator's parts without HTTP: rate limiter, seeded dice, settings, validation."""

from __future__ import annotations

from typing import Any

import pytest

from dfr_emulator import EmulatorConfig, ManualClock
from dfr_emulator.config import coerce_knobs
from dfr_emulator.faults import Dice, RateLimiter, retry_after_header
from dfr_emulator.fileserver import SIZES_KEPT, FileHostStats
from dfr_emulator.seeds import MODEL_PRICE_PER_SAMPLE, price_per_sample
from dfr_emulator.validation import (
    ALL_REVISION_TYPES,
    DEFAULT_MODEL,
    DEFAULT_THINKING_BUDGET,
    RUNTIME_PARAM_FIELDS,
    legacy_runtime_params,
    model_names,
    runtime_params,
    validate_body,
)


def test_rate_limiter_slides_a_one_second_window() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    assert [limiter.admit(2) for _ in range(2)] == [None, None]
    wait = limiter.admit(2)
    assert wait == pytest.approx(1.0)
    clock.advance(0.4)
    assert limiter.admit(2) == pytest.approx(0.6)
    clock.advance(0.6)
    assert limiter.admit(2) is None  # the oldest slot has freed up
    assert limiter.admit(0.5) is not None  # capacity is at least one request


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.0) == "1"
    assert retry_after_header(1.2) == "2"


def test_dice_are_seeded_and_independent_per_kind() -> None:
    def draws(dice: Dice) -> list[bool]:
        return [dice.roll("failure", 0.5) for _ in range(50)]

    alone = Dice(3)
    mixed = Dice(3)
    first = draws(alone)
    mixed.roll("garbage", 0.5)  # another kind does not shift the sequence
    assert draws(mixed) == first
    assert draws(Dice(4)) != first
    assert not any(Dice(3).roll("x", 0.0) for _ in range(10))
    assert all(Dice(3).roll("x", 1.0) for _ in range(10))


def test_coerce_knobs_checks_json_types() -> None:
    assert coerce_knobs({"failure_rate": 1, "rate_limit": None}) == {
        "failure_rate": 1.0,
        "rate_limit": None,
    }
    assert coerce_knobs({"api_key": None, "retry_after": False}) == {
        "api_key": None,
        "retry_after": False,
    }
    for bad in ({"failure_rate": "0.5"}, {"fail_next": 1.5}, {"retry_after": 1}, {"seed": True}):
        with pytest.raises(ValueError):
            coerce_knobs(bad)


def test_replace_refuses_fixed_and_unknown_fields() -> None:
    config = EmulatorConfig()
    assert config.replace({"latency": 0.5}).latency == 0.5
    with pytest.raises(ValueError, match="clock"):
        config.replace({"clock": ManualClock()})
    with pytest.raises(ValueError, match="bogus"):
        config.replace({"bogus": 1})
    assert "clock" not in config.knobs()


def test_validation_and_defaults() -> None:
    body = {"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": 5}
    assert validate_body(body) == []
    assert validate_body(body, legacy=True) == []
    params = runtime_params(body)
    assert params == {
        "filtering_types": [],
        "generation_model": DEFAULT_MODEL,
        "generation_thinking_budget": DEFAULT_THINKING_BUDGET,
        "max_examples_in_prompt": None,
        "max_revision_cycles": None,
        "number_of_samples": 5,
        "outline_model": DEFAULT_MODEL,
        "outline_thinking_budget": DEFAULT_THINKING_BUDGET,
        "revision_model": None,
        "revision_thinking_budget": None,
        "revision_types": [],
        "seed_shuffling_level": "none",
        "skip_outline": False,
        "tools": [],
        "unified_multifield": True,
    }
    assert tuple(params) == RUNTIME_PARAM_FIELDS
    assert DEFAULT_MODEL in model_names()
    legacy = legacy_runtime_params(body)
    assert legacy["generation_model"] == "gemini/gemini-3-pro-preview-thinking"
    assert legacy["enable_revisions"] is False
    assert legacy["max_examples_in_prompt"] is None
    assert validate_body("text")[0]["type"] == "model_attributes_type"


def test_the_two_modes_accept_their_own_fields_and_models() -> None:
    base = {"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": 5}
    current = {**base, "generation_model": "openai/gpt-6-luna", "skip_outline": True}
    assert validate_body(current) == []
    assert [e["loc"] for e in validate_body(current, legacy=True)] == [
        ["body", "generation_model"],
        ["body", "skip_outline"],
    ]
    old = {**base, "generation_model": "gemini/gemini-3-pro-preview-thinking"}
    assert validate_body(old, legacy=True) == []
    [error] = validate_body(old)
    assert error["type"] == "literal_error"
    assert error["msg"].startswith("Input should be 'anthropic/claude-fable-5-1-thinking', ")
    assert error["msg"].endswith(" or 'databricks/system.ai.deepseek-v4-pro-0813'")
    assert len(model_names()) == 34
    assert len(model_names(legacy=True)) == 12


def test_runtime_params_follow_revisions_and_thinking() -> None:
    body: dict[str, Any] = {"number_of_samples": 5, "generation_model": "openai/gpt-6-luna"}
    plain = runtime_params(body)
    assert plain["generation_thinking_budget"] is None  # not a thinking model
    assert plain["outline_thinking_budget"] == DEFAULT_THINKING_BUDGET
    sent = runtime_params({**body, "outline_thinking_budget": 1234, "max_revision_cycles": 3})
    assert sent["outline_thinking_budget"] == 1234
    assert sent["max_revision_cycles"] is None  # revisions are off

    enabled = runtime_params({**body, "enable_revisions": True})
    assert enabled["revision_types"] == list(ALL_REVISION_TYPES)
    assert "distinguishability" in enabled["revision_types"]
    assert enabled["filtering_types"] == ["structural"]
    assert enabled["revision_model"] == DEFAULT_MODEL
    assert enabled["max_revision_cycles"] == 1
    assert enabled["revision_thinking_budget"] == DEFAULT_THINKING_BUDGET
    seedless = runtime_params({**body, "enable_revisions": True}, seeded=False)
    assert "distinguishability" not in seedless["revision_types"]

    chosen = runtime_params(
        {
            **body,
            "enable_revisions": True,
            "filtering_types": ["conformance"],
            "revision_model": "anthropic/claude-haiku-4-5",
            "revision_thinking_budget": 99,
            "max_revision_cycles": 4,
        }
    )
    assert chosen["revision_types"] == []  # the list given wins over the old switch
    assert chosen["filtering_types"] == ["conformance"]
    assert chosen["revision_model"] == "anthropic/claude-haiku-4-5"
    assert chosen["revision_thinking_budget"] is None  # not a thinking model
    assert chosen["max_revision_cycles"] == 4
    assert "enable_revisions" not in chosen


def test_every_model_has_a_price() -> None:
    for model in (*model_names(), *model_names(legacy=True)):
        assert model.removesuffix("-thinking") in MODEL_PRICE_PER_SAMPLE, model


def test_price_grows_with_thinking_revisions_tools_and_per_field_generation() -> None:
    base = runtime_params(
        {"number_of_samples": 1, "generation_model": "anthropic/claude-haiku-4-5"}
    )
    cheaper = price_per_sample(base)
    more = {**base, "generation_model": "anthropic/claude-opus-5-5-thinking"}
    assert price_per_sample(more) > cheaper
    revising = runtime_params({**base, "revision_types": ["consistency"]})
    assert price_per_sample(revising) > cheaper
    assert price_per_sample({**base, "tools": ["calculator"]}) > cheaper
    assert price_per_sample({**base, "unified_multifield": False}) > cheaper
    assert price_per_sample({**base, "skip_outline": True}) < cheaper
    legacy = legacy_runtime_params({"number_of_samples": 1})
    assert price_per_sample({**legacy, "enable_revisions": True}) > price_per_sample(legacy)


def test_the_emulator_package_imports_nothing_of_the_reconciler_but_shared_constants() -> None:
    """dfr_emulator is a sibling package: it stands in for the service, so it must
    not share the reconciler's parsers or rules (a double built from our own code
    would agree with our bugs). Only the exit-code constants are shared."""
    import ast
    from pathlib import Path

    import dfr_emulator

    allowed = {"reconciler.errors"}
    found: dict[str, set[str]] = {}
    for path in Path(dfr_emulator.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] == "reconciler" and name not in allowed:
                    found.setdefault(path.name, set()).add(name)
    assert found == {}


def test_the_file_hosts_stats_keep_the_latest_download_sizes_only() -> None:
    """A long-running `dfr emulator` serves downloads for hours: its memory stays flat."""
    stats = FileHostStats()
    for size in range(SIZES_KEPT + 5):
        stats.served(size)
    sizes = stats.snapshot()["download_sizes"]
    assert sizes == list(range(5, SIZES_KEPT + 5))  # the latest, in the order served
    stats.reset()
    assert stats.snapshot()["download_sizes"] == []
