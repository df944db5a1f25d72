"""The emulator refuses a create body as FastAPI would with the SDK's own parameter types.

The reference is a pydantic model built from the official SDK's
`RunCreateParams` (its 18 fields, their types and Literal lists), with
`extra="forbid"` as the API has, the schema's ranges (the old page's: the SDK
states none) and strict types (the emulator, like `dfr validate`, takes no
10.0 for a count and no "yes" for a boolean). Every error item the emulator
answers (`type`, `loc`, `msg`, `input`, `ctx`) must be the one pydantic gives.

Two known differences are left out of the comparison and tested on their own:
`spec_id` must be a UUID (the SDK types it `str`; the API checks it), and list
items must be unique (the schema says so; a Python list does not).
"""

from __future__ import annotations

from types import GenericAlias
from typing import Annotated, Any, get_args, get_origin

import httpx
import pydantic
import pytest
from conformance_helpers import BODY, RUNS
from conformance_helpers import reference_errors as errors_of
from dataframer.types.dataframer.run_create_params import RunCreateParams
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import Required, get_type_hints

from dfr_emulator import Emulator
from dfr_emulator.validation import model_names, schema_document, validate_body


def _reference_model() -> type[pydantic.BaseModel]:
    props = schema_document()["$defs"]["spec"]["properties"]
    fields: dict[str, Any] = {}
    hints: dict[str, object] = get_type_hints(RunCreateParams, include_extras=True)
    for name, hint in hints.items():
        required = get_origin(hint) is Required
        kind = get_args(hint)[0] if required else hint
        origin = get_origin(kind)
        if origin is not None and origin.__name__ == "Sequence":
            kind = GenericAlias(list, get_args(kind)[0])  # SequenceNotStr[str] at runtime
        bounds = {
            key: props[name][rule]
            for key, rule in (("ge", "minimum"), ("le", "maximum"))
            if rule in props[name]
        }
        if bounds:
            kind = Annotated[kind, pydantic.Field(**bounds)]
        fields[name] = (kind, ... if required else None)
    config = pydantic.ConfigDict(extra="forbid", strict=True)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        "RunCreateBody", __config__=config, **fields
    )
    return model


REFERENCE = _reference_model()


def reference_errors(body: Any) -> list[dict[str, Any]]:
    """What FastAPI answers for `body` with the reference model (sorted by loc)."""
    return errors_of(REFERENCE, body)


def test_the_reference_is_the_sdks_create_body() -> None:
    assert len(REFERENCE.model_fields) == 18
    sent = set(schema_document()["$defs"]["spec"]["properties"]) - {"spec_ref"}  # never sent
    assert set(REFERENCE.model_fields) == sent
    literal = REFERENCE.model_fields["generation_model"].annotation
    assert set(get_args(literal)) == set(model_names())


CASES: list[Any] = [
    {},
    {"number_of_samples": 5},
    {**BODY, "number_of_samples": 0},
    {**BODY, "number_of_samples": 20001},
    {**BODY, "number_of_samples": 10.0},
    {**BODY, "number_of_samples": 0.5},
    {**BODY, "number_of_samples": True},
    {**BODY, "number_of_samples": "5"},
    {**BODY, "spec_id": 42},
    {**BODY, "generation_model": "gpt-5"},
    {**BODY, "outline_model": 7},
    {**BODY, "revision_model": None},
    {**BODY, "generation_model": "anthropic/claude-opus-4-5"},  # the old page's
    {**BODY, "seed_shuffling_level": "all"},
    {**BODY, "revision_types": "consistency"},
    {**BODY, "revision_types": ["style", 3]},
    {**BODY, "filtering_types": ["structural", "x"]},
    {**BODY, "tools": "calculator"},
    {**BODY, "tools": [1, "calculator"]},
    {**BODY, "skip_outline": "no"},
    {**BODY, "unified_multifield": 1},
    {**BODY, "enable_revisions": "yes"},
    {**BODY, "max_revision_cycles": 6},
    {**BODY, "max_revision_cycles": 0},
    {**BODY, "generation_thinking_budget": 0},
    {**BODY, "outline_thinking_budget": "8k"},
    {**BODY, "revision_thinking_budget": [1]},
    {**BODY, "max_examples_in_prompt": {}},
    {**BODY, "spec_version": 0},
    {**BODY, "name": "x", "labels": {}},
    {"number_of_samples": -1, "bogus": 1, "generation_model": "x", "tools": [None]},
    [BODY],
    "text",
]


