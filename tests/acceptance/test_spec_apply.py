"""Specs as code, end to end through `dfr` against the emulator (issue 17, Done means).

One repository with a seedless Spec manifest and three runs that name it by
`spec_ref` applies from nothing in one `dfr apply` (the spec first, the runs
after it SUCCEEDED); editing the content makes exactly one new version; lost
answers on create and update leave exactly one spec and one new version; a
FAILED spec blocks only its runs; `dfr import spec` adopts a spec made by hand
(a run named "spec" stays importable); `--prune` never deletes a spec;
`dfr refresh` records an edit made in the web app.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from support.emulators import KEY
from support.runner import Runner, apply_args
from support.workspace import Workspace, spec

from dfr_emulator import Emulator
from reconciler.api import DataframerClient

SPEC_NAME = "tickets"


@pytest.fixture
def api(emu: Emulator) -> Iterator[DataframerClient]:
    """A client of our own: the web app, editing behind dfr's back."""
    with DataframerClient(emu.base_url, KEY) as client:
        yield client


def write_spec(ws: Workspace, content: str | None = None, name: str = SPEC_NAME) -> None:
    text = textwrap.dedent(
        f"""\
        apiVersion: dataframer.ai/v1
        kind: Spec
        metadata:
          name: {name}
        spec:
          objectives: Support tickets for a bank, each with a priority.
        """
    )
    if content is not None:
        text += "  content:\n" + textwrap.indent(textwrap.dedent(content), "    ")
    (ws.manifests / f"spec-{name}.yaml").write_text(text, "utf-8")


def write_run(
    ws: Workspace, name: str, samples: int, ref: str = SPEC_NAME, version: Any = "latest"
) -> None:
    ws.write_spec(
        name, {"spec_ref": {"name": ref, "version": version}, "number_of_samples": samples}
    )


def named(emu: Emulator, name: str = SPEC_NAME) -> list[dict[str, Any]]:
    return [s for s in emu.specs() if s["name"] == name]


def repository(ws: Workspace, content: str | None = None) -> None:
    write_spec(ws, content)
    for i in (1, 2, 3):
        write_run(ws, f"run-{i}", 10 + i)


