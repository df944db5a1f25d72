"""Legacy mode (`EmulatorConfig(legacy=True)`, `dfr emulator --legacy`): the old reference page.

Its answers are NOT what the SDK's models describe where the old page differs,
so the differences are tested explicitly: `{"id"}` as the create answer,
IN_PROGRESS, `started_at`, `error`/`failure_reason` on a FAILED run,
`runtime_params` with `enable_revisions` (the old nine keys), specs with
`latest_version` and numbered versions with a status, and the old 11 fields
and 12 models in create bodies. Everything else still parses with the SDK.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from typing import Any

import httpx
import pytest
from conformance_helpers import AUTH, BODY, RUNS, SPECS, conforms, model_keys
from dataframer.types.dataframer.run_retrieve_response import RunRetrieveResponse
from dataframer.types.dataframer.spec_list_response import SpecListResponse
from dataframer.types.dataframer.spec_retrieve_response import SpecRetrieveResponse
from support.manual_api import get_ok

from dfr_emulator import (
    SPEC_LEGAL_CONTRACTS,
    SPEC_MEDICAL_NOTES,
    SPEC_SUPPORT_TICKETS,
    Emulator,
    EmulatorConfig,
)
from dfr_emulator.validation import LEGACY_FIELDS, model_names

OLD_DEFAULT = "gemini/gemini-3-pro-preview-thinking"


def create(http: httpx.Client, **fields: Any) -> str:
    response = http.post(RUNS, json={**BODY, **fields})
    assert response.status_code == 201, response.text
    assert set(response.json()) == {"id"}  # the old page's answer
    run_id: str = response.json()["id"]
    return run_id


def run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    return get_ok(http, f"{RUNS}{run_id}/")


def test_runs_the_old_pages_way(legacy_http: httpx.Client, legacy_emu: Emulator) -> None:
    run_id = create(legacy_http)
    pending = run(legacy_http, run_id)
    assert pending["status"] == "PENDING"
    assert pending["started_at"] is None
    assert pending["runtime_params"] == {
        "number_of_samples": 100,
        "generation_model": OLD_DEFAULT,
        "outline_model": OLD_DEFAULT,
        "revision_model": OLD_DEFAULT,
        "enable_revisions": False,
        "max_revision_cycles": 1,
        "seed_shuffling_level": "none",
        "max_examples_in_prompt": None,
        "unified_multifield": True,
    }
    base_keys = model_keys(RunRetrieveResponse) - {"generated_files"}
    assert set(pending) == base_keys | {"started_at"}

    legacy_emu.advance(3)
    running = run(legacy_http, run_id)
    assert running["status"] == "IN_PROGRESS"
    assert running["started_at"] is not None
    [item] = legacy_http.get(RUNS).json()
    assert item["status"] == "IN_PROGRESS"
    assert "runtime_params" not in item and "generated_files" not in item

    legacy_emu.force_status(run_id, "FAILED", reason="model outage")
    failed = run(legacy_http, run_id)
    assert failed["error"] == failed["failure_reason"] == "model outage"
    assert set(failed) == base_keys | {"started_at", "error", "failure_reason"}

    legacy_emu.configure(fail_next=1)
    other = create(legacy_http)
    legacy_emu.advance(60)
    assert run(legacy_http, other)["failure_reason"]  # a made-up reason
    done = run(legacy_http, create(legacy_http))
    legacy_emu.advance(60)
    done = run(legacy_http, done["id"])
    assert done["status"] == "SUCCEEDED" and done["generated_files"]


def test_where_legacy_runs_differ_from_the_sdk(
    legacy_http: httpx.Client, legacy_emu: Emulator
) -> None:
    """Exactly the old page's differences, no others: the rest parses with the SDK."""
    run_id = create(legacy_http, enable_revisions=True)
    legacy_emu.advance(3)
    problems = conforms(RunRetrieveResponse, run(legacy_http, run_id))
    assert sorted(problems) == [
        "$.runtime_params.enable_revisions: not a field of RuntimeParams",
        "$.started_at: not a field of RunRetrieveResponse",
        "status: Input should be 'PENDING', 'PROCESSING', 'SUCCEEDED', 'FAILED' or 'CANCELED'",
    ]
    legacy_emu.force_status(run_id, "FAILED")
    assert sorted(conforms(RunRetrieveResponse, run(legacy_http, run_id))) == [
        "$.error: not a field of RunRetrieveResponse",
        "$.failure_reason: not a field of RunRetrieveResponse",
        "$.runtime_params.enable_revisions: not a field of RuntimeParams",
        "$.started_at: not a field of RunRetrieveResponse",
    ]


def test_specs_the_old_pages_way(legacy_http: httpx.Client) -> None:
    spec = legacy_http.get(f"{SPECS}{SPEC_SUPPORT_TICKETS}/").json()
    assert spec["latest_version"] == 3
    assert "content_yaml" not in spec and "versions" not in spec
    full = legacy_http.get(
        f"{SPECS}{SPEC_SUPPORT_TICKETS}/", params={"include_versions": "true"}
    ).json()
    assert [(v["version"], v["status"]) for v in full["versions"]] == [
        (1, "SUCCEEDED"),
        (2, "SUCCEEDED"),
        (3, "SUCCEEDED"),
    ]
    for version in full["versions"]:
        assert set(version) == {"version", "status", "created_at"}
    processing = legacy_http.get(
        f"{SPECS}{SPEC_MEDICAL_NOTES}/", params={"include_versions": "true"}
    ).json()
    assert [(v["version"], v["status"]) for v in processing["versions"]] == [(1, "PROCESSING")]
    assert legacy_http.get(f"{SPECS}{SPEC_LEGAL_CONTRACTS}/").json()["error"]
    listed = legacy_http.get(SPECS).json()
    assert all("latest_version" in s for s in listed)
    # The SDK names neither `latest_version` nor numbered versions.
    assert conforms(SpecListResponse, listed)
    problems = conforms(SpecRetrieveResponse, full)
    assert "$.latest_version: not a field of SpecRetrieveResponse" in problems
    assert "$.versions[0].version: not a field of Version" in problems


