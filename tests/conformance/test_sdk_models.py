"""Every answer of the emulator (default mode) is what the official SDK's models describe.

Runs in every status (get, list item, create answer, cancel answer), every seed
spec (get with and without versions, list), made-up specs, answers spoiled by
the fault knobs, and error bodies. Each is validated with the SDK's pydantic
model and walked key by key (`conforms`): 0 problems everywhere.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conformance_helpers import BODY, RUNS, SPECS, conforms, model_keys
from dataframer.types.dataframer.run_create_response import RunCreateResponse
from dataframer.types.dataframer.run_list_response import RunListResponse, RunListResponseItem
from dataframer.types.dataframer.run_retrieve_response import (
    RunRetrieveResponse,
    RuntimeParams,
)
from dataframer.types.dataframer.spec_list_response import SpecListResponse, SpecListResponseItem
from dataframer.types.dataframer.spec_retrieve_response import SpecRetrieveResponse, Version

from dfr_emulator import Emulator
from dfr_emulator.seeds import SEED_SPECS

#: Bodies that exercise every create field; each must give a conformant run.
BODIES: list[dict[str, Any]] = [
    BODY,
    {**BODY, "enable_revisions": True},
    {
        **BODY,
        "spec_version": 2,
        "generation_model": "openai/gpt-6-luna",
        "outline_model": "gemini/gemini-3.1-pro-preview-thinking",
        "outline_thinking_budget": 2048,
        "revision_types": ["consistency", "conformance"],
        "filtering_types": ["conformance"],
        "revision_model": "databricks/system.ai.claude-opus-5-thinking",
        "revision_thinking_budget": 4096,
        "max_revision_cycles": 3,
        "seed_shuffling_level": "field",
        "max_examples_in_prompt": 4,
        "unified_multifield": False,
        "skip_outline": True,
        "tools": ["calculator"],
    },
]


def create(http: httpx.Client, body: dict[str, Any] = BODY) -> dict[str, Any]:
    response = http.post(RUNS, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def get(http: httpx.Client, path: str, **params: str) -> Any:
    response = http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def runs_in_every_status(http: httpx.Client, emu: Emulator) -> dict[str, str]:
    """Run ids by status: PENDING, PROCESSING, SUCCEEDED, FAILED, CANCELED."""
    emu.configure(fail_next=1)
    failed = create(http)["id"]
    succeeded = create(http)["id"]
    canceled = create(http)["id"]
    assert http.post(f"{RUNS}{canceled}/cancel/").status_code == 200
    emu.advance(60)
    processing = create(http)["id"]
    emu.advance(3)  # 2 s pending by default
    pending = create(http)["id"]
    ids = {
        "PENDING": pending,
        "PROCESSING": processing,
        "SUCCEEDED": succeeded,
        "FAILED": failed,
        "CANCELED": canceled,
    }
    for status, run_id in ids.items():
        assert get(http, f"{RUNS}{run_id}/")["status"] == status
    return ids


def test_runs_in_every_status(http: httpx.Client, emu: Emulator) -> None:
    ids = runs_in_every_status(http, emu)
    for status, run_id in ids.items():
        run = get(http, f"{RUNS}{run_id}/")
        assert conforms(RunRetrieveResponse, run) == [], status
        # Every key the SDK names is there; generated_files only once SUCCEEDED.
        expected = model_keys(RunRetrieveResponse)
        if status != "SUCCEEDED":
            expected -= {"generated_files"}
        assert set(run) == expected, status
        assert set(run["runtime_params"]) == model_keys(RuntimeParams)
    listed = get(http, RUNS)
    assert conforms(RunListResponse, listed) == []
    assert [item["id"] for item in listed] == [
        ids[s] for s in ("PENDING", "PROCESSING", "CANCELED", "SUCCEEDED", "FAILED")
    ]
    for item in listed:
        assert set(item) == model_keys(RunListResponseItem)


@pytest.mark.parametrize("body", BODIES, ids=["minimal", "enable_revisions", "every_field"])
def test_create_and_cancel_answers_are_whole_runs(http: httpx.Client, body: dict[str, Any]) -> None:
    created = create(http, body)
    assert conforms(RunCreateResponse, created) == []
    assert set(created) == model_keys(RunCreateResponse) - {"generated_files"}
    assert created == get(http, f"{RUNS}{created['id']}/")
    canceled = http.post(f"{RUNS}{created['id']}/cancel/")
    assert canceled.status_code == 200
    assert conforms(RunRetrieveResponse, canceled.json()) == []
    assert canceled.json()["status"] == "CANCELED"


def test_runtime_params_are_what_was_sent_or_the_defaults(http: httpx.Client) -> None:
    every = create(http, BODIES[2])["runtime_params"]
    sent = {k: v for k, v in BODIES[2].items() if k not in ("spec_id", "spec_version")}
    # Thinking budgets apply to -thinking models only: gpt-6-luna has none.
    assert every == {**sent, "generation_thinking_budget": None}

    plain = create(http)["runtime_params"]
    assert plain["revision_model"] is None
    assert plain["max_revision_cycles"] is None
    assert plain["revision_thinking_budget"] is None
    assert plain["revision_types"] == [] and plain["filtering_types"] == []
    assert plain["max_examples_in_prompt"] is None

    enabled = create(http, BODIES[1])["runtime_params"]
    assert enabled["revision_types"] == [
        "coherence_flow",
        "consistency",
        "distinguishability",  # every seed spec is seeded
        "conformance",
    ]
    assert enabled["filtering_types"] == ["structural"]
    assert enabled["revision_model"] is not None
    assert enabled["max_revision_cycles"] == 1


@pytest.mark.parametrize("seed", SEED_SPECS, ids=[s.name for s in SEED_SPECS])
def test_every_seed_spec(http: httpx.Client, seed: Any) -> None:
    plain = get(http, f"{SPECS}{seed.id}/")
    full = get(http, f"{SPECS}{seed.id}/", include_versions="true")
    for spec in (plain, full):
        assert conforms(SpecRetrieveResponse, spec) == []
        assert "latest_version" not in spec
    expected = model_keys(SpecRetrieveResponse) - {"versions", "content_unavailable_reason"}
    if seed.data_plane:
        expected.add("content_unavailable_reason")
    assert set(plain) == expected
    assert set(full) == expected | {"versions"}
    for version in full["versions"]:
        assert set(version) == model_keys(Version)  # no number, no status
    if seed.status == "SUCCEEDED":
        assert len(full["versions"]) == seed.versions
        assert (plain["content_yaml"] is None) == seed.data_plane
    else:
        assert full["versions"] == [] and plain["content_yaml"] is None
    assert (plain["error"] is not None) == (seed.status == "FAILED")


def test_spec_list(http: httpx.Client) -> None:
    listed = get(http, SPECS)
    assert conforms(SpecListResponse, listed) == []
    assert len(listed) == len(SEED_SPECS)
    for item in listed:
        assert set(item) == model_keys(SpecListResponseItem)


def test_made_up_specs_conform(clock: Any) -> None:
    from dfr_emulator import EmulatorConfig

    any_id = "ABCDEF00-1234-4234-8234-123456789ABC"
    with (
        Emulator(EmulatorConfig(clock=clock, accept_any_spec=True)) as emu,
        httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer x"}) as c,
    ):
        run = c.post(RUNS, json={**BODY, "spec_id": any_id}).json()
        assert conforms(RunCreateResponse, run) == []
        assert run["spec_id"] == any_id.lower()
        spec = c.get(f"{SPECS}{any_id}/", params={"include_versions": "true"}).json()
        assert conforms(SpecRetrieveResponse, spec) == []
        assert spec["id"] == any_id.lower()
        assert conforms(SpecListResponse, c.get(SPECS).json()) == []


def test_the_checker_catches_what_it_should() -> None:
    """`conforms` is not vacuous: extra keys at any depth and bad values are reported."""
    assert conforms(RunRetrieveResponse, {"id": "x", "failure_reason": "boom"}) == [
        "$.failure_reason: not a field of RunRetrieveResponse"
    ]
    assert conforms(RunRetrieveResponse, {"runtime_params": {"enable_revisions": True}}) == [
        "$.runtime_params.enable_revisions: not a field of RuntimeParams"
    ]
    deep = {"versions": [{"created_at": "2025-01-01T00:00:00Z", "version": 1}]}
    assert conforms(SpecRetrieveResponse, deep) == ["$.versions[0].version: not a field of Version"]
    assert conforms(RunListResponse, [{"status": "IN_PROGRESS"}])  # not an SDK status
    assert conforms(SpecRetrieveResponse, {"content_location": {"data_plane": True, "x": 1}})


def test_fault_knobs_only_remove_keys(http: httpx.Client, emu: Emulator) -> None:
    ids = runs_in_every_status(http, emu)
    emu.configure(missing_fields_rate=1.0)
    created = create(http)
    assert conforms(RunCreateResponse, created) == []
    assert set(created) < model_keys(RunCreateResponse)
    listed = get(http, RUNS)
    assert conforms(RunListResponse, listed) == []
    for item in listed:
        assert set(item) < model_keys(RunListResponseItem)
    for run_id in ids.values():
        run = get(http, f"{RUNS}{run_id}/")
        assert conforms(RunRetrieveResponse, run) == []
        assert set(run) < model_keys(RunRetrieveResponse)
    emu.configure(missing_fields_rate=0.0, page_size=2)
    page = get(http, RUNS)
    assert conforms(RunListResponse, page["results"]) == []


def test_error_bodies(http: httpx.Client, emu: Emulator) -> None:
    """4xx answers carry `detail`: a string (DRF), or FastAPI's list for a 422."""
    unknown = "00000000-0000-4000-8000-000000000000"
    run_id = create(http)["id"]
    emu.advance(60)
    answers = {
        "run not found": http.get(f"{RUNS}{unknown}/"),
        "spec not found": http.get(f"{SPECS}{unknown}/"),
        "cancel a finished run": http.post(f"{RUNS}{run_id}/cancel/"),
        "spec not found on create": http.post(RUNS, json={**BODY, "spec_id": unknown}),
        "spec version not found": http.post(RUNS, json={**BODY, "spec_version": 9}),
        "no such route": http.get("/api/dataframer/nothing/"),
        "method not allowed": http.put(RUNS, json={}),
        "no key": httpx.get(f"{emu.base_url}{RUNS}"),
        "wrong key": httpx.get(f"{emu.base_url}{RUNS}", headers={"Authorization": "Bearer no"}),
    }
    for what, response in answers.items():
        assert 400 <= response.status_code < 500, what
        body = response.json()
        assert set(body) == {"detail"} and isinstance(body["detail"], str), what
    invalid = http.post(RUNS, json={"number_of_samples": "many", "bogus": 1})
    assert invalid.status_code == 422
    detail = invalid.json()["detail"]
    assert {(tuple(d["loc"]), d["type"]) for d in detail} == {
        (("body", "spec_id"), "missing"),
        (("body", "number_of_samples"), "int_type"),
        (("body", "bogus"), "extra_forbidden"),
    }
    for item in detail:
        assert set(item) <= {"type", "loc", "msg", "input", "ctx"}
        assert {"type", "loc", "msg", "input"} <= set(item)
