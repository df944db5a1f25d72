"""Issue 12 end to end: dfr against an API that answers as the official SDK describes it.

Every test runs twice: against the emulator in its default mode (the SDK's
models: full run on create, lower-case ids, nulls for settings that do not
apply, unnumbered spec versions, no `enable_revisions` in `runtime_params`)
and with `legacy=True` (the old reference page's API), so both stay working.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import emulators
from support.emulators import KEY, posts
from support.runner import Runner, apply_args
from support.workspace import Workspace, spec

from dfr_emulator import SPEC_SUPPORT_TICKETS, Emulator
from reconciler.api import DataframerClient

CURRENT_MODEL = "anthropic/claude-sonnet-5-5-thinking"


@pytest.fixture(params=["sdk", "legacy"])
def emu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """Overrides the shared one: the same tests against both shapes of the API."""
    with emulators.emulator(legacy=request.param == "legacy") as emulator:
        yield emulator


def legacy(emu: Emulator) -> bool:
    return bool(emu.config.legacy)


def runs_on_api(emu: Emulator) -> list[dict[str, Any]]:
    return list(emu.runs())


def test_a_minimal_manifest_applies_with_one_post_and_sends_only_what_it_says(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert posts(emu) == 1
    record = ws.record("alpha")
    # What was sent is the manifest's spec, nothing filled in ...
    assert record["spec"] == spec()
    # ... and what the API used is recorded next to it.
    assert record["used"]["spec_version"] == 3
    assert record["used"]["number_of_samples"] == 10
    assert record["used"]["generation_model"]  # the API's choice, whatever it is today
    assert "enable_revisions" not in record["used"] or legacy(emu)
    # Applying again: nothing to do.
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0, out


def test_todays_fields_are_sent_unchanged(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    fields: dict[str, Any] = {
        "spec_version": 3,
        "generation_model": CURRENT_MODEL,
        "generation_thinking_budget": 12000,
        "revision_types": ["consistency", "coherence_flow"],
        "filtering_types": ["structural"],
        "skip_outline": True,
        "tools": ["calculator"],
    }
    ws.write("alpha", **fields)
    code, out, err = dfr("validate", "manifests", state=None)
    assert code == 0 and "warning" not in out + err, out + err
    code, out, err = dfr(*apply_args("manifests"))
    if legacy(emu):
        # The old page's API does not know these fields: a clear refusal, no run.
        assert code == 1 and "not submitted" in out + err, out + err
        assert runs_on_api(emu) == []
        return
    assert code == 0, out + err
    assert ws.record("alpha")["spec"] == spec(**fields)
    (run,) = runs_on_api(emu)
    used = run["runtime_params"]
    assert run["spec_version"] == 3
    for name, value in fields.items():
        if name == "spec_version":
            continue
        if isinstance(value, list):
            assert sorted(used[name]) == sorted(value), name
        else:
            assert used[name] == value, name


@pytest.mark.parametrize("spec_id", [SPEC_SUPPORT_TICKETS, SPEC_SUPPORT_TICKETS.upper()])
def test_a_lost_answer_leaves_exactly_one_run_after_repeated_applies(
    emu: Emulator, ws: Workspace, dfr: Runner, spec_id: str
) -> None:
    ws.write_spec("alpha", {"spec_id": spec_id, "number_of_samples": 10})
    emu.configure(ambiguous_posts=1)  # the run is created, the answer never comes
    first = dfr(*apply_args("manifests"))
    assert posts(emu) == 1
    for _ in range(3):
        code, out, err = dfr(*apply_args("manifests"))
        assert code == 0, out + err
    assert posts(emu) == 1, "a second run was paid for"
    assert len(runs_on_api(emu)) == 1
    record = ws.record("alpha")
    assert record["run_id"] == runs_on_api(emu)[0]["id"] and record["status"] == "SUCCEEDED"
    assert "Traceback" not in first.text


def test_a_pinned_spec_version_is_checked_and_not_blocked(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha", spec_version=2)
    code, out, err = dfr("plan", "--refresh", "manifests")
    assert code == 0, out + err
    assert "spec_version" in out and "blocked" not in (out + err).lower()
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert ws.record("alpha")["used"]["spec_version"] == 2
    # A version the spec does not have is blocked before anything is paid for.
    ws.write("beta", spec_version=9)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 1 and "spec_version 9 does not exist" in out + err
    assert posts(emu) == 1


def test_pinning_the_version_a_run_used_plans_no_change(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    assert dfr(*apply_args("manifests")).code == 0
    ws.write("alpha", spec_version=ws.record("alpha")["used"]["spec_version"])
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0 and "No changes" in out, out
    ws.write("alpha", spec_version=1)
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2 and "spec_version" in out and "3 -> 1" in out


def test_import_of_a_matching_run_succeeds(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    with DataframerClient(emu.base_url, KEY) as api:
        run_id = api.create_run({**spec(), "spec_id": SPEC_SUPPORT_TICKETS.upper()}).id
    ws.write("alpha")
    code, out, err = dfr("import", "alpha", run_id, "manifests")
    assert code == 0, out + err
    code, out, _ = dfr(*apply_args("manifests"))
    assert code == 0 and "No changes" in out
    assert posts(emu) == 1


def test_state_show_and_status_long_show_sent_and_used(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha", number_of_samples=12)
    assert dfr(*apply_args("manifests")).code == 0
    code, out, _ = dfr("state", "show", "alpha")
    assert code == 0 and "fields (sent by dfr, used by the API):" in out
    line = next(x for x in out.splitlines() if x.strip().startswith("number_of_samples"))
    assert line.split()[1:] == ["12", "12"]
    model = next(x for x in out.splitlines() if x.strip().startswith("generation_model"))
    assert model.split()[1] == "-"  # left to the API, which reports its choice
    code, out, _ = dfr("status", "--long")
    assert code == 0 and "alpha (" in out and "FIELD" in out and "SENT" in out


@pytest.mark.skipif(importlib.util.find_spec("dataframer") is None, reason="needs pydataframer")
def test_every_body_sent_type_checks_against_the_sdks_params(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    from dataframer.types.dataframer.run_create_params import RunCreateParams
    from pydantic import TypeAdapter

    if legacy(emu):
        pytest.skip("the SDK describes today's API")
    ws.write("alpha")
    ws.write("beta", generation_model=CURRENT_MODEL, revision_types=["consistency"], tools=[])
    ws.write("gamma", spec_version=1, skip_outline=False, seed_shuffling_level="field")
    assert dfr(*apply_args("manifests")).code == 0
    adapter = TypeAdapter(RunCreateParams)
    for name in ("alpha", "beta", "gamma"):
        sent = ws.record(name)["spec"]  # the body handed to the POST, byte for byte
        assert set(sent) <= set(RunCreateParams.__annotations__), name
        adapter.validate_python(sent, strict=True)


@pytest.mark.skipif(importlib.util.find_spec("dataframer") is None, reason="needs pydataframer")
def test_the_examples_bodies_type_check_against_the_sdks_params() -> None:
    from dataframer.types.dataframer.run_create_params import RunCreateParams
    from pydantic import TypeAdapter

    from reconciler.plan import make_plan
    from reconciler.state.model import State
    from reconciler.validate import validate_paths

    root = Path(__file__).resolve().parents[2] / "examples" / "manifests"
    result = validate_paths([str(root)])
    assert result.ok and result.warnings == 0 and result.manifests
    adapter = TypeAdapter(RunCreateParams)
    # The bodies as sent: a spec_ref resolved by the plan (the id of a spec this plan
    # creates is known after apply: any UUID stands in for it).
    plan = make_plan(result.manifests, State.empty(), specs=result.specs)
    for change in plan.changes:
        body = {"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", **(change.body or {})}
        assert set(body) <= set(RunCreateParams.__annotations__), change.name
        adapter.validate_python(body, strict=True)


def test_paged_lists_are_read_to_the_end_for_recovery_and_status(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(page_size=1)  # every list answer is pages of one run
    for samples, name in enumerate(("alpha", "beta", "gamma"), start=10):
        ws.write(name, number_of_samples=samples)  # identical bodies would be ambiguous
    emu.configure(ambiguous_posts=3)  # all three created, no answer for any
    dfr(*apply_args("manifests"))
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert posts(emu) == 3 and len(runs_on_api(emu)) == 3
    assert {r["status"] for r in ws.state_doc()["runs"].values()} == {"SUCCEEDED"}
