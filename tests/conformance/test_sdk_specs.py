"""Specs made through the emulator are what the official SDK (pydataframer 0.19.2) describes.

Every answer of `POST /specs/`, `PUT /specs/{id}/`, `GET /specs/{id}/` (with
and without versions) and `GET /specs/` in every status of a made spec is
validated with the SDK's pydantic models and walked key by key (`conforms`).
Refused bodies get the 422 items pydantic gives for the SDK's
`SpecCreateParams` / `SpecUpdateParams`. Then the SDK itself is the client:
`client.dataframer.specs.create/retrieve/update/list/delete`, and runs on the
new spec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args, get_origin

import dataframer
import httpx
import pydantic
import pytest
import yaml
from conformance_helpers import SPECS, all_present, conforms, model_keys, reference_errors
from dataframer import Dataframer
from dataframer.types.dataframer.spec_create_params import SpecCreateParams
from dataframer.types.dataframer.spec_create_response import SpecCreateResponse
from dataframer.types.dataframer.spec_list_response import SpecListResponse
from dataframer.types.dataframer.spec_retrieve_response import SpecRetrieveResponse, Version
from dataframer.types.dataframer.spec_update_params import SpecUpdateParams
from dataframer.types.dataframer.spec_update_response import SpecUpdateResponse
from typing_extensions import Required, get_type_hints

from dfr_emulator import Emulator
from dfr_emulator.spec_content import SPEC_GENERATION_MODELS, create_errors, update_errors

SEEDLESS: dict[str, Any] = {
    "name": "support-emails",
    "generation_objectives": "Customer support emails about billing, one per sample.",
}
SEEDED: dict[str, Any] = {
    "name": "seeded-every-option",
    "dataset_id": "0b7c4a52-3f1e-4d8a-9c61-2e5f8a7b9d10",
    "description": "Every create option the SDK has",
    "extrapolate_axes": True,
    "extrapolate_values": False,
    "generate_distributions": True,
    "generate_conditional_distributions": True,
    "generation_objectives": "Tickets that escalate",
    "spec_generation_model_name": "openai/gpt-6.1-sol-thinking",
}
#: What the answers of a spec without versions carry: every key of the model but these.
PLAIN_KEYS = model_keys(SpecRetrieveResponse) - {"versions", "content_unavailable_reason"}
NEW_CONTENT = "spec:\n  description: Edited\n  requirements: Be brief.\nmetadata:\n  name: x\n"


def post(http: httpx.Client, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    response = http.post(SPECS, json=body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


def get(http: httpx.Client, spec_id: str, *, versions: bool = False) -> dict[str, Any]:
    params = {"include_versions": "true"} if versions else {}
    response = http.get(f"{SPECS}{spec_id}/", params=params)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def check_spec(spec: dict[str, Any], *, versions: bool) -> None:
    assert conforms(SpecRetrieveResponse, spec) == []
    assert set(spec) == PLAIN_KEYS | ({"versions"} if versions else set())
    for version in spec.get("versions", []):
        assert set(version) == model_keys(Version)  # no number, no status


@pytest.mark.parametrize("body", [SEEDLESS, SEEDED], ids=["seedless", "seeded"])
def test_every_answer_of_a_made_spec_conforms(
    http: httpx.Client, emu: Emulator, body: dict[str, Any]
) -> None:
    created = post(http, body)
    assert conforms(SpecCreateResponse, created) == []
    assert set(created) == PLAIN_KEYS
    assert created["status"] == "PROCESSING" and created["content_yaml"] is None
    for versions in (False, True):
        check_spec(get(http, created["id"], versions=versions), versions=versions)
    assert get(http, created["id"], versions=True)["versions"] == []

    emu.advance(60)
    done = get(http, created["id"], versions=True)
    check_spec(done, versions=True)
    assert done["status"] == "SUCCEEDED" and done["error"] is None
    assert len(done["versions"]) == 1
    assert done["versions"][0]["content_yaml"] == done["content_yaml"]
    assert (done["dataset_id"] is None) == ("dataset_id" not in body)

    response = http.put(f"{SPECS}{created['id']}/", json={"content_yaml": NEW_CONTENT})
    assert response.status_code == 200, response.text
    updated = response.json()
    assert conforms(SpecUpdateResponse, updated) == []
    assert set(updated) == PLAIN_KEYS
    check_spec(get(http, created["id"], versions=True), versions=True)

    listed = http.get(SPECS).json()
    assert conforms(SpecListResponse, listed) == []
    assert created["id"] in {item["id"] for item in listed}


def test_a_failed_spec_conforms(http: httpx.Client, emu: Emulator) -> None:
    emu.configure(spec_fail_next=1)
    created = post(http, SEEDLESS)
    emu.advance(60)
    failed = get(http, created["id"], versions=True)
    check_spec(failed, versions=True)
    assert failed["status"] == "FAILED" and failed["error"]
    assert failed["versions"] == [] and failed["content_yaml"] is None


def test_the_generated_yaml_is_a_spec_root_of_editable_fields(
    http: httpx.Client, emu: Emulator
) -> None:
    spec_id = post(http, SEEDED)["id"]
    emu.advance(60)
    document = yaml.safe_load(get(http, spec_id)["content_yaml"])
    assert set(document["spec"]) == {"description", "requirements", "data_property_variations"}
    assert document["spec"]["description"] == SEEDED["description"]
    for variation in document["spec"]["data_property_variations"]:
        assert variation["property_values"]
        assert sum(variation["base_distributions"].values()) == 100


# ----- refused bodies: the SDK's params as pydantic would check them ----------------------


def _reference(params: type) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    hints: dict[str, object] = get_type_hints(params, include_extras=True)
    for name, hint in hints.items():
        required = get_origin(hint) is Required
        kind = get_args(hint)[0] if required else hint
        fields[name] = (kind, ... if required else None)
    config = pydantic.ConfigDict(extra="forbid", strict=True)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{params.__name__}Body", __config__=config, **fields
    )
    return model


CREATE_REFERENCE = _reference(SpecCreateParams)
UPDATE_REFERENCE = _reference(SpecUpdateParams)


def test_the_references_are_the_sdks_params() -> None:
    assert set(CREATE_REFERENCE.model_fields) == set(SpecCreateParams.__annotations__)
    literal = CREATE_REFERENCE.model_fields["spec_generation_model_name"].annotation
    assert set(get_args(literal)) == set(SPEC_GENERATION_MODELS)
    assert set(UPDATE_REFERENCE.model_fields) == {"content_yaml"}


CREATE_CASES: list[Any] = [
    {},
    {"generation_objectives": "x"},
    {**SEEDLESS, "name": 3},
    {**SEEDLESS, "generation_objectives": ["a"]},
    {**SEEDLESS, "description": None},
    {**SEEDLESS, "generate_distributions": "yes"},
    {**SEEDLESS, "extrapolate_axes": 1},
    {**SEEDLESS, "spec_generation_model_name": "anthropic/claude-sonnet-5-5"},
    {**SEEDLESS, "dataset_id": 42},
    {**SEEDLESS, "number_of_samples": 5},
    {"name": None, "bogus": 1, "generate_conditional_distributions": "no"},
]
UPDATE_CASES: list[Any] = [
    {},
    {"content_yaml": 5},
    {"content_yaml": None},
    {"content_yaml": "spec: {}", "name": "x"},
]


@pytest.mark.parametrize("body", CREATE_CASES)
def test_create_422_items_are_pydantics(http: httpx.Client, emu: Emulator, body: Any) -> None:
    expected = reference_errors(CREATE_REFERENCE, body)
    assert expected and create_errors(body) == expected
    response = http.post(SPECS, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == expected
    assert emu.stats()["specs_created"] == 0


@pytest.mark.parametrize("body", UPDATE_CASES)
def test_update_422_items_are_pydantics(http: httpx.Client, emu: Emulator, body: Any) -> None:
    spec_id = post(http, SEEDLESS)["id"]
    emu.advance(60)
    expected = reference_errors(UPDATE_REFERENCE, body)
    assert expected and update_errors(body) == expected
    response = http.put(f"{SPECS}{spec_id}/", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == expected
    assert len(get(http, spec_id, versions=True)["versions"]) == 1


def test_valid_bodies_pass_both(http: httpx.Client) -> None:
    for body in (SEEDLESS, SEEDED):
        assert reference_errors(CREATE_REFERENCE, body) == [] == create_errors(body)
    assert reference_errors(UPDATE_REFERENCE, {"content_yaml": NEW_CONTENT}) == []


def test_the_known_differences_are_stricter(http: httpx.Client) -> None:
    """The SDK types `dataset_id` and `name` as plain strings; the API wants a UUID and a name."""
    for body, kind in (
        ({**SEEDLESS, "dataset_id": "not-a-uuid"}, "uuid_parsing"),
        ({**SEEDLESS, "name": ""}, "string_too_short"),
    ):
        assert reference_errors(CREATE_REFERENCE, body) == []
        [item] = post(http, body, 422)["detail"]
        assert item["type"] == kind


def test_refusals_of_well_typed_bodies_are_detail_strings(http: httpx.Client) -> None:
    for body in (
        {"name": "no-source"},
        {"name": "blank", "generation_objectives": "  "},
        {**SEEDLESS, "generate_distributions": False, "generate_conditional_distributions": True},
    ):
        assert reference_errors(CREATE_REFERENCE, body) == []
        detail = post(http, body, 400)["detail"]
        assert isinstance(detail, str) and detail
    assert isinstance(post(http, {**SEEDLESS, "name": "support-tickets"}, 409)["detail"], str)


# ----- the SDK as the client ------------------------------------------------------------


def test_the_sdk_creates_updates_and_reads_versions(sdk: Dataframer, emu: Emulator) -> None:
    specs = sdk.dataframer.specs
    created = specs.create(**SEEDLESS)
    assert created.status == "PROCESSING" and created.model_extra == {}
    assert isinstance(created.created_at, datetime)
    with pytest.raises(dataframer.BadRequestError, match="SUCCEEDED"):
        sdk.dataframer.runs.create(spec_id=created.id or "", number_of_samples=5)
    with pytest.raises(dataframer.BadRequestError, match="SUCCEEDED"):
        specs.update(created.id or "", content_yaml=NEW_CONTENT)
    emu.advance(60)
    spec_id = created.id or ""
    ready = specs.retrieve(spec_id, include_versions=True)
    assert ready.status == "SUCCEEDED" and ready.versions is not None and len(ready.versions) == 1

    updated = specs.update(spec_id, content_yaml=NEW_CONTENT)
    assert updated.model_extra == {}
    assert yaml.safe_load(updated.content_yaml or "")["spec"] == {
        "description": "Edited",
        "requirements": "Be brief.",
    }
    full = specs.retrieve(spec_id, include_versions=True)
    assert full.versions is not None and len(full.versions) == 2
    assert all(v.model_extra == {} for v in full.versions)
    times = all_present(v.created_at for v in full.versions)
    assert times == sorted(times) and len(set(times)) == 2  # oldest first, no tie
    assert full.versions[-1].content_yaml == full.content_yaml == updated.content_yaml

    run = sdk.dataframer.runs.create(spec_id=spec_id, number_of_samples=5, spec_version=1)
    assert run.spec_version == 1 and run.spec_name == SEEDLESS["name"]
    latest = sdk.dataframer.runs.create(spec_id=spec_id, number_of_samples=5)
    assert latest.spec_version == 2
    assert latest.dataset_id is None and latest.runtime_params is not None
    assert latest.runtime_params.revision_types == []

    assert spec_id in {s.id for s in specs.list()}
    with pytest.raises(dataframer.ConflictError):
        specs.create(**SEEDLESS)
    with pytest.raises(dataframer.BadRequestError, match="force"):
        specs.delete(spec_id)
    # The SDK types delete as returning nothing; the test checks it reads no body.
    assert specs.delete(spec_id, force=True) is None  # type: ignore[func-returns-value]
    with pytest.raises(dataframer.NotFoundError):
        specs.retrieve(spec_id)
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.runs.retrieve(run.id or "")
    assert specs.create(**SEEDLESS).name == SEEDLESS["name"]  # the name is free again


def test_the_sdk_reads_a_failed_spec(sdk: Dataframer, emu: Emulator) -> None:
    emu.configure(spec_fail_pattern="^doomed-")
    created = sdk.dataframer.specs.create(name="doomed-one", generation_objectives="x")
    emu.advance(60)
    failed = sdk.dataframer.specs.retrieve(created.id or "", include_versions=True)
    assert failed.status == "FAILED" and failed.error
    assert failed.versions == [] and failed.content_yaml is None
    with pytest.raises(dataframer.BadRequestError, match="FAILED"):
        sdk.dataframer.runs.create(spec_id=created.id or "", number_of_samples=5)
