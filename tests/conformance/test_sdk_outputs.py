"""A run's outputs as the SDK describes them: generated files, downloads, the ZIP, evaluations.

Every answer of the issue-16 routes is checked against the SDK's models with
`conforms` (pydantic plus the key-by-key walk), and the official SDK itself is
a client of them: `runs.files.download`, `runs.files.download_all`,
`evaluations.create`/`retrieve`, `runs.evaluations.list`, including the
customer-hosted path where it follows a data-plane pointer through the
emulated gateway.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any, get_args, get_type_hints

import dataframer
import httpx
import pytest
from conformance_helpers import AUTH, BODY, KEY, RUNS, conforms, model_keys
from dataframer import Dataframer
from dataframer.types.data_plane_content_location import DataPlaneContentLocation
from dataframer.types.dataframer.evaluation_create_params import EvaluationCreateParams
from dataframer.types.dataframer.evaluation_create_response import EvaluationCreateResponse
from dataframer.types.dataframer.evaluation_retrieve_response import (
    DistributionAnalysis,
    EvaluationRetrieveResponse,
)
from dataframer.types.dataframer.file import File
from dataframer.types.dataframer.run_list_response import RunListResponse
from dataframer.types.dataframer.run_retrieve_response import RunRetrieveResponse
from dataframer.types.dataframer.runs.evaluation_list_response import (
    EvaluationListResponse,
    EvaluationListResponseItem,
)
from dataframer.types.dataframer.runs.file_download_all_response import FileDownloadAllResponse
from dataframer.types.dataframer.runs.file_download_response import FileDownloadResponse
from dataframer.types.sample_classification import SampleClassification

from dfr_emulator import Emulator, EmulatorConfig, ManualClock
from dfr_emulator.evaluations import EVALUATION_MODELS, largest_gap

EVALUATIONS = "/api/dataframer/evaluations/"
MIB = 1 << 20


def succeeded_run(http: httpx.Client, emu: Emulator, samples: int = 40) -> dict[str, Any]:
    created = http.post(RUNS, json={**BODY, "number_of_samples": samples})
    assert created.status_code == 201, created.text
    emu.advance(60)
    run: dict[str, Any] = http.get(f"{RUNS}{created.json()['id']}/").json()
    assert run["status"] == "SUCCEEDED"
    return run


def test_generated_files_are_what_the_sdk_describes(http: httpx.Client, emu: Emulator) -> None:
    run = succeeded_run(http, emu)
    assert conforms(RunRetrieveResponse, run) == []
    files = run["generated_files"]
    for item in files:
        assert set(item) == {"id", "path", "file_type", "size_bytes"}
        assert item["file_type"] in get_args(get_args(File.model_fields["file_type"].annotation)[0])
    paths = [f["path"] for f in files]
    assert len(set(paths)) == len(paths)
    assert {"data/part-0001.jsonl", "tables/property_counts.csv", "run_summary.json"} <= set(paths)
    assert any(p.count("/") >= 2 for p in paths)  # a nested folder
    assert max(f["size_bytes"] for f in files) > MIB
    listed = http.get(RUNS).json()
    assert conforms(RunListResponse, listed) == []
    assert all("generated_files" not in item for item in listed)
    # The same run, asked again, has the same files (ids included).
    assert http.get(f"{RUNS}{run['id']}/").json()["generated_files"] == files


def test_one_file_download_answer_and_sdk(http: httpx.Client, emu: Emulator, sdk: Any) -> None:
    run = succeeded_run(http, emu)
    for item in run["generated_files"]:
        raw = http.get(f"{RUNS}{run['id']}/files/{item['id']}/download/")
        assert raw.status_code == 200
        assert conforms(FileDownloadResponse, raw.json()) == []
        assert set(raw.json()) == model_keys(FileDownloadResponse)
        answer = sdk.dataframer.runs.files.download(item["id"], run_id=run["id"])
        assert answer.filename == item["path"].rsplit("/", 1)[-1]
        assert answer.content_type == item["file_type"]
        assert answer.download_url.startswith(emu.file_base_url + "/")
        assert not answer.download_url.startswith(emu.base_url + "/")
        body = httpx.get(answer.download_url).content  # no credentials: the URL is the permission
        assert len(body) == item["size_bytes"]
    assert emu.stats()["file_host"]["authorization_headers"] == 0
    assert emu.stats()["file_host"]["api_key_seen"] == 0
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.runs.files.download("no-such-file", run_id=run["id"])
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.runs.files.download(run["generated_files"][0]["id"], run_id=BODY["spec_id"])


def test_the_zip_202_then_200_through_the_sdk(http: httpx.Client, emu: Emulator, sdk: Any) -> None:
    run = succeeded_run(http, emu, samples=12)
    emu.configure(zip_build_polls=2)
    path = f"{RUNS}{run['id']}/files/download/"
    for _ in range(2):
        building = http.get(path)
        assert building.status_code == 202
        assert conforms(FileDownloadAllResponse, building.json()) == []
        assert building.json() == {"download_url": None, "size_bytes": None}
    ready = http.get(path)
    assert ready.status_code == 200
    assert conforms(FileDownloadAllResponse, ready.json()) == []
    assert set(ready.json()) == model_keys(FileDownloadAllResponse)
    # The SDK parses both answers into the same model; 200 carries the URL.
    answer = sdk.dataframer.runs.files.download_all(run["id"])
    assert answer.download_url and answer.size_bytes
    data = httpx.get(answer.download_url).content
    assert len(data) == answer.size_bytes
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    for item in run["generated_files"]:
        assert item["path"] in names and f"{item['path']}.metadata" in names
    assert "top_level.metadata" in names


def test_evaluation_create_retrieve_and_list(http: httpx.Client, emu: Emulator, sdk: Any) -> None:
    run = succeeded_run(http, emu)
    created = sdk.dataframer.evaluations.create(
        run_id=run["id"], evaluation_model="openai/gpt-6-astra"
    )
    assert isinstance(created, EvaluationCreateResponse)
    assert created.status == "PENDING" and created.run_id == run["id"]
    raw = http.get(f"{EVALUATIONS}{created.id}/").json()
    assert conforms(EvaluationCreateResponse, raw) == []
    assert set(raw) == model_keys(EvaluationRetrieveResponse)
    assert raw["distribution_analysis"] is None and raw["sample_classifications"] == []
    seen = []
    for _ in range(6):
        evaluation = sdk.dataframer.evaluations.retrieve(created.id)
        seen.append(evaluation.status)
        emu.advance(1)
    assert seen[0] == "PENDING" and "PROCESSING" in seen and seen[-1] == "SUCCEEDED"
    done = http.get(f"{EVALUATIONS}{created.id}/").json()
    assert conforms(EvaluationRetrieveResponse, done) == []
    assert done["completed_at"] and done["error_message"] is None
    for entry in done["distribution_analysis"]:
        assert set(entry) == model_keys(DistributionAnalysis)
        assert entry["total_samples"] == run["samples_completed"]
    assert len(done["sample_classifications"]) == run["samples_completed"]
    assert set(done["sample_classifications"][0]) == model_keys(SampleClassification)
    listed = http.get(f"{RUNS}{run['id']}/evaluations/").json()
    assert conforms(EvaluationListResponse, listed) == []
    assert [set(item) for item in listed] == [model_keys(EvaluationListResponseItem)]
    [item] = sdk.dataframer.runs.evaluations.list(run["id"])
    assert (item.id, item.status, item.run_id) == (created.id, "SUCCEEDED", run["id"])


def test_the_evaluation_gap_knob(http: httpx.Client, emu: Emulator, sdk: Any) -> None:
    run = succeeded_run(http, emu)
    emu.configure(
        evaluation_gap=12.5, evaluation_pending_seconds=0, evaluation_processing_seconds=0
    )
    evaluation = sdk.dataframer.evaluations.create(run_id=run["id"])
    done = http.get(f"{EVALUATIONS}{evaluation.id}/").json()
    prop, gap = largest_gap(done["distribution_analysis"])
    assert prop == "priority" and gap == pytest.approx(12.5, abs=0.011)
    for entry in done["distribution_analysis"]:
        assert sum(entry["evaluated_distributions"].values()) == pytest.approx(100, abs=0.05)


def test_evaluation_models_are_the_sdks() -> None:
    literal = get_type_hints(EvaluationCreateParams)["evaluation_model"]
    assert get_args(literal) == EVALUATION_MODELS


def test_evaluation_refusals_are_the_sdks_errors(
    http: httpx.Client, emu: Emulator, sdk: Any
) -> None:
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.evaluations.create(run_id="00000000-0000-4000-8000-000000000000")
    pending = http.post(RUNS, json=BODY).json()
    with pytest.raises(dataframer.BadRequestError):
        sdk.dataframer.evaluations.create(run_id=pending["id"])
    for body, kind in (
        ({}, "missing"),
        ({"run_id": 7}, "string_type"),
        ({"run_id": pending["id"], "evaluation_model": "gpt-2"}, "literal_error"),
        ({"run_id": pending["id"], "judge": "x"}, "extra_forbidden"),
    ):
        refused = http.post(EVALUATIONS, json=body)
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["type"] == kind
    assert http.post(EVALUATIONS, content=b"{").json()["detail"][0]["type"] == "json_invalid"
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.evaluations.retrieve("no-such-evaluation")
    with pytest.raises(dataframer.NotFoundError):
        sdk.dataframer.runs.evaluations.list("no-such-run")
    assert emu.stats()["evaluations_created"] == 0


@pytest.fixture
def hosted(clock: ManualClock) -> Any:
    config = EmulatorConfig(clock=clock, api_key=KEY, seed=5, customer_hosted=True)
    with Emulator(config) as emulator:
        yield emulator


def test_customer_hosted_pointers_followed_by_the_sdk(hosted: Emulator) -> None:
    with httpx.Client(base_url=hosted.base_url, headers=AUTH, timeout=5.0) as http:
        run = succeeded_run(http, hosted, samples=6)
        item = run["generated_files"][0]
        path = f"{RUNS}{run['id']}/files/{item['id']}/download/"
        refused = http.get(path)  # a client that cannot follow a pointer
        assert refused.status_code == 501
        pointer = http.get(path, headers={"X-Data-Plane-Follow": "1"}).json()
    allowed = model_keys(FileDownloadResponse) | model_keys(DataPlaneContentLocation)
    assert set(pointer) <= allowed and "download_url" not in pointer
    assert (
        conforms(
            DataPlaneContentLocation,
            {k: v for k, v in pointer.items() if k in model_keys(DataPlaneContentLocation)},
        )
        == []
    )
    assert pointer["data_plane"] is True and pointer["bytes_size"] == item["size_bytes"]
    sdk = Dataframer(api_key=KEY, base_url=hosted.base_url, max_retries=0, timeout=5.0)
    try:
        answer = sdk.dataframer.runs.files.download(item["id"], run_id=run["id"])
        assert answer.download_url is not None
        body = httpx.get(answer.download_url).content
        assert hashlib.sha256(body).hexdigest() == pointer["sha256"]
        first = sdk.dataframer.runs.files.download_all(run["id"])
        assert first.download_url is None  # the gateway is still building it
        ready = sdk.dataframer.runs.files.download_all(run["id"])
        assert ready.download_url and len(httpx.get(ready.download_url).content) == ready.size_bytes
    finally:
        sdk.close()
    stats = hosted.stats()["file_host"]
    assert stats["gateway_requests"] >= 3 and stats["api_key_seen"] == 0
    assert stats["authorization_headers"] == 0  # the gateway's token is not on a download


def test_a_customer_hosted_evaluation_is_filled_by_the_sdk(hosted: Emulator) -> None:
    with httpx.Client(base_url=hosted.base_url, headers=AUTH, timeout=5.0) as http:
        run = succeeded_run(http, hosted, samples=9)
        hosted.configure(evaluation_gap=6.0)
        created = http.post(EVALUATIONS, json={"run_id": run["id"]}).json()
        hosted.advance(60)
        raw = http.get(f"{EVALUATIONS}{created['id']}/").json()
    assert conforms(EvaluationRetrieveResponse, raw) == []
    assert raw["status"] == "SUCCEEDED"
    assert raw["content_unavailable_reason"] == "result_content_in_data_plane"
    assert raw["distribution_analysis"] == [] and raw["sample_classifications"] == []
    assert raw["content_location"]["data_plane"] is True
    sdk = Dataframer(api_key=KEY, base_url=hosted.base_url, max_retries=0, timeout=5.0)
    try:
        filled = sdk.dataframer.evaluations.retrieve(created["id"])
    finally:
        sdk.close()
    assert filled.content_unavailable_reason is None
    assert filled.distribution_analysis is not None
    analysis = [entry.model_dump() for entry in filled.distribution_analysis]
    assert conforms(list[DistributionAnalysis], analysis) == []
    prop, gap = largest_gap(analysis)
    assert prop == "priority" and gap == pytest.approx(6.0, abs=0.011)
    assert filled.sample_classifications is not None
    assert len(filled.sample_classifications) == run["samples_completed"]
    assert hosted.stats()["file_host"]["api_key_seen"] == 0