def test_one_apply_makes_the_spec_then_its_three_runs(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    repository(ws)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    (made,) = named(emu)
    state = ws.read_state()
    assert state.specs[SPEC_NAME].spec_id == made["id"]
    assert state.specs[SPEC_NAME].status == "SUCCEEDED"
    ready_at = made["versions"][0]["created_at"]
    for i in (1, 2, 3):
        record = state.runs[f"run-{i}"]
        assert record.status == "SUCCEEDED" and record.spec["spec_id"] == made["id"]
        run = emu.run(record.run_id or "")
        assert run is not None and run["created_at"] >= ready_at  # after SUCCEEDED
    # Nothing more to do.
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0 and emu.stats()["specs_created"] == 1 and emu.stats()["runs_created"] == 3


def test_editing_the_content_makes_exactly_one_new_version(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    repository(ws, "description: tickets\nrequirements: one per file\n")
    assert dfr(*apply_args("manifests")).code == 0
    assert len(named(emu)[0]["versions"]) == 2  # the API's, then the manifest's
    repository(ws, "description: tickets\nrequirements: two per file\n")
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert len(named(emu)[0]["versions"]) == 3 and emu.stats()["runs_created"] == 3
    versions = ws.read_state().specs[SPEC_NAME].versions
    assert [(v.number, v.by_dfr) for v in versions] == [(1, True), (2, True), (3, True)]
    assert dfr(*apply_args("manifests")).code == 0 and len(named(emu)[0]["versions"]) == 3


@pytest.mark.parametrize("knob", ["spec_ambiguous_creates", "spec_ambiguous_updates"])
def test_a_lost_answer_leaves_one_spec_and_one_new_version(
    emu: Emulator, ws: Workspace, dfr: Runner, knob: str
) -> None:
    emu.configure(**{knob: 1})
    repository(ws, "description: tickets\n")
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert len(named(emu)) == 1 and len(named(emu)[0]["versions"]) == 2
    assert emu.stats()["injected"] and emu.stats()["runs_created"] == 3


def test_a_failed_spec_blocks_only_its_runs(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    emu.configure(spec_fail_pattern="^doomed$")
    write_spec(ws, name="doomed")
    write_run(ws, "uses-doomed", 5, ref="doomed")
    ws.write("plain", number_of_samples=7)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 1
    error = ws.read_state().specs["doomed"].error
    assert error and error in out + err and "uses-doomed" in out + err
    state = ws.read_state()
    assert state.runs["plain"].status == "SUCCEEDED" and state.runs["uses-doomed"].run_id is None


def test_import_spec_adopts_a_spec_made_by_hand(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    made = api.create_spec({"name": "by-hand", "generation_objectives": "reviews"})
    code, out, err = dfr("import", "spec", "by-hand", made.id)
    assert code == 0, out + err
    assert f"Imported spec {made.id}" in out
    record = ws.read_state().specs["by-hand"]
    assert record.spec_id == made.id and record.body == {}
    assert all(not v.by_dfr for v in record.versions)
    again = dfr("import", "spec", "by-hand", made.id)
    assert again.code == 0 and "nothing to do" in again.out
    taken = dfr("import", "spec", "other-name", made.id)
    assert taken.code == 1 and f"spec {made.id} is already recorded as 'by-hand'" in taken.err
    second = api.create_spec({"name": "second", "generation_objectives": "mail"})
    wrong = dfr("import", "spec", "other-name", second.id)
    assert wrong.code == 1 and "is named 'second' in Dataframer" in wrong.err
    extra = dfr("import", "spec", "second", second.id, "more")
    assert extra.code == 1 and "takes nothing more" in extra.err
    missing = dfr("import", "spec", "ghost", "00000000-1111-4222-8333-444444444444")
    assert missing.code == 1 and "was not found" in missing.err
    assert set(ws.read_state().specs) == {"by-hand"}
    assert "Traceback" not in wrong.err + extra.err + missing.err


def test_a_run_named_spec_is_still_imported(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    ws.write("spec", number_of_samples=12)
    run_id = api.create_run(spec(number_of_samples=12)).id
    code, out, err = dfr("import", "spec", run_id, "manifests")
    assert code == 0, out + err
    assert ws.read_state().runs["spec"].run_id == run_id and ws.read_state().specs == {}


def test_prune_never_deletes_a_spec(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    repository(ws)
    assert dfr(*apply_args("manifests")).code == 0
    for path in ws.manifests.iterdir():
        path.unlink()
    ws.write("other", number_of_samples=9)
    code, out, err = dfr(*apply_args("--prune", "manifests"))
    assert code == 0, out + err
    assert SPEC_NAME in ws.read_state().specs and len(named(emu)) == 1
    assert f"spec {SPEC_NAME}: in state but no Spec manifest" in out + err
    assert emu.stats()["specs_deleted"] == 0


def test_refresh_records_a_web_app_edit(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    repository(ws)
    assert dfr(*apply_args("manifests")).code == 0
    spec_id = ws.read_state().specs[SPEC_NAME].spec_id or ""
    api.update_spec(spec_id, "spec:\n  description: edited in the web app\n")
    code, out, err = dfr("refresh")
    assert code == 0, out + err
    assert f"spec {SPEC_NAME}: new version 2" in out + err
    versions = ws.read_state().specs[SPEC_NAME].versions
    assert [(v.number, v.by_dfr) for v in versions] == [(1, True), (2, False)]


def test_runs_wait_for_a_spec_still_processing_from_an_earlier_apply(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(spec_processing_seconds=1.5)
    repository(ws)
    code, out, err = dfr(*apply_args("--timeout", "0.2s", "manifests"))
    assert code == 1 and "still PROCESSING" in out + err
    state = ws.read_state()
    assert state.specs[SPEC_NAME].status == "PROCESSING" and not any(
        r.run_id for r in state.runs.values()
    )
    # The spec's id is known now: the runs are not refused for a PROCESSING spec at
    # plan time; apply waits for it, then creates them.
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert ws.read_state().specs[SPEC_NAME].status == "SUCCEEDED"
    assert emu.stats()["runs_created"] == 3 and emu.stats()["specs_created"] == 1


def test_plan_refresh_sees_a_web_app_edit_and_plans_the_update_back(
    emu: Emulator, ws: Workspace, dfr: Runner, api: DataframerClient
) -> None:
    repository(ws, "description: as the manifest says\n")
    assert dfr(*apply_args("manifests")).code == 0
    spec_id = ws.read_state().specs[SPEC_NAME].spec_id or ""
    api.update_spec(spec_id, "spec:\n  description: edited in the web app\n")
    plain = dfr("plan", "--detailed-exitcode", "manifests")
    assert plain.code == 0, plain.text  # offline: state does not know the edit
    seen = dfr("plan", "--refresh", "--detailed-exitcode", "manifests")
    assert seen.code == 2, seen.text
    assert "made outside dfr" in seen.out and "version 4" in seen.out
    assert ws.read_state().specs[SPEC_NAME].latest_number == 2  # plan never writes state
    # apply acts on what state records: `dfr refresh` records the edit, then apply
    # updates back to the manifest's content.
    assert dfr("refresh").code == 0
    assert ws.read_state().specs[SPEC_NAME].latest_number == 3
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert len(named(emu)[0]["versions"]) == 4 and emu.stats()["runs_created"] == 3


def test_a_saved_plan_applies_the_spec_then_its_runs(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    repository(ws, "description: tickets\n")
    planfile = ws.root / "spec.plan"
    assert dfr("plan", "--out", str(planfile), "manifests").code == 0
    code, out, err = dfr("apply", "--auto-approve", str(planfile))
    assert code == 0, out + err
    (made,) = named(emu)
    assert len(made["versions"]) == 2 and emu.stats()["runs_created"] == 3
    assert all(r.spec["spec_id"] == made["id"] for r in ws.read_state().runs.values())
