"""`dfr status`, `dfr state list|show|rm` end to end, on a state written by a real apply."""

from __future__ import annotations

import pytest
from support.emulators import posts
from support.runner import Runner, apply_args, parse_json
from support.workspace import Workspace

from dfr_emulator import Emulator


@pytest.fixture
def applied(emu: Emulator, ws: Workspace, dfr: Runner) -> dict[str, str | None]:
    ws.write("alpha", labels={"team": "x"}, number_of_samples=10)
    ws.write("beta", labels={"team": "y"}, number_of_samples=20)
    ws.write("gamma", labels={"team": "x", "tier": "gold"}, number_of_samples=30)
    assert dfr(*apply_args("manifests")).code == 0
    return ws.run_ids()


def test_status_table(applied: dict[str, str | None], dfr: Runner) -> None:
    code, out, _ = dfr("status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "RUN", "ID", "STATUS", "SAMPLES", "COST", "AGE"]
    for name in ("alpha", "beta", "gamma"):
        row = next(line for line in lines if line.startswith(name))
        assert applied[name] in row and "SUCCEEDED" in row and "$" in row
    assert "3 runs," in out


def test_status_json_and_label_filter(applied: dict[str, str | None], dfr: Runner) -> None:
    code, out, _ = dfr("status", "--json")
    assert code == 0
    doc = parse_json(out)
    assert [r["name"] for r in doc["runs"]] == ["alpha", "beta", "gamma"]
    assert {r["name"]: r["run_id"] for r in doc["runs"]} == applied
    code, out, _ = dfr("status", "--json", "-l", "team=x")
    assert [r["name"] for r in parse_json(out)["runs"]] == ["alpha", "gamma"]
    code, out, _ = dfr("status", "-l", "team=x", "--label", "tier=gold")
    assert code == 0 and "gamma" in out and "alpha" not in out and "beta" not in out
    code, out, _ = dfr("status", "-l", "team=nobody")
    assert code == 0 and "No runs match" in out
    code, _, err = dfr("status", "-l", "team")
    assert code == 1 and "KEY=VALUE" in err


def test_state_list_json_is_an_array_of_objects(
    applied: dict[str, str | None], dfr: Runner
) -> None:
    code, out, _ = dfr("state", "list", "--json")
    assert code == 0
    doc = parse_json(out)
    assert isinstance(doc, list)
    assert [(r["name"], r["run_id"], r["status"]) for r in doc] == [
        (n, applied[n], "SUCCEEDED") for n in ("alpha", "beta", "gamma")
    ]
    code, out, _ = dfr("state", "list")
    assert code == 0 and len(out.splitlines()) == 3


def test_state_show(applied: dict[str, str | None], dfr: Runner) -> None:
    code, out, _ = dfr("state", "show", "beta")
    assert code == 0 and applied["beta"] in out and "SUCCEEDED" in out
    code, out, _ = dfr("state", "show", "--json", "beta")
    record = parse_json(out)
    assert record["name"] == "beta" and record["run_id"] == applied["beta"]
    assert record["spec"]["number_of_samples"] == 20 and record["labels"] == {"team": "y"}
    code, out, err = dfr("state", "show", "nobody")
    assert code == 1 and "nobody" in err and out == ""


def test_state_rm_forgets_without_touching_the_run(
    emu: Emulator, applied: dict[str, str | None], ws: Workspace, dfr: Runner
) -> None:
    code, out, _ = dfr("state", "rm", "beta")
    assert code == 0 and f"run {applied['beta']} itself was not touched" in out
    assert set(ws.run_ids()) == {"alpha", "gamma"}
    assert emu.run(str(applied["beta"])) is not None
    assert emu.stats()["requests"].get("runs.cancel", 0) == 0
    code, _, err = dfr("state", "rm", "beta")
    assert code == 1 and "beta" in err
    # An unknown name among known ones removes nothing.
    code, _, _ = dfr("state", "rm", "alpha", "nobody")
    assert code == 1 and set(ws.run_ids()) == {"alpha", "gamma"}
    # The manifest is still there: the plan wants a new run for it.
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2 and "# beta will be created" in out
    assert posts(emu) == 3


def test_empty_state(ws: Workspace, dfr: Runner) -> None:
    assert dfr("status").out == "No runs recorded.\n"
    assert parse_json(dfr("state", "list", "--json").out) == []
    assert parse_json(dfr("status", "--json").out)["runs"] == []


def test_a_state_file_migrated_away_takes_no_more_commands(
    emu: Emulator, applied: dict[str, str | None], ws: Workspace, dfr: Runner
) -> None:
    code, out, err = dfr("state", "migrate", "--to", "team.state.json", state=None)
    assert code == 0 and "marked as moved to team.state.json" in out, err
    new = str(ws.root / "team.state.json")
    ws.write("delta", number_of_samples=40)
    code, _, err = dfr(*apply_args("manifests"), state="team.state.json")
    assert code == 0, err
    assert posts(emu) == 4
    for args in (
        apply_args("manifests"),
        ("plan", "manifests"),
        ("status",),
        ("state", "list"),
        ("state", "rm", "beta"),
        ("refresh",),
    ):
        code, out, err = dfr(*args)
        assert code == 1 and out == "", (args, out)
        assert "state " + str(ws.state) + " was moved to team.state.json by " in err, err
        assert f"hint: use the state where it is now: --state {new}" in err
    assert posts(emu) == 4  # the old file submitted nothing: 4 runs for 4 manifests
    # Moving back makes the old file current again, and the new one refuses.
    back = ("state", "migrate", "--state", "team.state.json", "--to", str(ws.state))
    code, out, err = dfr(*back, state=None)
    assert code == 0 and "it is the current state again" in out, err
    code, out, _ = dfr("state", "list")
    assert code == 0 and "delta" in out
    code, _, err = dfr("status", state="team.state.json")
    assert code == 1 and "was moved to " + str(ws.state) in err
