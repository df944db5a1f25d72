"""Odd project layouts for a pull (issue 16): a user's own file where a run's file
goes, an output folder that is a file or leads through a link, dfr run from a
subfolder, a project without git.

The promises: a pull writes nothing outside its output folder, deletes no file
it did not write, and every refusal is one line and exit 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator


def _applied(ws: Workspace, dfr: Runner, path: str = "data/tickets") -> str:
    ws.write_text("tickets", manifest_text("tickets", f"outputs:\n  path: {path}\n"))
    result = dfr("apply", "--auto-approve", ws.manifests)
    assert result.code == 0, result.err
    return str(ws.run_ids()["tickets"])


def _failure(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("tickets: failed: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("mine", ["run_summary.json", "data", "reports/quality"])
def test_a_users_own_file_where_a_run_file_goes_is_never_replaced(
    ws: Workspace, dfr: Runner, emu: Emulator, mine: str
) -> None:
    run_id = _applied(ws, dfr)
    folder = ws.root / "data/tickets"
    (folder / mine).parent.mkdir(parents=True, exist_ok=True)
    (folder / mine).write_bytes(b"my own notes\n")
    (folder / "notes.md").write_bytes(b"kept\n")
    result = dfr("pull")
    assert result.code == 1, result.text
    assert f"data/tickets/{mine} is yours" in _failure(result.err)
    assert (folder / mine).read_bytes() == b"my own notes\n"
    assert {p.name for p in folder.iterdir()} == {mine.split("/")[0], "notes.md"}
    # Moved away, the next pull writes the run's files and keeps the other one.
    (folder / mine).rename(ws.root / "moved")
    again = dfr("pull")
    assert again.code == 0, again.text
    for path, data in emu.run_files(run_id).items():
        assert (folder / path).read_bytes() == data
    assert (folder / "notes.md").read_bytes() == b"kept\n"


def test_a_users_copy_of_exactly_the_run_file_is_no_conflict(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """Data downloaded by hand before dfr took over: a file no pull wrote that holds
    exactly the run's bytes is the run's file; the pull records it and goes on."""
    run_id = _applied(ws, dfr)
    folder = ws.root / "data/tickets"
    folder.mkdir(parents=True)
    files = emu.run_files(run_id)
    (folder / "run_summary.json").write_bytes(files["run_summary.json"])
    (folder / "notes.md").write_bytes(b"kept\n")
    result = dfr("pull")
    assert result.code == 0, result.text
    for path, data in files.items():
        assert (folder / path).read_bytes() == data
    assert (folder / "notes.md").read_bytes() == b"kept\n"
    assert dfr("pull", "--check").code == 0


def test_an_output_folder_that_is_a_file_is_left_alone(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    _applied(ws, dfr)
    (ws.root / "data").mkdir()
    (ws.root / "data/tickets").write_bytes(b"a file, not a folder\n")
    result = dfr("pull")
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    (line,) = result.lines(": error: ")
    assert line.endswith(
        "tickets.yaml:9:1: error: outputs.path 'data/tickets' of manifest"
        " 'tickets' exists and is not a folder; name a folder (it is created"
        " when the run's files are pulled)"
    ), line
    assert (ws.root / "data/tickets").read_bytes() == b"a file, not a folder\n"


@pytest.mark.repo
@pytest.mark.parametrize("link", ["data", "data/tickets"])
def test_an_output_folder_through_a_link_out_of_the_repository_is_refused(
    ws: Workspace, dfr: Runner, emu: Emulator, tmp_path: Path, link: str
) -> None:
    _applied(ws, dfr)
    outside = tmp_path / "outside"
    (outside / "tickets").mkdir(parents=True)
    (outside / "tickets/precious.txt").write_bytes(b"precious\n")
    (ws.root / "data").mkdir(exist_ok=True)
    target = outside if link == "data" else outside / "tickets"
    if link == "data":
        (ws.root / "data").rmdir()
    os.symlink(target, ws.root / link)
    result = dfr("pull")
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    (line,) = result.lines(": error: ")
    assert line.startswith("runs/tickets.yaml:9:1: error: outputs.path 'data/tickets'")
    assert "resolves through a symbolic link" in line
    assert sorted(p.name for p in outside.rglob("*")) == ["precious.txt", "tickets"]
    assert (outside / "tickets/precious.txt").read_bytes() == b"precious\n"


def test_a_link_inside_the_output_folder_is_never_written_through(
    ws: Workspace, dfr: Runner, emu: Emulator, tmp_path: Path
) -> None:
    """A user's link named like a folder of the run (`data` -> elsewhere) is theirs:
    the pull refuses to replace it and writes nothing where it points."""
    _applied(ws, dfr)
    outside = tmp_path / "outside"
    outside.mkdir()
    (ws.root / "data/tickets").mkdir(parents=True)
    os.symlink(outside, ws.root / "data/tickets/data")
    result = dfr("pull")
    assert result.code == 1, result.text
    assert "data/tickets/data is yours" in _failure(result.err)
    assert list(outside.iterdir()) == []
    assert (ws.root / "data/tickets/data").is_symlink()


@pytest.mark.repo
@pytest.mark.parametrize("command", ["pull", "apply", "status"])
def test_dfr_from_a_subfolder_never_uses_an_empty_state_beside_the_real_one(
    ws: Workspace, dfr: Runner, emu: Emulator, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Without dfr.yaml the state is dfr.state.json in the current folder: from a
    subfolder, an empty one, and an apply there would pay for every run again."""
    _applied(ws, dfr)
    monkeypatch.chdir(ws.manifests)
    argv = {"pull": ["pull"], "apply": ["apply", "--auto-approve", "."], "status": ["status"]}
    result = dfr(*argv[command])
    assert result.code == 1, result.text
    assert "Traceback" not in result.err
    state = ws.root / "dfr.state.json"
    assert f"error: no dfr.state.json here, but {state} is this repository's state" in result.err
    assert len(emu.runs()) == 1
    assert sorted(p.name for p in ws.manifests.iterdir()) == ["tickets.yaml"]
    # With the state named, from the same folder, everything works.
    named = dfr(*argv[command][:1], "--state", str(state), *argv[command][1:])
    assert named.code == 0, named.text
    assert len(emu.runs()) == 1


