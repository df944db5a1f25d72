"""`reconciler.api.evaluations`: tolerant parsing, the gap arithmetic, and the endpoints
against the emulator over real HTTP (issue 16, item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.emulators import KEY, SUPPORT, emulator

from reconciler.api.client import DataframerClient
from reconciler.api.evaluations import Evaluation, PropertyGap
from reconciler.errors import NotFoundError, OutcomeUnknown, RequestRejected

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
SHARES = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 100, allow_nan=False), max_size=4
)


@given(
    st.dictionaries(
        st.sampled_from([*Evaluation.__dataclass_fields__, "distribution_analysis", "x"]),
        JSON,
        max_size=6,
    )
)
@settings(max_examples=300)
def test_any_answer_parses_without_raising(data: dict[str, Any]) -> None:
    evaluation = Evaluation.from_json(data, fallback_id="e-1")
    assert evaluation.id
    gaps = evaluation.gaps()
    assert all(g >= 0 for g in gaps.values())
    worst = evaluation.worst
    assert worst is None or worst[1] == max(gaps.values())


@given(SHARES, SHARES)
def test_a_gap_is_the_largest_difference_at_any_value(requested: Any, evaluated: Any) -> None:
    prop = PropertyGap("p", requested, None, evaluated)
    if not requested:
        assert prop.gap is None
        return
    values = set(requested) | set(evaluated)
    expected = max(abs(requested.get(v, 0.0) - evaluated.get(v, 0.0)) for v in values)
    assert prop.gap == pytest.approx(expected)
    worst = prop.worst_value
    assert worst is not None
    assert abs(requested.get(worst, 0.0) - evaluated.get(worst, 0.0)) == pytest.approx(expected)


def test_the_worst_property_of_an_analysis() -> None:
    data = {
        "id": "e",
        "status": "succeeded",
        "distribution_analysis": [
            {
                "property_name": "tone",
                "requested_distributions": {"calm": 50, "angry": 50},
                "evaluated_distributions": {"calm": 62.5, "angry": "37.5"},
            },
            {
                "property_name": "topic",
                "requested_distributions": {"billing": 100},
                "evaluated_distributions": {"billing": 97, "other": 3},
            },
            {"property_name": "no-eval", "requested_distributions": {"x": 100}},
            "junk",
        ],
    }
    evaluation = Evaluation.from_json(data)
    assert evaluation.status == "SUCCEEDED" and evaluation.is_final
    assert evaluation.gaps() == {"tone": 12.5, "topic": 3.0}
    assert evaluation.worst == ("tone", 12.5)


# -- over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def client() -> Iterator[tuple[DataframerClient, Any]]:
    with (
        emulator(
            evaluation_pending_seconds=0.0, evaluation_processing_seconds=0.0, evaluation_gap=4.0
        ) as emu,
        DataframerClient(emu.base_url, KEY) as c,
    ):
        yield c, emu


def _succeeded_run(c: DataframerClient, emu: Any) -> str:
    run = c.create_run({"spec_id": SUPPORT, "number_of_samples": 5})
    emu.force_status(run.id, "SUCCEEDED")
    return str(run.id)


def test_create_list_and_get(client: tuple[DataframerClient, Any]) -> None:
    c, emu = client
    run_id = _succeeded_run(c, emu)
    assert c.list_evaluations(run_id) == []
    made = c.create_evaluation(run_id, "openai/gpt-6-astra")
    (listed,) = c.list_evaluations(run_id)
    assert listed.id == made.id and listed.distribution is None
    got = c.get_evaluation(made.id)
    assert got.run_id == run_id and got.status == "SUCCEEDED"
    assert got.worst is not None and got.worst[1] == pytest.approx(4.0)


def test_refusals_are_errors_not_unknown_outcomes(client: tuple[DataframerClient, Any]) -> None:
    c, emu = client
    with pytest.raises(RequestRejected):
        c.create_evaluation("00000000-1111-4222-8333-444444444444")
    with pytest.raises(RequestRejected):
        c.create_evaluation(_succeeded_run(c, emu), "not-a-model")
    with pytest.raises(NotFoundError):
        c.get_evaluation("00000000-1111-4222-8333-444444444444")
    assert emu.evaluations() == []


def test_a_lost_answer_is_an_unknown_outcome_sent_once(
    client: tuple[DataframerClient, Any],
) -> None:
    c, emu = client
    run_id = _succeeded_run(c, emu)
    emu.configure(ambiguous_evaluation_posts=1)
    with pytest.raises(OutcomeUnknown):
        c.create_evaluation(run_id)
    assert len(emu.evaluations()) == 1  # made once, never sent again by the client
    assert len(c.list_evaluations(run_id)) == 1


# -- hostile answers (a test transport) ---------------------------------------------------


def _client(handler: Any) -> DataframerClient:
    import httpx

    from reconciler.api.retry import RetryPolicy

    return DataframerClient(
        "http://127.0.0.1:9",
        KEY,
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(sleep=lambda _s: None),
    )


def test_a_create_answer_without_an_id_is_an_unknown_outcome() -> None:
    import httpx

    answer = httpx.Response(200, json={"status": "PENDING"})
    with _client(lambda _r: answer) as c, pytest.raises(OutcomeUnknown):
        c.create_evaluation("r-1")


@pytest.mark.parametrize(
    "answer", [{"not": "a list"}, ["not an object"], "text"], ids=["object", "strings", "string"]
)
def test_a_list_that_is_not_a_list_of_objects_is_a_clear_error(answer: Any) -> None:
    import httpx

    from reconciler.errors import APIError

    with (
        _client(lambda _r: httpx.Response(200, json=answer)) as c,
        pytest.raises(APIError) as caught,
    ):
        c.list_evaluations("r-1")
    assert KEY not in caught.value.message


def test_another_runs_items_and_items_without_id_are_dropped() -> None:
    import httpx

    items = [{"id": "e1", "run_id": "R-1"}, {"id": "e2", "run_id": "r-2"}, {"run_id": "r-1"}]
    with _client(lambda _r: httpx.Response(200, json=items)) as c:
        assert [e.id for e in c.list_evaluations("r-1")] == ["e1"]


def test_a_hostile_analysis_never_raises_and_keeps_numbers_finite() -> None:
    data = {
        "id": "e",
        "status": "SUCCEEDED",
        "distribution_analysis": [
            {
                "property_name": "p\n\x1b[31m",
                "requested_distributions": {"a": "1e999", "b": 50, "c": True},
                "evaluated_distributions": {"a": float("nan"), "b": "70"},
            }
        ],
    }
    evaluation = Evaluation.from_json(data)
    assert evaluation.gaps() == {"p\n\x1b[31m": 20.0}
