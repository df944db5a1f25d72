"""The official SDK, used as a client, against a real emulator on 127.0.0.1.

`Dataframer(api_key=..., base_url=emulator.base_url)`: create, retrieve, list
and cancel runs, retrieve and list specs, and read the parsed values.
"""

from __future__ import annotations

from datetime import datetime

import dataframer
import pytest
from conformance_helpers import KEY, all_present
from dataframer import Dataframer
from dataframer.types.data_plane_content_location import DataPlaneContentLocation

from dfr_emulator import (
    SPEC_INSURANCE_CLAIMS,
    SPEC_LEGAL_CONTRACTS,
    SPEC_MEDICAL_NOTES,
    SPEC_PRODUCT_REVIEWS,
    SPEC_SUPPORT_TICKETS,
    Emulator,
)


def test_create_retrieve_list_cancel(sdk: Dataframer, emu: Emulator) -> None:
    runs = sdk.dataframer.runs
    created = runs.create(spec_id=SPEC_SUPPORT_TICKETS.upper(), number_of_samples=25)
    assert created.id and created.status == "PENDING"
    assert created.spec_id == SPEC_SUPPORT_TICKETS  # lower case whatever was sent
    assert created.spec_version == 3  # the latest
    assert isinstance(created.created_at, datetime)
    assert created.completed_at is None
    params = created.runtime_params
    assert params is not None
    assert params.number_of_samples == 25
    assert params.generation_model == "anthropic/claude-sonnet-5-5-thinking"
    assert params.generation_thinking_budget == 8000
    # Revisions are off: no revision model, cycles or budget.
    assert (params.revision_model, params.max_revision_cycles) == (None, None)
    assert params.revision_thinking_budget is None
    assert params.revision_types == [] and params.filtering_types == []
    assert params.max_examples_in_prompt is None
    assert params.model_extra == {}
    assert created.model_extra == {}

    fetched = runs.retrieve(created.id)
    assert fetched.model_dump() == created.model_dump()
    emu.advance(60)
    done = runs.retrieve(created.id)
    assert done.status == "SUCCEEDED"
    assert isinstance(done.completed_at, datetime)
    assert done.samples_completed is not None and done.samples_failed is not None
    assert done.samples_completed + done.samples_failed == 25
    assert done.total_cost is not None and done.total_cost > 0
    assert done.generated_files and all(f.size_bytes for f in done.generated_files)

    other = runs.create(
        spec_id=SPEC_PRODUCT_REVIEWS,
        number_of_samples=5,
        spec_version=1,
        generation_model="openai/gpt-6-luna",
        revision_types=["consistency"],
        revision_model="anthropic/claude-haiku-4-5",
        max_revision_cycles=2,
        tools=["calculator"],
    )
    assert other.runtime_params is not None
    assert other.runtime_params.generation_thinking_budget is None  # not a thinking model
    assert other.runtime_params.revision_model == "anthropic/claude-haiku-4-5"
    assert other.runtime_params.max_revision_cycles == 2
    assert other.runtime_params.tools == ["calculator"]
    assert other.spec_version == 1

    listed = runs.list()
    assert [r.id for r in listed] == [other.id, created.id]  # newest first
    assert all(r.model_extra == {} for r in listed)
    assert listed[1].status == "SUCCEEDED"

    assert other.id
    # The SDK types cancel as returning nothing; the test checks it reads no body.
    assert runs.cancel(other.id) is None  # type: ignore[func-returns-value]
    assert runs.retrieve(other.id).status == "CANCELED"
    with pytest.raises(dataframer.BadRequestError):
        runs.cancel(created.id)  # SUCCEEDED: nothing to cancel
    runs.delete(other.id)
    with pytest.raises(dataframer.NotFoundError):
        runs.retrieve(other.id)


def test_a_failed_run_has_no_reason(sdk: Dataframer, emu: Emulator) -> None:
    emu.configure(fail_next=1)
    run = sdk.dataframer.runs.create(spec_id=SPEC_SUPPORT_TICKETS, number_of_samples=10)
    assert run.id
    emu.advance(60)
    failed = sdk.dataframer.runs.retrieve(run.id)
    assert failed.status == "FAILED"
    assert failed.model_extra == {}  # no error, no failure_reason
    assert failed.generated_files is None