def test_a_finding_on_outputs_names_the_file_read_not_a_copy_seen_before(
    ws: Workspace, dfr: Runner, tmp_path: Path
) -> None:
    """The validation cache is keyed by content: a manifest with the same bytes in
    another project hits the entry written there, and its outputs' place must be
    this file's (it named the other project's file)."""
    text = manifest_text("tickets", "outputs:\n  path: data/tickets\n")
    other = tmp_path / "other-project"
    other.mkdir()
    (other / "tickets.yaml").write_text(text, "utf-8")
    assert dfr("validate", other).code == 0  # cached, clean
    ws.write_text("tickets", text)
    (ws.root / "data").mkdir()
    (ws.root / "data/tickets").write_bytes(b"a file\\n")
    result = dfr("validate", "manifests")
    assert result.code == 1, result.text
    (line,) = result.lines(": error: ")
    assert line.startswith("manifests/tickets.yaml:9:1: error: "), line


@pytest.mark.parametrize("inner", ["data/tickets/more", "Data/Tickets", "data/./tickets"])
def test_an_output_folder_inside_another_manifests_is_a_located_error(
    ws: Workspace, dfr: Runner, emu: Emulator, inner: str
) -> None:
    ws.write_text("tickets", manifest_text("tickets", "outputs:\n  path: data/tickets\n"))
    ws.write_text("reviews", manifest_text("reviews", f"outputs:\n  path: {inner}\n"))
    for command in (("validate",), ("plan",), ("apply", "--auto-approve"), ("pull",)):
        result = dfr(*command, "manifests") if command != ("pull",) else dfr("pull")
        assert result.code == 1, (command, result.text)
        assert "Traceback" not in result.err
        assert any(
            line.startswith(("manifests/reviews.yaml:9:", "manifests/tickets.yaml:9:"))
            and "outputs.path of manifest" in line
            for line in result.lines(": error: ")
        ), (command, result.text)
    assert emu.runs() == []