def test_the_old_pages_fields_and_models(legacy_http: httpx.Client, legacy_emu: Emulator) -> None:
    assert len(LEGACY_FIELDS) == 11
    old = model_names(legacy=True)
    every_old_field = {
        **BODY,
        "spec_version": 2,
        "generation_model": "anthropic/claude-opus-4-5-thinking",
        "outline_model": "deepseek-ai/DeepSeek-V3.1",
        "revision_model": "moonshotai/Kimi-K2-Instruct",
        "enable_revisions": True,
        "max_revision_cycles": 5,
        "seed_shuffling_level": "prompt",
        "max_examples_in_prompt": 3,
        "unified_multifield": False,
    }
    assert set(every_old_field) == set(LEGACY_FIELDS)
    params = run(legacy_http, create(legacy_http, **every_old_field))["runtime_params"]
    assert params == {
        k: v for k, v in every_old_field.items() if k not in ("spec_id", "spec_version")
    }

    for field, value in (
        ("skip_outline", True),
        ("revision_types", ["consistency"]),
        ("tools", []),
        ("generation_thinking_budget", 100),
    ):
        refused = legacy_http.post(RUNS, json={**BODY, field: value})
        assert refused.status_code == 422
        [item] = refused.json()["detail"]
        assert (item["type"], item["loc"]) == ("extra_forbidden", ["body", field])

    current_only = legacy_http.post(RUNS, json={**BODY, "generation_model": "openai/gpt-6-luna"})
    [item] = current_only.json()["detail"]
    assert item["type"] == "literal_error"
    assert item["msg"] == "Input should be " + ", ".join(repr(m) for m in old[:-1]) + (
        f" or {old[-1]!r}"
    )
    for bad, kind in ((0, "greater_than_equal"), (20001, "less_than_equal"), (1.5, "int_type")):
        [item] = legacy_http.post(RUNS, json={**BODY, "number_of_samples": bad}).json()["detail"]
        assert item["type"] == kind
    # The two models both lists name are accepted in both modes.
    for shared in sorted(set(old) & set(model_names())):
        create(legacy_http, generation_model=shared)


def test_fault_knobs_in_legacy_mode(legacy_http: httpx.Client, legacy_emu: Emulator) -> None:
    run_id = create(legacy_http)
    full = legacy_emu.run(run_id)
    assert full is not None
    legacy_emu.configure(missing_fields_rate=1.0, unknown_status_rate=1.0)
    answer = legacy_http.post(RUNS, json=BODY)
    assert answer.status_code == 201
    assert answer.json() == {}  # the id was the one field to lose
    partial = run(legacy_http, run_id)
    assert set(partial) < set(full)  # fields only ever go missing
    assert partial.get("status", "QUEUED") == "QUEUED"
    legacy_emu.configure(missing_fields_rate=0.0, unknown_status_rate=0.0, page_size=1)
    page = legacy_http.get(RUNS).json()
    assert page["count"] == 2 and len(page["results"]) == 1


def test_legacy_is_fixed_at_construction(legacy_emu: Emulator) -> None:
    assert legacy_emu.config.legacy is True
    assert legacy_emu.config.running_status == "IN_PROGRESS"
    with pytest.raises(ValueError, match="legacy"):
        legacy_emu.configure(legacy=False)
    # The spelling knob still wins when set.
    assert legacy_emu.configure(status_spelling="PROCESSING").running_status == "PROCESSING"
    assert EmulatorConfig().running_status == "PROCESSING"


def _serve(argv: list[str], url_pattern: str, stream: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    for _ in range(10):
        found = re.search(url_pattern, pipe.readline())
        if found:
            return proc, found.group(0)
    proc.kill()
    raise AssertionError("the emulator did not say where it listens")


@pytest.mark.parametrize(
    ("argv", "stream"),
    [
        (["reconciler", "emulator", "--legacy", "--port", "0", "--page-size", "2"], "stderr"),
        (
            ["dfr_emulator", "--legacy", "--port", "0", "--page-size", "2", "--print-url"],
            "stdout",
        ),
    ],
    ids=["dfr emulator", "python -m dfr_emulator"],
)
def test_legacy_and_page_size_flags(argv: list[str], stream: str) -> None:
    proc, url = _serve(argv, r"http://127\.0\.0\.1:\d+", stream)
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=5.0) as http:
            for _ in range(3):
                create(http)  # `{"id"}` only: legacy
            first = http.get(RUNS).json()
            assert first["count"] == 3 and len(first["results"]) == 2
            assert first["next"] == f"{url}{RUNS}?page=2"
            assert len(http.get(first["next"]).json()["results"]) == 1
            assert "latest_version" in http.get(SPECS).json()["results"][0]
            assert http.get("/_emulator/config").json()["legacy"] is True
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode in (0, 130)