def test_specs(sdk: Dataframer) -> None:
    specs = sdk.dataframer.specs
    listed = {s.id: s for s in specs.list()}
    assert set(listed) >= {SPEC_SUPPORT_TICKETS, SPEC_MEDICAL_NOTES, SPEC_INSURANCE_CLAIMS}
    assert listed[SPEC_LEGAL_CONTRACTS].status == "FAILED"
    assert all(s.model_extra == {} for s in listed.values())

    plain = specs.retrieve(SPEC_SUPPORT_TICKETS.upper())
    assert plain.id == SPEC_SUPPORT_TICKETS
    assert plain.versions is None
    assert plain.content_yaml is not None and plain.content_yaml.startswith("spec:\n")
    assert plain.error is None and plain.content_unavailable_reason is None
    assert isinstance(plain.updated_at, datetime)
    assert plain.runtime_params
    assert plain.model_extra == {}

    full = specs.retrieve(SPEC_SUPPORT_TICKETS, include_versions=True)
    assert full.versions is not None and len(full.versions) == 3
    created = all_present(v.created_at for v in full.versions)
    assert created == sorted(created)  # version N is the Nth by created_at
    for version in full.versions:
        assert version.model_extra == {}  # no number, no status
        assert version.content_yaml and version.content_location is None
    assert full.versions[-1].content_yaml == plain.content_yaml

    for spec_id in (SPEC_MEDICAL_NOTES, SPEC_LEGAL_CONTRACTS):
        spec = specs.retrieve(spec_id, include_versions=True)
        assert spec.content_yaml is None and spec.versions == []
    assert specs.retrieve(SPEC_LEGAL_CONTRACTS).error
    with pytest.raises(dataframer.NotFoundError):
        specs.retrieve("00000000-0000-4000-8000-000000000000")


def test_data_plane_spec_as_the_api_answers_it(sdk: Dataframer, emu: Emulator) -> None:
    """The raw answer: a ready spec whose YAML is a pointer into the customer's cloud.

    (A plain `retrieve` would follow the pointer through the customer's gateway,
    which the emulator does not have; `with_raw_response` returns the API's own
    answer, parsed.)
    """
    raw = sdk.dataframer.specs.with_raw_response.retrieve(
        SPEC_INSURANCE_CLAIMS, include_versions=True
    )
    spec = raw.parse()
    assert spec.status == "SUCCEEDED"
    assert spec.content_yaml is None
    assert spec.content_unavailable_reason == "spec_content_in_data_plane"
    assert spec.content_location is not None
    location = DataPlaneContentLocation.model_validate(spec.content_location.model_dump())
    assert location.data_plane is True and location.version == 2
    assert (
        location.s3_key and location.storage_uri and location.storage_uri.endswith(location.s3_key)
    )
    assert spec.versions is not None
    assert [v.content_location.version for v in spec.versions if v.content_location] == [1, 2]
    assert all(v.content_yaml is None for v in spec.versions)
    # It is ready: runs may use it.
    run = sdk.dataframer.runs.create(spec_id=SPEC_INSURANCE_CLAIMS, number_of_samples=3)
    assert run.spec_version == 2
    # The SDK takes the pointer for a real one: a plain retrieve goes on to ask
    # for a data-plane token, which this emulator mints only with customer_hosted.
    emu.reset_stats()
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.specs.retrieve(SPEC_INSURANCE_CLAIMS)
    assert emu.stats()["requests"] == {"specs.get": 1, "dataplane.token": 1}


def test_refusals_are_the_sdks_errors(sdk: Dataframer, emu: Emulator) -> None:
    runs = sdk.dataframer.runs
    with pytest.raises(dataframer.UnprocessableEntityError) as refused:
        runs.create(spec_id=SPEC_SUPPORT_TICKETS, number_of_samples=0)
    body = refused.value.body
    assert isinstance(body, dict)
    assert body["detail"][0]["loc"] == ["body", "number_of_samples"]
    with pytest.raises(dataframer.UnprocessableEntityError):
        runs.create(
            spec_id=SPEC_SUPPORT_TICKETS,
            number_of_samples=5,
            generation_model="gemini/gemini-3-pro-preview",  # type: ignore[arg-type]
        )
    with pytest.raises(dataframer.BadRequestError, match="SUCCEEDED"):
        runs.create(spec_id=SPEC_MEDICAL_NOTES, number_of_samples=5)
    with pytest.raises(dataframer.BadRequestError, match="version 4"):
        runs.create(spec_id=SPEC_SUPPORT_TICKETS, number_of_samples=5, spec_version=4)
    wrong = Dataframer(api_key="not-the-key", base_url=emu.base_url, max_retries=0)
    with pytest.raises(dataframer.PermissionDeniedError):
        wrong.dataframer.runs.list()
    wrong.close()
    assert emu.stats()["runs_created"] == 0
    assert KEY  # the fixtures' key was the one accepted
