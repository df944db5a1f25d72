"""Specs as code tried the careless way (issue 17): a Spec manifest renamed or
doubled, references to specs that are missing or FAILED, `dfr import spec` with
a wrong id, and `dfr state rm spec/NAME` followed by an apply.

The promises: never a second spec paid for silently, never a spec id lost;
every mistake is one line (`FILE:LINE:COL: error:` for a manifest) and exit 1,
saying what to do.
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from support.runner import Result, Runner, apply_args
from support.workspace import Workspace
from test_spec_apply import write_spec

from dfr_emulator import Emulator

NAME = "tickets"


def _spec(ws: Workspace, name: str = NAME, copy_to: str | None = None) -> None:
    """The Spec manifest `name` (test_spec_apply's); `copy_to`: a second file holding it."""
    if copy_to is None:
        write_spec(ws, name=name)
    else:
        shutil.copyfile(ws.manifests / f"spec-{name}.yaml", ws.manifests / copy_to)


def _run(ws: Workspace, name: str, ref: str = NAME, version: Any = "latest") -> None:
    ws.write_spec(name, {"spec_ref": {"name": ref, "version": version}, "number_of_samples": 10})


def _named(emu: Emulator, name: str = NAME) -> list[dict[str, Any]]:
    return [s for s in emu.specs() if s["name"] == name]


def _apply(dfr: Runner) -> Result:
    result = dfr(*apply_args("manifests"))
    assert "Traceback" not in result.err
    return result


def test_state_rm_of_a_spec_then_apply_adopts_or_says_what_to_do(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    _spec(ws)
    _run(ws, "run-1")
    assert _apply(dfr).code == 0
    (made,) = _named(emu)
    removed = dfr("state", "rm", f"spec/{NAME}")
    adopt = f"dfr import spec {NAME} {made['id']}"
    assert removed.code == 0 and adopt in removed.err
    result = _apply(dfr)
    assert result.code == 1
    assert adopt in result.text and "the name is taken" in result.text
    assert _named(emu) == [made] and emu.stats()["specs_created"] == 1
    assert dfr("import", "spec", NAME, made["id"]).code == 0
    assert _apply(dfr).code == 0
    assert len(_named(emu)) == 1
    assert ws.read_state().specs[NAME].spec_id == made["id"]


def test_two_spec_manifests_with_one_name_are_a_located_error(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    _spec(ws)
    _spec(ws, copy_to="copy.yaml")
    for command in (("validate",), ("plan",), tuple(apply_args())):
        result = dfr(*command, "manifests")
        assert result.code == 1, result.text
        assert "Traceback" not in result.err
        assert result.lines(": error: "), result.text
    assert emu.stats()["specs_created"] == 0


@pytest.mark.parametrize("ref", ["missing", "", "../tickets", "TICKETS"])
def test_a_spec_ref_to_no_spec_never_reaches_the_api(
    ws: Workspace, dfr: Runner, emu: Emulator, ref: str
) -> None:
    """validate only warns for a name no manifest has (it may be adopted in state,
    which validate does not read); plan and apply refuse, naming the manifest."""
    _spec(ws)
    _run(ws, "run-1", ref=ref)
    for command in (("plan",), tuple(apply_args())):
        result = dfr(*command, "manifests")
        assert result.code == 1, result.text
        assert "Traceback" not in result.err
        assert any(line.startswith("manifests/run-1.yaml:") for line in result.lines(": error: "))
    assert emu.runs() == [] and emu.stats()["specs_created"] == 0


@pytest.mark.parametrize("version", [0, -1, 99, "first", None, 1.5, True])
def test_a_spec_ref_to_an_odd_version_never_reaches_the_api(
    ws: Workspace, dfr: Runner, emu: Emulator, version: object
) -> None:
    _spec(ws)
    _run(ws, "run-1", version=version)
    result = _apply(dfr)
    assert result.code == 1, result.text
    assert emu.runs() == []


@pytest.mark.parametrize(
    "spec_id", ["00000000-1111-4222-8333-444444444444", "not-a-uuid", "../runs", "", "a/b"]
)
def test_import_spec_with_a_wrong_id_is_one_line(
    ws: Workspace, dfr: Runner, emu: Emulator, spec_id: str
) -> None:
    _spec(ws)
    result = dfr("import", "spec", NAME, spec_id)
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert NAME not in ws.read_state().specs if ws.state.exists() else True


def test_a_run_on_an_adopted_failed_spec_is_never_submitted(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    from support.emulators import LEGAL

    _spec(ws, "legal-contracts")
    _run(ws, "run-1", ref="legal-contracts")
    imported = dfr("import", "spec", "legal-contracts", LEGAL)
    assert "Traceback" not in imported.err
    result = _apply(dfr)
    assert result.code == 1, result.text
    assert "run-1: not submitted" in result.text, result.text
    assert emu.runs() == []
    assert emu.stats()["specs_created"] == 0


def _content_spec(ws: Workspace, requirements: str) -> None:
    _spec(ws)
    path = ws.manifests / f"spec-{NAME}.yaml"
    text = path.read_text("utf-8")
    text += f"  content:\n    description: tickets\n    requirements: {requirements}\n"
    path.write_text(text, "utf-8")


def _versions(emu: Emulator) -> list[dict[str, Any]]:
    (spec,) = _named(emu)
    versions: list[dict[str, Any]] = spec["versions"]
    return versions


@pytest.mark.parametrize("when", ["after the PUT", "before the PUT"])
def test_a_web_app_edit_racing_a_lost_update_makes_one_version_of_each(
    ws: Workspace, dfr: Runner, emu: Emulator, when: str
) -> None:
    """dfr's PUT takes effect, its answer is lost, and someone edits the spec in the
    web app just before the PUT or before dfr looks: the lookup finds dfr's version
    among the newer ones (not only the latest), so nothing is sent again, and the
    web app's version is recorded as not dfr's."""
    _content_spec(ws, "one per file")
    _run(ws, "run-1")
    assert _apply(dfr).code == 0
    assert len(_versions(emu)) == 2
    spec_id = _named(emu)[0]["id"]
    edited: list[bool] = []

    def web_edit_once(answer: Any) -> Any:
        if not edited and bool(emu.stats()["specs_updated"]) == (when == "after the PUT"):
            edited.append(True)
            emu.edit_spec(spec_id, "spec:\n  description: edited in the web app\n")
        return answer

    emu.configure(spec_ambiguous_updates=1)
    emu.reset_stats()
    emu.rewrite("specs.get", web_edit_once)
    _content_spec(ws, "two per file")
    result = _apply(dfr)
    assert "Traceback" not in result.err
    assert edited, "the race never happened"
    versions = _versions(emu)
    assert len(versions) == 4, [v.get("content_yaml") for v in versions]
    assert emu.stats()["specs_updated"] == 1  # the lost PUT only
    assert emu.stats()["requests_by_method"].get("PUT") == 1
    assert result.code == 0, result.text
    by_dfr = [(v.number, v.by_dfr) for v in ws.read_state().specs[NAME].versions]
    ours, web = (3, 4) if when == "after the PUT" else (4, 3)
    assert by_dfr == sorted([(1, True), (2, True), (ours, True), (web, False)]), by_dfr


def test_a_renamed_spec_manifest_is_a_new_spec_the_plan_says_so(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """A spec's name is its identity (unique in Dataframer, never renamed by the API):
    renaming the manifest plans a new spec, shown before anything is paid for; the
    old one is kept and listed as no manifest's."""
    _spec(ws)
    _run(ws, "run-1")
    assert _apply(dfr).code == 0
    (ws.manifests / f"spec-{NAME}.yaml").unlink()
    _spec(ws, "tickets-v2")
    _run(ws, "run-1", ref="tickets-v2")
    plan = dfr("plan", "manifests")
    assert plan.code == 0, plan.text
    assert "spec tickets-v2 will be created" in plan.out
    assert "no Spec manifest names them" in plan.out and "spec/tickets" in plan.out
    assert emu.stats()["specs_created"] == 1  # the plan sent nothing
    assert _apply(dfr).code == 0
    assert [s["name"] for s in emu.specs() if s["name"].startswith("tickets")] == [
        "tickets",
        "tickets-v2",
    ]


@pytest.mark.parametrize("kind", ["specs.create", "specs.update"])
@pytest.mark.parametrize(
    "change",
    [lambda a: {k: v for k, v in a.items() if k != "id"}, lambda a: [], lambda a: "ok"],
    ids=["no id", "a list", "a string"],
)
def test_a_spec_write_answered_without_an_id_is_looked_up_never_sent_twice(
    ws: Workspace, dfr: Runner, emu: Emulator, kind: str, change: Any
) -> None:
    _spec(ws)
    path = ws.manifests / f"spec-{NAME}.yaml"
    path.write_text(path.read_text("utf-8") + "  content:\n    description: tickets\n", "utf-8")
    _run(ws, "run-1")
    emu.rewrite(kind, change)
    first = _apply(dfr)
    emu.rewrite(kind, None)
    for _ in range(2):
        _apply(dfr)
    assert "Traceback" not in first.err
    (made,) = _named(emu)
    assert len(made["versions"]) == 2, made["versions"]
    assert ws.read_state().specs[NAME].spec_id == made["id"]
    assert len(emu.runs()) == 1
