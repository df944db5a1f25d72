"""The lock of the data seen from plan, status and apply --pull (issue 16)."""

from __future__ import annotations

import json

from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator


def write(ws: Workspace, name: str, samples: int = 10) -> None:
    extra = f"outputs:\n  path: data/{name}\n"
    ws.write_text(name, manifest_text(name, extra, samples=samples))


def test_apply_pull_submits_then_pulls(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    write(ws, "tickets")
    result = dfr("apply", "--auto-approve", "--pull", ws.manifests)
    assert result.code == 0, result.err
    run_id = str(ws.run_ids()["tickets"])
    folder = ws.root / "data/tickets"
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == set(
        emu.run_files(run_id)
    )
    assert "Pull: 1 pulled, 0 up to date, 0 failed (5 files downloaded)." in result.out
    again = dfr("apply", "--auto-approve", "--pull", ws.manifests)
    assert again.code == 0
    assert "Pull: 0 pulled, 1 up to date" in again.out


def test_plan_shows_the_pull_in_text_json_and_markdown(ws: Workspace, dfr: Runner) -> None:
    write(ws, "tickets")
    assert dfr("apply", "--auto-approve", ws.manifests).code == 0
    text = dfr("plan", ws.manifests, "--detailed-exitcode")
    assert text.code == 2
    assert "  # files of tickets will be pulled into data/tickets" in text.out
    assert "  #   never pulled" in text.out
    assert "Outputs: 1 folder to pull" in text.out
    doc = json.loads(dfr("plan", ws.manifests, "--json").out)
    assert [(p["name"], p["action"], p["reason"]) for p in doc["pulls"]] == [
        ("tickets", "pull", "never pulled")
    ]
    assert doc["summary"]["has_changes"] is True
    markdown = dfr("plan", ws.manifests, "--format", "markdown").out
    assert "#### Data to pull (1)" in markdown
    assert "- `tickets` → `data/tickets`: never pulled" in markdown
    assert dfr("pull").code == 0
    assert dfr("plan", ws.manifests, "--detailed-exitcode").code == 0
    (ws.root / "data/tickets/run_summary.json").write_text("{}\n")
    changed = dfr("plan", ws.manifests)
    assert "the folder differs from state: 1 modified" in changed.out
    assert "      ~ run_summary.json" in changed.out


def test_plan_pulls_a_replaced_run_after_it(ws: Workspace, dfr: Runner) -> None:
    write(ws, "tickets")
    assert dfr("apply", "--auto-approve", "--pull", ws.manifests).code == 0
    write(ws, "tickets", samples=11)
    plan = json.loads(dfr("plan", ws.manifests, "--json").out)
    assert [(p["name"], p["run_id"], p["depends_on"]) for p in plan["pulls"]] == [
        ("tickets", None, ["run/tickets"])
    ]


def test_status_shows_whether_each_folder_matches(ws: Workspace, dfr: Runner) -> None:
    write(ws, "tickets")
    write(ws, "reviews")
    assert dfr("apply", "--auto-approve", ws.manifests).code == 0
    plain = dfr("status")
    assert "DATA" not in plain.out  # no pull recorded yet: no column
    assert dfr("pull", "tickets").code == 0
    table = dfr("status").out
    assert "DATA" in table.splitlines()[0]
    rows = {line.split()[0]: line.rstrip() for line in table.splitlines()[1:3]}
    assert rows["tickets"].endswith("  pulled")
    # No pull recorded: status reads state only and cannot tell whether the manifest
    # declares outputs (plan shows the pull), so it says nothing.
    assert rows["reviews"].endswith("  -")
    (ws.root / "data/tickets/run_summary.json").unlink()
    after = dfr("status")
    assert "missing" in after.out
    assert "tickets: data/tickets differs from state (1 missing); `dfr pull tickets`" in after.out
    runs = {r["name"]: r for r in json.loads(dfr("status", "--json").out)["runs"]}
    assert runs["tickets"]["data"] == {
        "state": "missing",
        "path": "data/tickets",
        "missing": ["run_summary.json"],
        "modified": [],
    }
    assert runs["reviews"]["data"]["state"] is None
    assert runs["tickets"]["outputs"]["path"] == "data/tickets"
