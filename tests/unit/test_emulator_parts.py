"""The emulator's parts without HTTP: rate limiter, seeded dice, settings, validation."""

from __future__ import annotations

import pytest

from reconciler.emulator import EmulatorConfig, ManualClock
from reconciler.emulator.config import coerce_knobs
from reconciler.emulator.faults import Dice, RateLimiter, retry_after_header
from reconciler.emulator.seeds import price_per_sample
from reconciler.emulator.validation import runtime_params, validate_body


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
    params = runtime_params(body)
    assert params["generation_model"] == "gemini/gemini-3-pro-preview-thinking"
    assert params["seed_shuffling_level"] == "none"
    assert params["max_examples_in_prompt"] is None
    assert validate_body("text")[0]["type"] == "model_attributes_type"


def test_price_grows_with_thinking_revisions_and_per_field_generation() -> None:
    base = runtime_params(
        {"number_of_samples": 1, "generation_model": "anthropic/claude-haiku-4-5"}
    )
    cheaper = price_per_sample(base)
    assert price_per_sample({**base, "generation_model": "anthropic/claude-opus-4-5"}) > cheaper
    assert price_per_sample({**base, "enable_revisions": True}) > cheaper
    assert price_per_sample({**base, "unified_multifield": False}) > cheaper