@pytest.mark.parametrize("body", CASES)
def test_422_items_are_pydantics(http: httpx.Client, emu: Emulator, body: Any) -> None:
    expected = reference_errors(body) if isinstance(body, dict) else None
    response = http.post(RUNS, json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    if expected is None:  # not an object at all: FastAPI's own item
        assert [(d["type"], d["loc"]) for d in detail] == [("model_attributes_type", ["body"])]
    else:
        assert detail == expected
    assert emu.runs() == []


def test_valid_bodies_pass_both(http: httpx.Client) -> None:
    full = {
        **BODY,
        "spec_version": 1,
        "generation_model": "moonshotai/Kimi-K3",
        "revision_types": ["coherence_flow"],
        "filtering_types": [],
        "tools": ["calculator"],
        "enable_revisions": False,
        "skip_outline": True,
        "generation_thinking_budget": 1,
    }
    assert reference_errors(full) == []
    assert http.post(RUNS, json=full).status_code == 201


def test_the_two_known_differences(http: httpx.Client) -> None:
    """Stricter than the SDK's types, as the schema says: a UUID, unique items."""
    not_uuid = http.post(RUNS, json={**BODY, "spec_id": "support-tickets"})
    assert reference_errors({**BODY, "spec_id": "support-tickets"}) == []
    assert not_uuid.status_code == 422
    [item] = not_uuid.json()["detail"]
    assert (item["type"], item["loc"]) == ("uuid_parsing", ["body", "spec_id"])
    twice = {**BODY, "revision_types": ["consistency", "consistency"]}
    assert reference_errors(twice) == []
    [item] = http.post(RUNS, json=twice).json()["detail"]
    assert (item["type"], item["loc"]) == ("value_error", ["body", "revision_types"])


def test_bad_json_is_fastapis_json_invalid(http: httpx.Client) -> None:
    response = http.post(
        RUNS, content=b'{"spec_id": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["type"] == "json_invalid"
    assert item["loc"] == ["body", 12]
    assert item["msg"] == "JSON decode error"
    assert item["ctx"]["error"]


# ----- the same comparison on generated bodies (no HTTP: the same function answers) -----

_MODELS = list(model_names())
_JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 30000),
    st.floats(-2, 30000, allow_nan=False),
    st.text(max_size=5),
    st.just([]),
    st.just({}),
)
_UUID = st.uuids().map(str)
_COUNT = st.one_of(st.integers(-2, 25000), _JUNK)


def _list_of(options: list[str]) -> st.SearchStrategy[Any]:
    item = st.one_of(st.sampled_from(options), st.text(max_size=4), st.integers(0, 3))
    return st.one_of(st.lists(item, max_size=3, unique=True), _JUNK)


_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "spec_id": st.one_of(_UUID, st.none(), st.integers(), st.booleans(), st.just([])),
    "number_of_samples": _COUNT,
    "spec_version": _COUNT,
    "generation_model": st.one_of(st.sampled_from(_MODELS), st.text(max_size=8), _JUNK),
    "outline_model": st.one_of(st.sampled_from(_MODELS), _JUNK),
    "revision_model": st.one_of(st.sampled_from(_MODELS), _JUNK),
    "generation_thinking_budget": _COUNT,
    "outline_thinking_budget": _COUNT,
    "revision_thinking_budget": _COUNT,
    "max_revision_cycles": st.one_of(st.integers(-1, 7), _JUNK),
    "max_examples_in_prompt": _COUNT,
    "revision_types": _list_of(
        ["coherence_flow", "consistency", "distinguishability", "conformance"]
    ),
    "filtering_types": _list_of(["structural", "conformance"]),
    "tools": st.one_of(st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=2), _JUNK),
    "seed_shuffling_level": st.one_of(
        st.sampled_from(["none", "sample", "field", "prompt"]), _JUNK
    ),
    "enable_revisions": st.one_of(st.booleans(), _JUNK),
    "skip_outline": st.one_of(st.booleans(), _JUNK),
    "unified_multifield": st.one_of(st.booleans(), _JUNK),
    "bogus_field": _JUNK,
}


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(_FIELDS)), unique=True, max_size=8))
    body = {name: draw(_FIELDS[name]) for name in names}
    # Usually with both required fields, so the other checks are reached.
    if draw(st.booleans()):
        body.setdefault("spec_id", draw(_UUID))
        body.setdefault("number_of_samples", draw(st.integers(1, 20000)))
    return body


def _unique_lists(body: dict[str, Any]) -> bool:
    """No list with equal items (JSON-equal: 1 and True differ, 1 and 1.0 do not)."""
    for value in body.values():
        if isinstance(value, list):
            keys = [(type(v) is bool, v) for v in value]
            if len(keys) != len({repr(k) for k in keys}):
                return False
    return True


@settings(max_examples=300)
@given(bodies())
def test_generated_bodies_get_pydantics_errors(body: dict[str, Any]) -> None:
    if not _unique_lists(body):
        return
    assert validate_body(body) == reference_errors(body)
