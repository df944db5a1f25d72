"""The emulator over real HTTP: API behaviour, lifecycle, every fault knob, admin endpoints.

Each test starts its own emulator on an ephemeral 127.0.0.1 port with a
manual clock, so nothing sleeps for the lifecycle and every run is the same.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.manual_api import authorized, get_ok, serve

from dfr_emulator import (
    SPEC_CHAT_TRANSCRIPTS,
    SPEC_INSURANCE_CLAIMS,
    SPEC_LEGAL_CONTRACTS,
    SPEC_MEDICAL_NOTES,
    SPEC_PRODUCT_REVIEWS,
    SPEC_SUPPORT_TICKETS,
    Emulator,
    EmulatorConfig,
    ManualClock,
)

RUNS = "/api/dataframer/runs/"
SPECS = "/api/dataframer/specs/"
AUTH = {"Authorization": "Bearer test-key"}
BODY: dict[str, Any] = {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 100}


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock)


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    yield from authorized(emu, "test-key")


def create(client: httpx.Client, **fields: Any) -> str:
    response = client.post(RUNS, json={**BODY, **fields})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    return run_id


def spec_versions(client: httpx.Client, spec_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{SPECS}{spec_id}/", params={"include_versions": "true"})
    assert response.status_code == 200, response.text
    versions: list[dict[str, Any]] = response.json()["versions"]
    return versions


def get(client: httpx.Client, run_id: str) -> dict[str, Any]:
    return get_ok(client, f"{RUNS}{run_id}/")


# ----- the API ---------------------------------------------------------------


def test_binds_loopback_on_an_ephemeral_port(emu: Emulator) -> None:
    assert emu.base_url.startswith("http://127.0.0.1:")
    assert emu.port > 0
    assert emu.start() == emu.base_url  # idempotent


def test_create_get_list_cancel_delete(client: httpx.Client, emu: Emulator) -> None:
    response = client.post(RUNS, json=BODY)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    run_id = response.json()["id"]
    # The SDK's RunCreateResponse is the whole run, as GET shows it.
    assert response.json() == get(client, run_id)

    run = get(client, run_id)
    assert run["id"] == run_id
    assert run["status"] == "PENDING"
    assert run["spec_id"] == SPEC_SUPPORT_TICKETS
    assert run["spec_name"] == "support-tickets"
    assert run["spec_version"] == 3  # latest when not asked
    assert run["created_at"].endswith("Z")
    assert run["completed_at"] is None
    assert run["created_by_email"]
    assert run["runtime_params"] == {
        "filtering_types": [],
        "generation_model": "anthropic/claude-sonnet-5-5-thinking",
        "generation_thinking_budget": 8000,
        "max_examples_in_prompt": None,
        "max_revision_cycles": None,
        "number_of_samples": 100,
        "outline_model": "anthropic/claude-sonnet-5-5-thinking",
        "outline_thinking_budget": 8000,
        "revision_model": None,
        "revision_thinking_budget": None,
        "revision_types": [],
        "seed_shuffling_level": "none",
        "skip_outline": False,
        "tools": [],
        "unified_multifield": True,
    }
    for gone in ("started_at", "error", "failure_reason"):
        assert gone not in run

    listed = client.get(RUNS).json()
    assert [r["id"] for r in listed] == [run_id]

    canceled = client.post(f"{RUNS}{run_id}/cancel/")
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "CANCELED"
    assert canceled.json() == get(client, run_id)
    assert get(client, run_id)["completed_at"] is not None
    again = client.post(f"{RUNS}{run_id}/cancel/")
    assert again.status_code == 400
    assert "CANCELED" in again.json()["detail"]

    deleted = client.delete(f"{RUNS}{run_id}/")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert client.get(f"{RUNS}{run_id}/").status_code == 404
    assert client.delete(f"{RUNS}{run_id}/").status_code == 404
    assert client.get(RUNS).json() == []


def test_paths_work_without_trailing_slash(client: httpx.Client) -> None:
    response = client.post(RUNS.rstrip("/"), json=BODY)
    assert response.status_code == 201
    run_id = response.json()["id"]
    assert client.get(f"{RUNS}{run_id}").status_code == 200
    assert client.get(RUNS.rstrip("/")).status_code == 200
    assert client.get(SPECS.rstrip("/")).status_code == 200
    assert client.get(f"{SPECS}{SPEC_SUPPORT_TICKETS}").status_code == 200
    assert client.post(f"{RUNS}{run_id}/cancel").status_code == 200
    assert client.delete(f"{RUNS}{run_id}").status_code == 204


def test_list_is_newest_first_without_files_and_params(client: httpx.Client, emu: Emulator) -> None:
    ids = [create(client) for _ in range(5)]
    emu.advance(60)
    listed = client.get(RUNS).json()
    assert [r["id"] for r in listed] == ids[::-1]
    for run in listed:
        assert run["status"] == "SUCCEEDED"
        assert "generated_files" not in run
        assert "runtime_params" not in run
        assert run["samples_completed"] > 0
    assert "generated_files" in get(client, ids[0])


def test_unknown_routes_and_methods(client: httpx.Client) -> None:
    for path in ("/", "/api/dataframer/", "/api/dataframer/things/", f"{RUNS}x/y/z/"):
        response = client.get(path)
        assert response.status_code == 404
        assert "detail" in response.json()
    response = client.put(RUNS, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert client.get(f"{RUNS}not-a-uuid/").status_code == 404
    assert client.post(f"{RUNS}not-a-uuid/cancel/").status_code == 404


def test_chunked_request_body(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        text = json.dumps(BODY).encode()
        yield text[:10]
        yield text[10:]

    response = client.post(RUNS, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201


# ----- auth ------------------------------------------------------------------


def test_auth_is_required(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url) as anonymous:
        response = anonymous.get(RUNS)
        assert response.status_code == 401
        assert "detail" in response.json()
        assert anonymous.get(RUNS, headers={"Authorization": "Bearer"}).status_code == 401
        assert anonymous.get(RUNS, headers={"Authorization": "Basic abc"}).status_code == 401
        assert anonymous.get(RUNS, headers={"Authorization": "Bearer anything"}).status_code == 200
    assert emu.stats()["runs_created"] == 0


def test_api_key_only_that_token(clock: ManualClock, capfd: pytest.CaptureFixture[str]) -> None:
    config = EmulatorConfig(clock=clock, api_key="s3cret-key", log_requests=True)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url) as c:
        wrong = c.get(RUNS, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        assert "detail" in wrong.json()
        assert c.get(RUNS, headers={"Authorization": "Bearer s3cret-key"}).status_code == 200
        assert c.get(RUNS).status_code == 401
    logged = capfd.readouterr()
    assert "GET /api/dataframer/runs/" in logged.err
    assert "s3cret-key" not in logged.err + logged.out


# ----- validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        ({"spec_id": SPEC_SUPPORT_TICKETS}, ["body", "number_of_samples"], "missing"),
        ({"number_of_samples": 5}, ["body", "spec_id"], "missing"),
        ({**BODY, "name": "x"}, ["body", "name"], "extra_forbidden"),
        ({**BODY, "number_of_samples": 0}, ["body", "number_of_samples"], "greater_than_equal"),
        ({**BODY, "number_of_samples": 20001}, ["body", "number_of_samples"], "less_than_equal"),
        ({**BODY, "number_of_samples": True}, ["body", "number_of_samples"], "int_type"),
        ({**BODY, "number_of_samples": 10.0}, ["body", "number_of_samples"], "int_type"),
        ({**BODY, "generation_model": "gpt-5"}, ["body", "generation_model"], "literal_error"),
        # The old page's models are not the current API's (but for two it still lists).
        (
            {**BODY, "generation_model": "gemini/gemini-3-pro-preview-thinking"},
            ["body", "generation_model"],
            "literal_error",
        ),
        ({**BODY, "outline_model": 7}, ["body", "outline_model"], "literal_error"),
        (
            {**BODY, "seed_shuffling_level": "all"},
            ["body", "seed_shuffling_level"],
            "literal_error",
        ),
        ({**BODY, "revision_types": "consistency"}, ["body", "revision_types"], "list_type"),
        (
            {**BODY, "revision_types": ["style"]},
            ["body", "revision_types", 0],
            "literal_error",
        ),
        (
            {**BODY, "filtering_types": ["structural", "x"]},
            ["body", "filtering_types", 1],
            "literal_error",
        ),
        ({**BODY, "tools": [1]}, ["body", "tools", 0], "string_type"),
        ({**BODY, "skip_outline": "no"}, ["body", "skip_outline"], "bool_type"),
        (
            {**BODY, "generation_thinking_budget": "8k"},
            ["body", "generation_thinking_budget"],
            "int_type",
        ),
        ({**BODY, "max_revision_cycles": 6}, ["body", "max_revision_cycles"], "less_than_equal"),
        ({**BODY, "spec_version": 0}, ["body", "spec_version"], "greater_than_equal"),
        ({**BODY, "spec_id": "not-a-uuid"}, ["body", "spec_id"], "uuid_parsing"),
        ({**BODY, "enable_revisions": "yes"}, ["body", "enable_revisions"], "bool_type"),
        ([BODY], ["body"], "model_attributes_type"),
        ("text", ["body"], "model_attributes_type"),
    ],
)
def test_invalid_bodies_get_422(
    client: httpx.Client, emu: Emulator, body: Any, loc: list[str], kind: str
) -> None:
    response = client.post(RUNS, json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {"loc": loc, "type": kind} in [{"loc": d["loc"], "type": d["type"]} for d in detail]
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail)
    assert emu.runs() == []


def test_non_json_body_gets_422(client: httpx.Client) -> None:
    response = client.post(RUNS, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", 1]  # where the parser stopped, as FastAPI says
    assert error["msg"] == "JSON decode error"
    empty = client.post(RUNS, content=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 422
    assert empty.json()["detail"] == [
        {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}
    ]


def test_every_error_of_a_body_is_listed(client: httpx.Client) -> None:
    body = {"number_of_samples": -1, "bogus": 1, "generation_model": "x"}
    locs = [d["loc"] for d in client.post(RUNS, json=body).json()["detail"]]
    assert ["body", "spec_id"] in locs
    assert ["body", "bogus"] in locs
    assert ["body", "number_of_samples"] in locs
    assert ["body", "generation_model"] in locs


def test_spec_rules(client: httpx.Client, emu: Emulator) -> None:
    unknown = client.post(RUNS, json={**BODY, "spec_id": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 400
    assert "not found" in unknown.json()["detail"]
    for spec_id in (SPEC_MEDICAL_NOTES, SPEC_LEGAL_CONTRACTS):
        refused = client.post(RUNS, json={**BODY, "spec_id": spec_id})
        assert refused.status_code == 400
        assert "Spec must be in SUCCEEDED status" in refused.json()["detail"]
    missing = client.post(RUNS, json={**BODY, "spec_version": 4})
    assert missing.status_code == 400
    assert "version 4" in missing.json()["detail"]
    assert emu.runs() == []

    assert get(client, create(client, spec_version=2))["spec_version"] == 2
    assert get(client, create(client, spec_id=SPEC_PRODUCT_REVIEWS))["spec_version"] == 2
    chat = get(client, create(client, spec_id=SPEC_CHAT_TRANSCRIPTS.upper()))
    assert chat["spec_name"] == "chat-transcripts"
    assert chat["spec_id"] == SPEC_CHAT_TRANSCRIPTS  # the API answers ids in lower case
    upper = client.get(f"{SPECS}{SPEC_CHAT_TRANSCRIPTS.upper()}/")
    assert upper.json()["id"] == SPEC_CHAT_TRANSCRIPTS
    # Run ids are UUIDs too: found in any letter case.
    assert get(client, chat["id"].upper())["id"] == chat["id"]
    # The data-plane spec is ready: runs may use it although its YAML is elsewhere.
    claims = get(client, create(client, spec_id=SPEC_INSURANCE_CLAIMS))
    assert claims["spec_version"] == 2


def test_accept_any_spec(clock: ManualClock) -> None:
    any_id = "12345678-1234-4234-8234-123456789abc"
    with (
        Emulator(EmulatorConfig(clock=clock, accept_any_spec=True)) as emu,
        httpx.Client(base_url=emu.base_url, headers=AUTH) as c,
    ):
        run = get(c, create(c, spec_id=any_id, spec_version=10))
        assert run["spec_id"] == any_id
        assert c.post(RUNS, json={**BODY, "spec_id": any_id, "spec_version": 11}).status_code == 400
        spec = c.get(f"{SPECS}{any_id}/").json()
        assert spec["status"] == "SUCCEEDED"
        assert spec["content_yaml"].startswith("spec:")
        assert len(spec_versions(c, any_id)) == 10
        assert any_id in [s["id"] for s in c.get(SPECS).json()]
        upper = "ABCDEF12-1234-4234-8234-123456789ABC"
        assert get(c, create(c, spec_id=upper))["spec_id"] == upper.lower()
        # Seed specs keep their own rules.
        assert c.post(RUNS, json={**BODY, "spec_id": SPEC_MEDICAL_NOTES}).status_code == 400


def test_specs(client: httpx.Client) -> None:
    specs = client.get(SPECS).json()
    by_id = {s["id"]: s for s in specs}
    assert by_id[SPEC_SUPPORT_TICKETS]["status"] == "SUCCEEDED"
    assert by_id[SPEC_SUPPORT_TICKETS]["name"] == "support-tickets"
    assert by_id[SPEC_MEDICAL_NOTES]["status"] == "PROCESSING"
    assert by_id[SPEC_LEGAL_CONTRACTS]["status"] == "FAILED"
    assert by_id[SPEC_INSURANCE_CLAIMS]["status"] == "SUCCEEDED"
    list_keys = {
        "id",
        "name",
        "status",
        "description",
        "dataset_id",
        "dataset_name",
        "dataset_type",
        "created_at",
    }
    for spec in specs:
        assert set(spec) == list_keys  # the SDK's SpecListResponseItem, no more

    plain = client.get(f"{SPECS}{SPEC_SUPPORT_TICKETS}/").json()
    assert "versions" not in plain
    assert "latest_version" not in plain
    assert plain["error"] is None
    assert plain["content_yaml"].startswith("spec:\n")
    assert plain["content_location"] is None
    assert "content_unavailable_reason" not in plain
    assert plain["created_by_email"]
    assert isinstance(plain["runtime_params"], dict)
    versions = spec_versions(client, SPEC_SUPPORT_TICKETS)
    assert len(versions) == 3
    for version in versions:
        assert set(version) == {"content_yaml", "content_location", "created_at"}
    # Version N is the Nth by created_at; the latest is the spec's own YAML.
    assert [v["created_at"] for v in versions] == sorted(v["created_at"] for v in versions)
    assert versions[-1]["content_yaml"] == plain["content_yaml"]
    assert len({v["content_yaml"] for v in versions}) == 3
    assert plain["updated_at"] == versions[-1]["created_at"]

    for spec_id in (SPEC_MEDICAL_NOTES, SPEC_LEGAL_CONTRACTS):
        spec = client.get(f"{SPECS}{spec_id}/").json()
        assert spec["content_yaml"] is None
        assert spec_versions(client, spec_id) == []
    failed = client.get(f"{SPECS}{SPEC_LEGAL_CONTRACTS}/").json()
    assert failed["error"] and "UTF-8" in failed["error"]
    assert client.get(f"{SPECS}{SPEC_MEDICAL_NOTES}/").json()["error"] is None
    assert client.get(f"{SPECS}00000000-0000-4000-8000-000000000000/").status_code == 404


def test_data_plane_spec(client: httpx.Client) -> None:
    spec = client.get(f"{SPECS}{SPEC_INSURANCE_CLAIMS}/").json()
    assert spec["status"] == "SUCCEEDED"
    assert spec["content_yaml"] is None
    assert spec["content_unavailable_reason"] == "spec_content_in_data_plane"
    pointer = spec["content_location"]
    assert pointer["data_plane"] is True
    assert pointer["version"] == 2
    assert pointer["storage_uri"].endswith(pointer["s3_key"])
    assert f"/Specs/{SPEC_INSURANCE_CLAIMS}/" in pointer["s3_key"]
    versions = spec_versions(client, SPEC_INSURANCE_CLAIMS)
    assert [v["content_location"]["version"] for v in versions] == [1, 2]
    assert all(v["content_yaml"] is None for v in versions)
    assert versions[-1]["content_location"] == pointer


def test_page_size_pages_the_lists_django_rest_style(client: httpx.Client, emu: Emulator) -> None:
    ids = [create(client) for _ in range(5)]
    assert isinstance(client.get(RUNS).json(), list)  # page_size 0: one plain array
    emu.configure(page_size=2)
    first = client.get(RUNS).json()
    assert first == {
        "count": 5,
        "next": f"{emu.base_url}{RUNS}?page=2",
        "previous": None,
        "results": first["results"],
    }
    seen: list[str] = []
    pages = 0
    url: str | None = f"{emu.base_url}{RUNS}"
    while url is not None:
        page = client.get(url).json()
        seen.extend(run["id"] for run in page["results"])
        for run in page["results"]:
            assert "runtime_params" not in run  # list items, as in the plain array
        url = page["next"]
        pages += 1
    assert (pages, seen) == (3, ids[::-1])
    last = client.get(RUNS, params={"page": 3}).json()
    assert last["next"] is None
    assert last["previous"] == f"{emu.base_url}{RUNS}?page=2"
    assert client.get(RUNS, params={"page": 2}).json()["previous"] == f"{emu.base_url}{RUNS}"
    for bad in ("4", "0", "abc"):
        refused = client.get(RUNS, params={"page": bad})
        assert refused.status_code == 404
        assert refused.json() == {"detail": "Invalid page."}

    specs = client.get(SPECS).json()
    assert specs["count"] == 6 and len(specs["results"]) == 2
    emu.configure(page_size=4)
    more = client.get(specs["next"]).json()  # the same URL, now with 4 a page
    assert more["next"] is None and len(more["results"]) == 2
    emu.configure(page_size=0)
    assert len(client.get(SPECS).json()) == 6


def test_an_empty_list_is_one_empty_page(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, page_size=10)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        assert c.get(RUNS).json() == {"count": 0, "next": None, "previous": None, "results": []}


# ----- lifecycle -------------------------------------------------------------


def test_lifecycle_follows_the_clock(client: httpx.Client, emu: Emulator) -> None:
    run_id = create(client, number_of_samples=1000)
    assert get(client, run_id)["status"] == "PENDING"
    emu.advance(2.5)  # pending 2 s, processing 5 s by default
    early = get(client, run_id)
    assert early["status"] == "PROCESSING"
    emu.advance(2.0)
    later = get(client, run_id)
    assert later["status"] == "PROCESSING"
    done_early = early["samples_completed"] + early["samples_failed"]
    done_later = later["samples_completed"] + later["samples_failed"]
    assert 0 < done_early < done_later < 1000
    assert 0 < early["total_cost"] < later["total_cost"]
    assert later["completed_at"] is None
    emu.advance(3.0)
    final = get(client, run_id)
    assert final["status"] == "SUCCEEDED"
    assert final["samples_completed"] + final["samples_failed"] == 1000
    assert final["completed_at"] > final["created_at"]
    files = final["generated_files"]
    assert files
    for f in files:
        assert set(f) == {"id", "path", "file_type", "size_bytes"}
        assert f["size_bytes"] > 0
    emu.advance(1000)
    assert get(client, run_id) == final  # terminal runs no longer change


def test_custom_durations_and_time_scale(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, pending_seconds=10, processing_seconds=10, time_scale=5)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        run_id = create(c)
        clock.advance(1.9)  # 9.5 emulated seconds
        assert get(c, run_id)["status"] == "PENDING"
        clock.advance(0.2)
        assert get(c, run_id)["status"] == "PROCESSING"
        emu.configure(time_scale=1.0)
        clock.advance(7.0)
        assert get(c, run_id)["status"] == "PROCESSING"
        clock.advance(3.0)
        assert get(c, run_id)["status"] == "SUCCEEDED"


def test_real_clock_default_finishes_runs(clock: ManualClock) -> None:
    config = EmulatorConfig(pending_seconds=0.05, processing_seconds=0.1)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        run_id = create(c)
        time.sleep(0.25)
        assert get(c, run_id)["status"] == "SUCCEEDED"


def test_cost_depends_on_model(client: httpx.Client, emu: Emulator) -> None:
    opus = create(client, generation_model="databricks/system.ai.claude-opus-5")
    haiku = create(client, generation_model="anthropic/claude-haiku-4-5")
    thinking = create(client, generation_model="databricks/system.ai.claude-opus-5-thinking")
    emu.advance(60)
    cost = {run_id: get(client, run_id)["total_cost"] for run_id in (opus, haiku, thinking)}
    assert cost[haiku] < cost[opus] < cost[thinking]


def test_in_progress_spelling(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, status_spelling="IN_PROGRESS")
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        run_id = create(c)
        emu.advance(3)
        assert get(c, run_id)["status"] == "IN_PROGRESS"
        assert c.get(RUNS).json()[0]["status"] == "IN_PROGRESS"
        assert c.post(f"{RUNS}{run_id}/cancel/").json()["status"] == "CANCELED"
        other = create(c)
        emu.configure(status_spelling="PROCESSING")
        emu.advance(3)
        assert get(c, other)["status"] == "PROCESSING"


def test_cancel_only_pending_or_processing(client: httpx.Client, emu: Emulator) -> None:
    pending = create(client)
    assert client.post(f"{RUNS}{pending}/cancel/").json()["status"] == "CANCELED"
    processing = create(client)
    emu.advance(4)
    canceled = client.post(f"{RUNS}{processing}/cancel/").json()
    assert canceled["status"] == "CANCELED"
    assert 0 < canceled["samples_completed"] < 100
    emu.advance(100)
    assert get(client, processing)["samples_completed"] == canceled["samples_completed"]
    finished = create(client)
    emu.advance(100)
    refused = client.post(f"{RUNS}{finished}/cancel/")
    assert refused.status_code == 400
    assert "SUCCEEDED" in refused.json()["detail"]
    assert emu.stats()["runs_canceled"] == 2


def test_fail_rate_and_fail_next(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, fail_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        run_id = create(c, number_of_samples=1000)
        emu.advance(100)
        run = get(c, run_id)
        assert run["status"] == "FAILED"
        assert "error" not in run and "failure_reason" not in run  # the SDK's run has neither
        assert run["completed_at"] is not None
        assert "generated_files" not in run
        assert run["samples_completed"] + run["samples_failed"] < 1000

        emu.configure(fail_rate=0.0, fail_next=2)
        first, second, third = create(c), create(c), create(c)
        emu.advance(100)
        assert [get(c, r)["status"] for r in (first, second, third)] == [
            "FAILED",
            "FAILED",
            "SUCCEEDED",
        ]
        assert emu.config.fail_next == 0


def test_force_status_and_set_outcome(client: httpx.Client, emu: Emulator) -> None:
    a, b, c = create(client), create(client), create(client)
    emu.force_status(a, "PAUSED_BY_OPERATOR")
    emu.force_status(b, "FAILED", reason="quota exceeded")
    emu.set_outcome(c, "FAILED", reason="model outage")
    assert get(client, a)["status"] == "PAUSED_BY_OPERATOR"
    failed = get(client, b)
    assert failed["status"] == "FAILED"
    assert "failure_reason" not in failed  # kept for legacy mode only
    assert failed["completed_at"] is not None
    assert get(client, c)["status"] == "PENDING"
    emu.advance(100)
    assert get(client, a)["status"] == "PAUSED_BY_OPERATOR"  # sticks
    assert get(client, c)["status"] == "FAILED"
    with pytest.raises(KeyError):
        emu.force_status("00000000-0000-4000-8000-000000000000", "FAILED")
    with pytest.raises(ValueError):
        emu.set_outcome(c, "CANCELED")


def test_forget_makes_the_api_answer_404(client: httpx.Client, emu: Emulator) -> None:
    run_id = create(client)
    emu.forget(run_id)
    assert client.get(f"{RUNS}{run_id}/").status_code == 404
    assert client.get(RUNS).json() == []
    assert emu.run(run_id) is None
    assert emu.stats()["runs_forgotten"] == 1
    with pytest.raises(KeyError):
        emu.forget(run_id)


# ----- faults ----------------------------------------------------------------


def test_rate_limit_with_retry_after(clock: ManualClock) -> None:
    with (
        Emulator(EmulatorConfig(clock=clock, rate_limit=3)) as emu,
        httpx.Client(base_url=emu.base_url, headers=AUTH) as c,
    ):
        codes = [c.get(RUNS) for _ in range(5)]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        limited = codes[3]
        assert int(limited.headers["retry-after"]) >= 1
        assert "detail" in limited.json()
        time.sleep(1.05)  # the sliding window moves on in real time
        assert c.get(RUNS).status_code == 200
        assert emu.stats()["injected"]["rate_limited"] == 2
        assert emu.stats()["responses"]["429"] == 2


def test_rate_limit_without_retry_after(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, rate_limit=1, retry_after=False)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        assert c.get(RUNS).status_code == 200
        limited = c.get(RUNS)
        assert limited.status_code == 429
        assert "retry-after" not in limited.headers
        emu.configure(rate_limit=None)
        assert all(c.get(RUNS).status_code == 200 for _ in range(10))


def test_failure_rate_answers_5xx_without_acting(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, failure_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        codes = {c.post(RUNS, json=BODY).status_code for _ in range(12)}
        assert codes <= {500, 502, 503}
        assert len(codes) > 1
        assert emu.runs() == []
        assert emu.stats()["injected"]["5xx"] == 12
        emu.configure(failure_rate=0.0)  # "stop the faults"
        create(c)
        assert len(emu.runs()) == 1


def test_failure_rate_is_seeded(clock: ManualClock) -> None:
    def pattern(seed: int) -> list[int]:
        config = EmulatorConfig(clock=clock, failure_rate=0.5, seed=seed)
        with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
            return [c.get(RUNS).status_code for _ in range(30)]

    first = pattern(7)
    assert first == pattern(7)
    assert 200 in first
    assert any(code >= 500 for code in first)
    assert first != pattern(8)


def test_post_5xx_after_create(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, post_5xx_after_create_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        response = c.post(RUNS, json=BODY)
        assert response.status_code in (500, 502, 503)
        assert len(emu.runs()) == 1  # created all the same
        assert c.get(RUNS).status_code == 200  # only creates are affected
        stats = emu.stats()
        assert stats["runs_created"] == 1
        assert stats["injected"]["post_5xx_after_create"] == 1


def test_ambiguous_post_creates_the_run_but_no_answer(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, ambiguous_posts=1)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        with pytest.raises(httpx.TransportError):
            c.post(RUNS, json=BODY)
        assert len(emu.runs()) == 1
        assert emu.config.ambiguous_posts == 0
        create(c)  # the next one is answered
        assert len(emu.runs()) == 2
        assert emu.stats()["injected"]["ambiguous_post"] == 1

        emu.configure(ambiguous_post_rate=1.0)
        with pytest.raises(httpx.TransportError):
            c.post(RUNS, json=BODY)
        assert len(emu.runs()) == 3
        assert c.get(RUNS).status_code == 200  # GETs are not affected


def test_reset_drops_connections_before_acting(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, reset_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        with pytest.raises(httpx.TransportError):
            c.get(RUNS)
        with pytest.raises(httpx.TransportError):
            c.post(RUNS, json=BODY)
        assert emu.runs() == []
        assert emu.stats()["injected"]["reset"] == 2
        emu.configure(reset_rate=0.0)
        assert c.get(RUNS).status_code == 200


def test_hang_outlasts_the_client_timeout(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, hang_rate=1.0, hang_seconds=60.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            c.post(RUNS, json=BODY, timeout=0.3)
        assert len(emu.runs()) == 1  # it acted before hanging
        emu.configure(hang_rate=0.0)
        assert c.get(RUNS).status_code == 200
    # stop() cut the hung answer short instead of waiting its 60 s (a bound far
    # from both, so a loaded machine cannot make it flaky).
    assert time.monotonic() - started < 30


def test_latency(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, latency=0.2)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        started = time.monotonic()
        assert c.get(RUNS).status_code == 200
        assert time.monotonic() - started >= 0.2


def test_garbage_answers(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, garbage_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        for _ in range(6):
            response = c.get(RUNS)
            assert response.status_code == 200
            with pytest.raises(json.JSONDecodeError):
                json.loads(response.content)
        # A create with a garbage answer still creates the run.
        assert c.post(RUNS, json=BODY).status_code == 200
        assert len(emu.runs()) == 1
        assert emu.stats()["injected"]["garbage"] == 7
        # Errors are not garbled.
        assert c.get(f"{RUNS}00000000-0000-4000-8000-000000000000/").status_code == 404


def test_missing_fields(clock: ManualClock) -> None:
    config = EmulatorConfig(clock=clock, missing_fields_rate=1.0)
    with Emulator(config) as emu, httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        answer = c.post(RUNS, json=BODY)
        assert answer.status_code == 201
        run_id = emu.runs()[0]["id"]
        full = emu.run(run_id)
        assert full is not None
        assert set(answer.json()) < set(full)  # fields only ever go missing
        assert all(full[k] == v for k, v in answer.json().items())
        for _ in range(5):
            partial = c.get(f"{RUNS}{run_id}/").json()
            assert set(partial) < set(full)
            assert all(full[k] == v for k, v in partial.items())
        for item in c.get(RUNS).json():
            assert len(item) < len(full) - 2
        emu.configure(page_size=1)
        page = c.get(RUNS).json()
        assert set(page) == {"count", "next", "previous", "results"}  # the page is whole
        assert set(page["results"][0]) < set(full) - {"runtime_params", "generated_files"}


def test_unknown_status(client: httpx.Client, emu: Emulator) -> None:
    run_id = create(client)
    emu.configure(unknown_status_rate=1.0, unknown_status_value="QUEUED_FOR_GPU")
    assert get(client, run_id)["status"] == "QUEUED_FOR_GPU"
    assert client.get(RUNS).json()[0]["status"] == "QUEUED_FOR_GPU"
    assert emu.runs()[0]["status"] == "PENDING"  # the truth is untouched
    emu.configure(unknown_status_rate=0.0)
    assert get(client, run_id)["status"] == "PENDING"


# ----- control surface -------------------------------------------------------


def test_stats_counts(client: httpx.Client, emu: Emulator) -> None:
    run_id = create(client)
    get(client, run_id)
    get(client, run_id)
    client.get(RUNS)
    client.get(SPECS)
    client.get(f"{SPECS}{SPEC_SUPPORT_TICKETS}/")
    client.post(f"{RUNS}{run_id}/cancel/")
    client.delete(f"{RUNS}{run_id}/")
    client.get("/nowhere")
    stats = emu.stats()
    assert stats["requests"] == {
        "runs.create": 1,
        "runs.get": 2,
        "runs.list": 1,
        "specs.list": 1,
        "specs.get": 1,
        "runs.cancel": 1,
        "runs.delete": 1,
        "unknown": 1,
    }
    assert stats["requests_total"] == 9
    assert stats["requests_by_method"] == {"POST": 2, "GET": 6, "DELETE": 1}
    assert stats["responses"] == {"201": 1, "200": 6, "204": 1, "404": 1}
    assert stats["runs_created"] == 1
    assert stats["runs_deleted"] == 1
    assert stats["runs_in_store"] == 0
    assert stats["injected_total"] == 0
    emu.reset_stats()
    assert emu.stats()["requests_total"] == 0


def test_admin_endpoints(client: httpx.Client, emu: Emulator) -> None:
    run_id = create(client)
    with httpx.Client(base_url=emu.base_url) as admin:  # no auth needed
        stats = admin.get("/_emulator/stats").json()
        assert stats["runs_created"] == 1
        assert stats["admin_requests"] == 1
        runs = admin.get("/_emulator/runs").json()
        assert [r["id"] for r in runs] == [run_id]
        assert "runtime_params" in runs[0]

        knobs = admin.post("/_emulator/configure", json={"failure_rate": 1, "seed": 3}).json()
        assert knobs["failure_rate"] == 1.0
        assert emu.config.failure_rate == 1.0
        assert admin.get("/_emulator/config").json()["seed"] == 3
        assert client.get(RUNS).status_code >= 500
        bad_knobs: list[dict[str, Any]] = [
            {"failure_rate": 2},
            {"failure_rate": "0.5"},
            {"nope": 1},
            {"port": 1},
            {"legacy": True},
            {"page_size": -1},
        ]
        for bad in bad_knobs:
            response = admin.post("/_emulator/configure", json=bad)
            assert response.status_code == 400
            assert response.json()["detail"]
        assert admin.post("/_emulator/configure", json={"failure_rate": 0}).status_code == 200

        assert admin.post("/_emulator/advance", json={"seconds": 3}).status_code == 200
        assert get(client, run_id)["status"] == "PROCESSING"
        body = {"run_id": run_id, "status": "FAILED", "reason": "boom"}
        assert admin.post("/_emulator/force_status", json=body).status_code == 200
        assert get(client, run_id)["status"] == "FAILED"
        other = create(client)
        body = {"run_id": other, "status": "FAILED"}
        assert admin.post("/_emulator/set_outcome", json=body).status_code == 200
        assert admin.post("/_emulator/forget", json={"run_id": run_id}).status_code == 200
        assert client.get(f"{RUNS}{run_id}/").status_code == 404
        assert admin.post("/_emulator/forget", json={"run_id": run_id}).status_code == 400
        assert admin.post("/_emulator/reset_stats").status_code == 200
        assert admin.get("/_emulator/stats").json()["requests_total"] == 0
        assert admin.get("/_emulator/nothing").status_code == 404
        emu.advance(100)
        assert get(client, other)["status"] == "FAILED"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        EmulatorConfig(failure_rate=1.5)
    with pytest.raises(ValueError, match="status_spelling"):
        EmulatorConfig(status_spelling="RUNNING")
    with pytest.raises(ValueError, match="api_key"):
        EmulatorConfig(api_key="")
    with Emulator(pending_seconds=0) as emu:
        assert emu.config.pending_seconds == 0
        with pytest.raises(ValueError, match="unknown"):
            emu.configure(no_such_knob=1)
        with pytest.raises(ValueError, match="port"):
            emu.configure(port=8080)
        assert emu.configure(latency=0.0).latency == 0.0


def test_stop_start_keeps_runs(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        run_id = create(c)
    emu.stop()
    emu.stop()  # idempotent
    assert not emu.running
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    emu.start()
    with httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        assert get(c, run_id)["id"] == run_id


def test_serve_forever_returns_after_stop(clock: ManualClock) -> None:
    emu = Emulator(EmulatorConfig(clock=clock))
    thread = threading.Thread(target=emu.serve_forever)
    thread.start()
    deadline = time.monotonic() + 5
    while not emu.running and time.monotonic() < deadline:
        time.sleep(0.01)
    with httpx.Client(base_url=emu.base_url, headers=AUTH) as c:
        assert c.get(RUNS).status_code == 200
    emu.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_concurrent_creates_with_keep_alive(clock: ManualClock) -> None:
    threads, per_thread = 16, 20
    created: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    with Emulator(EmulatorConfig(clock=clock)) as emu:
        barrier = threading.Barrier(threads)

        def worker() -> None:
            try:
                with httpx.Client(base_url=emu.base_url, headers=AUTH, timeout=10) as c:
                    barrier.wait()
                    ids = [create(c) for _ in range(per_thread)]
                    for run_id in ids:
                        get(c, run_id)
                with lock:
                    created.extend(ids)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert errors == []
        assert len(created) == len(set(created)) == threads * per_thread
        assert len(emu.runs()) == threads * per_thread
        stats = emu.stats()
        assert stats["runs_created"] == threads * per_thread
        assert stats["requests"]["runs.get"] == threads * per_thread


def test_keep_alive_answers_are_not_held_back_by_nagle(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Headers and body go out in two writes: without TCP_NODELAY, Nagle and
    delayed ACKs add ~40 ms to every keep-alive answer (the suite makes
    thousands). Checked on the socket itself, not with a clock: 200 answers on
    one connection, and that connection's server side has NODELAY set."""
    from dfr_emulator import server

    seen: list[int] = []
    setup = server._Handler.setup

    def recording_setup(self: server._Handler) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(server._Handler, "setup", recording_setup)
    fresh = httpx.Client(base_url=str(client.base_url), headers=dict(client.headers))
    with fresh:
        run_id = create(fresh)
        for _ in range(200):
            assert get(fresh, run_id)["id"] == run_id
    assert len(seen) == 1  # one keep-alive connection served them all
    assert seen[0] != 0


