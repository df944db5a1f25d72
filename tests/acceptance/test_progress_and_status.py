"""Progress of apply (under a pseudo-terminal and without one), the status table, failures
that explain themselves."""

from __future__ import annotations

import io
import json
import re

import pytest
from support.runner import Runner, apply_args, dfr_process
from support.workspace import Workspace

from dfr_emulator import Emulator

ESC = "\x1b["

# Runs that take 0.3 s: long enough for the live display to draw while apply waits.
pytestmark = pytest.mark.emulator(processing_seconds=0.3)


def _three(ws: Workspace) -> None:
    ws.write("alpha", labels={"team": "support"}, number_of_samples=10, spec_version=2)
    ws.write("beta", labels={"team": "support"}, number_of_samples=30, spec_version=2)
    ws.write("gamma", labels={"team": "research"}, number_of_samples=20, spec_version=2)


def _polls(emu: Emulator) -> int:
    return int(emu.stats()["requests"].get("runs.list", 0))


def test_plain_progress_without_a_terminal(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    _three(ws)
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0
    assert ESC not in out and ESC not in err  # no escape codes in logs
    assert "Apply complete: 3 submitted" in out
    assert "progress:" not in out  # progress is on stderr only
    progress = [line for line in err.splitlines() if line.startswith("progress:")]
    # One line when waiting starts, the final counts, and at most one per 30 s in
    # between: never one per poll.
    assert _polls(emu) >= 3
    assert len(progress) == 2
    assert re.fullmatch(r"progress: 3 PENDING \(\d+s elapsed\); slowest: .+", progress[0])
    assert re.fullmatch(r"progress: 3 SUCCEEDED \(\d+s elapsed\)", progress[1])
    for name in ("alpha", "beta", "gamma"):
        assert f"{name}: submitted run " in err and f"{name}: SUCCEEDED (" in err


def test_only_submissions_and_final_statuses_scroll(ws: Workspace, dfr: Runner) -> None:
    """README: "each submission and each final status scrolls"; a PROCESSING line per
    run used to scroll too (the counts show it)."""
    _three(ws)
    code, _, err = dfr(*apply_args("manifests"))
    assert code == 0
    said = [line for line in err.splitlines() if not line.startswith("progress:")]
    assert len(said) == 6, err
    assert sorted(line.split(": ", 1)[1].split(" ", 1)[0] for line in said) == [
        *(["SUCCEEDED"] * 3),
        *(["submitted"] * 3),
    ], err
    assert "PROCESSING" not in err.replace("progress:", "")


def test_runs_not_yet_submitted_are_not_labelled_like_an_api_status() -> None:
    """QUEUED read like a status the API gave; it is dfr's own queue."""
    from reconciler.manifests import Manifest
    from reconciler.plan import make_plan
    from reconciler.progress import PlainProgress
    from reconciler.state.model import State

    manifests = [Manifest(n, {"spec_id": "s", "number_of_samples": 1}) for n in "abc"]
    plan = make_plan(manifests, State.empty())
    err = io.StringIO()
    progress = PlainProgress(plan, {}, err, interval=30.0)
    assert progress.counts() == [("to submit", 3)]
    assert progress.summary().startswith("progress: 3 to submit (")
    progress.submitted("a", "run-a")
    assert progress.counts() == [("to submit", 2), ("PENDING", 1)]


def test_plain_progress_interval_is_configurable(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _three(ws)
    monkeypatch.setenv("DFR_PROGRESS_INTERVAL", "0.001")
    code, _, err = dfr(*apply_args("manifests"))
    assert code == 0
    progress = [line for line in err.splitlines() if line.startswith("progress:")]
    assert len(progress) >= 2
    assert progress[-1].startswith("progress: 3 SUCCEEDED (")


def test_live_progress_under_a_pseudo_terminal(emu: Emulator, ws: Workspace) -> None:
    _three(ws)
    emu.configure(fail_next=1)
    result = dfr_process(
        *apply_args("--parallelism", "1", "manifests"),
        env=ws.env({"TERM": "xterm-256color"}),
        cwd=ws.root,
        tty=True,
    )
    assert result.code == 1  # alpha FAILED
    # stderr is the terminal: a live display with colours, counts, elapsed time, slowest runs.
    assert ESC in result.err
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.err)
    assert re.search(r"dfr apply\s+\d/3 finished", screen)
    assert "elapsed" in screen and "slowest runs" in screen
    assert "progress: 2 SUCCEEDED, 1 FAILED" in screen  # the final counts stay on screen
    # stdout (a pipe here) has the plan and the report, no escape codes and no display.
    assert ESC not in result.out
    assert "Plan: 3 to create" in result.out
    assert not re.search(r"\d/3 finished", result.out)
    # The failure explains itself: what the API says and the command that resubmits it.
    assert f"run {emu.runs()[-1]['id']} ended FAILED: the API gives no reason" in result.out
    assert "resubmit with: dfr apply --replace alpha" in result.out


@pytest.mark.parametrize("switch", ["NO_COLOR", "--no-progress"])
def test_no_color_or_no_progress_means_plain_lines_on_a_terminal(
    ws: Workspace, switch: str
) -> None:
    ws.write("alpha", spec_version=2)
    env = ws.env({"TERM": "xterm-256color", **({"NO_COLOR": "1"} if switch == "NO_COLOR" else {})})
    args = apply_args("manifests") + (["--no-progress"] if switch == "--no-progress" else [])
    result = dfr_process(*args, env=env, cwd=ws.root, tty=True)
    assert result.code == 0
    assert ESC not in result.err
    assert "alpha: submitted run" in result.err and "progress: 1 PENDING" in result.err


@pytest.fixture
def applied(emu: Emulator, ws: Workspace, dfr: Runner) -> Workspace:
    _three(ws)
    emu.configure(fail_next=1)
    assert dfr(*apply_args("--parallelism", "1", "manifests")).code == 1
    return ws


def _rows(out: str) -> list[list[str]]:
    lines = out.split("\n\n", 1)[0].splitlines()
    return [re.split(r"\s{2,}", line) for line in lines]


def test_status_table_totals_and_failure(applied: Workspace, dfr: Runner) -> None:
    code, out, _ = dfr("status")
    assert code == 0 and ESC not in out
    rows = _rows(out)
    assert rows[0] == ["NAME", "RUN ID", "STATUS", "SAMPLES", "COST", "AGE"]
    assert [r[0] for r in rows[1:]] == ["alpha", "beta", "gamma"]
    state = json.loads(dfr("status", "--json").out)
    by_name = {r["name"]: r for r in state["runs"]}
    beta = next(r for r in rows if r[0] == "beta")
    assert beta[1] == by_name["beta"]["run_id"] and beta[2] == "SUCCEEDED"
    done = by_name["beta"]["samples_completed"]
    assert beta[3].startswith(f"{done}/30") and beta[4] == f"${by_name['beta']['total_cost']:,.2f}"
    assert re.fullmatch(r"\d+s", beta[5])
    alpha = next(r for r in rows if r[0] == "alpha")
    assert alpha[2] == "FAILED"
    total_cost = sum(r["total_cost"] or 0 for r in state["runs"])
    assert "3 runs, " in out and f"${total_cost:,.2f} (1 failed, 2 succeeded)." in out
    assert f"alpha: run {by_name['alpha']['run_id']} ended FAILED: the API gives no reason" in out
    assert "resubmit with: dfr apply --replace alpha" in out


def test_status_sort_filter_and_json(applied: Workspace, dfr: Runner) -> None:
    doc = json.loads(dfr("status", "--json").out)
    assert set(doc) == {"serial", "lineage", "runs"}
    costs = {r["name"]: r["total_cost"] or 0.0 for r in doc["runs"]}
    by_cost = [r[0] for r in _rows(dfr("status", "--sort", "cost").out)[1:]]
    assert by_cost == sorted(costs, key=lambda n: (-costs[n], n))
    assert _rows(dfr("status", "--sort", "status").out)[1][0] == "alpha"  # problems first
    assert [r[0] for r in _rows(dfr("status", "--sort", "age").out)[1:]] == [
        "alpha",
        "beta",
        "gamma",
    ]  # submitted one at a time, in name order: oldest first
    filtered = dfr("status", "-l", "team=support", "--sort", "name")
    assert [r[0] for r in _rows(filtered.out)[1:]] == ["alpha", "beta"]
    assert [
        r["name"] for r in json.loads(dfr("status", "--json", "-l", "team=research").out)["runs"]
    ] == ["gamma"]
    assert dfr("status", "--sort", "size").code == 1


def test_status_table_on_a_terminal_uses_rich(applied: Workspace) -> None:
    from reconciler.state.local import LocalBackend
    from reconciler.views.status import write_status

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    records = list(LocalBackend(applied.state).read().runs.values())
    screen = Terminal()
    write_status(records, screen)
    text = screen.getvalue()
    assert ESC in text and "FAILED" in text and "dfr apply --replace alpha" in text
    plain = io.StringIO()
    write_status(records, plain)
    assert ESC not in plain.getvalue()


def test_apply_reports_failed_reason_and_resubmit(applied: Workspace, dfr: Runner) -> None:
    code, out, _ = dfr(*apply_args("manifests"))
    assert code == 1  # nothing to submit; alpha stays FAILED until asked
    assert "will not be resubmitted; use --replace NAME" in out
    code, out, _ = dfr(*apply_args("--replace", "alpha", "manifests"))
    assert code == 0 and "Apply complete: 1 submitted" in out
