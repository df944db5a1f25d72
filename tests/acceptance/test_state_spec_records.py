"""`dfr state list|show|rm` and spec records (`spec/NAME`), end to end against the emulator.

A spec whose manifest is gone stays recorded (apply never deletes one, `--prune`
included); `dfr state rm spec/NAME` is how a user forgets it, as `state rm NAME`
forgets a run's record. Neither touches what the API has.
"""

from __future__ import annotations

import json

from support.runner import Runner, apply_args
from support.workspace import Workspace
from test_spec_apply import SPEC_NAME, named, repository

from dfr_emulator import Emulator

SPEC = f"spec/{SPEC_NAME}"


def applied(ws: Workspace, dfr: Runner) -> str:
    repository(ws)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    return ws.read_state().specs[SPEC_NAME].spec_id or ""


def test_state_list_shows_specs_after_runs(ws: Workspace, dfr: Runner) -> None:
    spec_id = applied(ws, dfr)
    code, out, _ = dfr("state", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["run-1", "run-2", "run-3", SPEC]
    assert lines[-1] == f"{SPEC}\t{spec_id}\tSUCCEEDED"
    listed = json.loads(dfr("state", "list", "--json").out)
    assert [(e["kind"], e["name"]) for e in listed] == [
        ("run", "run-1"),
        ("run", "run-2"),
        ("run", "run-3"),
        ("spec", SPEC_NAME),
    ]
    assert listed[-1] == {
        "name": SPEC_NAME,
        "run_id": None,
        "status": "SUCCEEDED",
        "kind": "spec",
        "spec_id": spec_id,
    }


def test_state_show_a_spec(ws: Workspace, dfr: Runner) -> None:
    spec_id = applied(ws, dfr)
    code, out, _ = dfr("state", "show", SPEC, "--json")
    assert code == 0
    assert json.loads(out) == ws.state_doc()["specs"][SPEC_NAME]
    code, out, _ = dfr("state", "show", SPEC)
    assert code == 0
    assert any(line.split() == ["spec_id", spec_id] for line in out.splitlines())
    assert (
        dfr("state", "show", "run/run-1", "--json").out
        == dfr("state", "show", "run-1", "--json").out
    )


def test_an_orphan_spec_is_forgotten_by_state_rm_and_the_api_keeps_it(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    spec_id = applied(ws, dfr)
    for path in ws.manifests.iterdir():
        path.unlink()
    ws.write("other", number_of_samples=9)
    shown = dfr("plan", "manifests")
    assert f"Kept, though no Spec manifest names them (dfr never deletes a spec): {SPEC}" in (
        shown.out
    )
    assert json.loads(dfr("plan", "--json", "manifests").out)["orphan_specs"] == [SPEC_NAME]
    # A plan of other files than the spec's speaks only for what it read.
    other = dfr("plan", "--json", str(ws.manifests / "other.yaml"))
    assert json.loads(other.out)["orphan_specs"] == [], other.err
    code, out, err = dfr(*apply_args("--prune", "manifests"))
    assert code == 0, out + err
    assert f"spec {SPEC_NAME}: in state but no Spec manifest" in out + err
    assert "dfr state rm spec/NAME forgets it" in out + err
    code, out, err = dfr("state", "rm", SPEC)
    assert code == 0, err
    assert out == f"Removed {SPEC} from state; spec {spec_id} itself was not touched.\n"
    assert SPEC_NAME not in ws.read_state().specs
    assert len(named(emu)) == 1 and emu.stats()["specs_deleted"] == 0
    code, out, err = dfr(*apply_args("--prune", "manifests"))
    assert code == 0 and "no Spec manifest" not in out + err
    assert json.loads(dfr("plan", "--json", "manifests").out)["orphan_specs"] == []


def test_state_rm_checks_every_name_before_removing_any(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr)
    before = ws.state.read_bytes()
    for names in ((SPEC, "spec/nope"), ("run-1", "spec/run-1"), ("spec/nope", "run-2")):
        result = dfr("state", "rm", *names)
        assert result.code == 1, result.text
        assert "is not in state" in result.err
        assert ws.state.read_bytes() == before
    code, out, _ = dfr("state", "rm", "run/run-1", "run-1", SPEC)
    assert code == 0
    assert out.count("Removed") == 2
    state = ws.read_state()
    assert "run-1" not in state.runs and SPEC_NAME not in state.specs


def test_state_mv_refuses_a_spec(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr)
    before = ws.state.read_bytes()
    for old, new in ((SPEC, "spec/other"), ("run-1", "spec/other"), (SPEC, "other")):
        result = dfr("state", "mv", old, new)
        assert result.code == 1, result.text
        assert "dfr state rm spec/NAME" in result.err
        assert ws.state.read_bytes() == before
    code, out, _ = dfr("state", "mv", "run/run-1", "run/first")
    assert code == 0, out
    assert "first" in ws.read_state().runs