def test_python_m_entry_point() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dfr_emulator",
            "--port",
            "0",
            "--print-url",
            "--pending-seconds",
            "0",
            "--api-key",
            "k",
            "--no-retry-after",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url, headers={"Authorization": "Bearer k"}) as c:
            create(c)
            stats = c.get("/_emulator/stats").json()
            assert stats["runs_created"] == 1
            assert c.get("/_emulator/config").json()["retry_after"] is False
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert err == ""
    assert out == ""


@pytest.mark.parametrize(
    ("flags", "hint"),
    [((), "any non-empty key is accepted"), (("--api-key", "sekrit-0123"), "given to --api-key")],
)
def test_dfr_emulator_says_where_it_listens_and_which_key_to_use(
    flags: tuple[str, ...], hint: str
) -> None:
    """`dfr emulator`'s banner: the URL to export and what key works, never the key."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "emulator", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        banner = [proc.stderr.readline() for _ in range(4)]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert banner[0].startswith("Dataframer emulator listening on http://127.0.0.1:")
    url = banner[0].split()[-1]
    assert banner[1].strip() == f"export DATAFRAMER_BASE_URL={url}"
    assert hint in banner[2]
    assert banner[3] == "Press Ctrl-C to stop.\n"
    assert "sekrit" not in "".join(banner)
