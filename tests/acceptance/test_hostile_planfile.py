"""Saved plans tried as a hostile user would: `dfr plan --out F` at the wrong
place, `dfr apply F` with a damaged, foreign, stale or twice-used F, and
`apply F` killed mid-submit.

The promises: `--out` never overwrites a file that is not a saved plan (the
state, a manifest, a device) and leaves no temp file behind; `apply F` runs
exactly the reviewed plan against the state it was made for, or is refused
with one line and exit 1; never a duplicate run, never a lost run id.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pg_server import database_url, in_schema, sql
from support.emulators import EmulatorProcess, cancels, emu_status, posts, wait_for
from support.runner import POLL, Runner
from support.unfinished import apply_finished, submit_unfinished
from support.workspace import Workspace

from dfr_emulator import Emulator
from reconciler import planfile
from reconciler.errors import PlanError


def _saved(dfr: Runner, out: str = "the.plan", *extra: str) -> Path:
    result = dfr("plan", "--out", out, *extra, "manifests")
    assert result.code == 0, result.text
    return Path(out)


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp-*"))


# -- dfr plan --out F -----------------------------------------------------------------


def test_out_never_overwrites_the_state_or_its_files(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha")
    ws.write("beta")
    before = ws.state.read_bytes()
    ids = ws.run_ids()
    for target in ("dfr.state.json", "dfr.state.json.journal", "dfr.state.json.backup"):
        result = dfr("plan", "--out", target, "manifests")
        assert result.code == 1, result.text
        assert "state" in _one_error(result.err) and "not saved" in result.err
        assert "Saved the plan" not in result.out
    assert ws.state.read_bytes() == before and ws.run_ids() == ids
    assert not Path("dfr.state.json.journal").exists()
    assert _temps(ws.root) == []
    # The next apply still knows alpha's run: nothing was paid twice.
    assert dfr("apply", "--auto-approve", "--poll-interval", POLL, "manifests").code == 0
    assert posts(emu) == 2


def test_summary_file_never_overwrites_the_state_nor_the_saved_plan(
    ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha")
    before = ws.state.read_bytes()
    for target in ("dfr.state.json", "dfr.state.json.journal"):
        result = dfr("plan", "--summary-file", target, "manifests")
        assert result.code == 1 and "state" in _one_error(result.err), result.text
    assert ws.state.read_bytes() == before
    result = dfr("plan", "--out", "the.plan", "--summary-file", "./the.plan", "manifests")
    assert result.code == 1 and "--summary-file" in _one_error(result.err)
    assert not Path("the.plan").exists()


def test_out_never_overwrites_a_manifest_a_link_or_a_special_file(
    ws: Workspace, dfr: Runner
) -> None:
    manifest = ws.write("alpha")
    text = manifest.read_bytes()
    link = ws.root / "link.plan"
    link.symlink_to(manifest)
    fifo = ws.root / "pipe.plan"
    os.mkfifo(fifo)
    notes = ws.root / "notes.txt"
    notes.write_text("my notes\n")
    for target in (manifest, link, fifo, notes, ws.manifests):
        result = dfr("plan", "--out", target, "manifests")
        assert result.code == 1, result.text
        _one_error(result.err)
    assert manifest.read_bytes() == text and link.is_symlink() and fifo.is_fifo()
    assert notes.read_text() == "my notes\n"
    # A new name ending in .yaml would be read as a manifest by the next plan.
    result = dfr("plan", "--out", "manifests/plan.yaml", "manifests")
    assert result.code == 1 and ".yaml" in _one_error(result.err)
    assert not (ws.manifests / "plan.yaml").exists()
    assert _temps(ws.root) == []


def test_out_in_a_missing_folder_or_empty_is_one_line(ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    result = dfr("plan", "--out", "missing/the.plan", "manifests")
    assert result.code == 1 and "missing/the.plan" in _one_error(result.err)
    result = dfr("plan", "--out", "", "manifests")
    assert result.code == 1 and "--out" in _one_error(result.err)
    assert "Saved the plan" not in result.out
    assert _temps(ws.root) == []


def test_out_interrupted_mid_write_leaves_no_temp_file(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write("alpha")
    replace = os.replace

    def interrupted(source: str, target: str) -> None:
        if str(target).endswith("the.plan"):
            raise KeyboardInterrupt  # Ctrl-C between the temp file and its rename
        replace(source, target)

    monkeypatch.setattr(os, "replace", interrupted)
    result = dfr("plan", "--out", "the.plan", "manifests")
    assert result.code == 130, result.text
    assert not Path("the.plan").exists() and _temps(ws.root) == []


@pytest.mark.parametrize("name", ["my plan.json", "plán ✓.plan", "-dash.plan", "it's.plan"])
def test_out_odd_names_are_quoted_in_the_apply_hint(
    emu: Emulator, ws: Workspace, dfr: Runner, name: str
) -> None:
    ws.write("alpha")
    result = dfr("plan", "--out", name, "manifests")
    assert result.code == 0, result.text
    hint = result.out.split("Apply exactly it with: ", 1)[1].strip()
    argv = shlex.split(hint)
    assert argv[:2] == ["dfr", "apply"] and len(argv) == 3
    assert Path(argv[2]).resolve() == (ws.root / name).resolve()
    applied = dfr(*argv[1:2], "--poll-interval", POLL, argv[2])
    assert applied.code == 0, applied.text
    assert posts(emu) == 1


@pytest.mark.parametrize("name", ["new\nline.plan", "esc\x1b[31m.plan", "cr\r.plan"])
def test_out_names_with_control_characters_are_refused(
    ws: Workspace, dfr: Runner, name: str
) -> None:
    ws.write("alpha")
    result = dfr("plan", "--out", name, "manifests")
    assert result.code == 1
    assert "\x1b" not in result.text and "control character" in _one_error(result.err)
    assert sorted(p.name for p in ws.root.iterdir()) == ["manifests"]


def test_out_may_fill_an_empty_file(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    """`dfr plan --out "$(mktemp)"`: mktemp makes the file, empty."""
    ws.write("alpha")
    Path("made.plan").touch()
    plan = _saved(dfr, "made.plan")
    assert dfr("apply", "--poll-interval", POLL, plan).code == 0
    assert posts(emu) == 1


def test_every_cut_of_a_saved_plan_is_refused_as_a_plan(ws: Workspace, dfr: Runner) -> None:
    """Cut at any byte (a full disk, an interrupted copy, CRLF line ends), a saved plan is
    still taken for one, and refused as damaged: never read as a manifest or applied."""
    ws.write("alpha")
    good = _saved(dfr).read_bytes()
    path = ws.root / "cut.plan"
    for data in (good, good.replace(b"\n", b"\r\n")):
        for size in range(len(data) - 2):  # the last bytes are the closing brace and newline
            path.write_bytes(data[:size])
            assert planfile.is_meant_as_plan(str(path)), size
            with pytest.raises(PlanError):
                planfile.load(str(path))


def test_out_replaces_a_saved_plan_of_another_project(
    emu: Emulator, ws: Workspace, dfr: Runner, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ws.write("alpha")
    other = tmp_path_factory.mktemp("other")
    Workspace(other).write("beta")
    os.chdir(other)
    assert dfr("plan", "--out", "shared.plan", "manifests", state=other / "s.json").code == 0
    os.chdir(ws.root)
    plan = _saved(dfr, str(other / "shared.plan"))
    result = dfr("apply", "--poll-interval", POLL, plan)
    assert result.code == 0, result.text
    assert set(ws.run_ids()) == {"alpha"} and posts(emu) == 1


# -- dfr apply F ----------------------------------------------------------------------


def test_apply_of_an_empty_path_is_refused(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    """`dfr apply --auto-approve "$PLANFILE"` with the variable unset applies nothing."""
    ws.write("alpha")
    result = dfr("apply", "--auto-approve", "")
    assert result.code == 1 and "empty" in _one_error(result.err)
    assert posts(emu) == 0


def test_apply_of_damaged_plan_files_is_refused(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    good = _saved(dfr).read_bytes()
    cases = {
        "empty.plan": (b"", "empty"),
        "blank.plan": (b"  \n", "empty"),
        "head.plan": (good[:40], "saved plan"),  # cut before it names itself a plan
        "half.plan": (good[: len(good) // 2], "saved plan"),
        "latin1.plan": (good.replace(b'"cwd"', b'"cwd\xe9"'), "saved plan"),
    }
    for name, (data, words) in cases.items():
        Path(name).write_bytes(data)
        result = dfr("apply", "--auto-approve", name)
        assert result.code == 1, (name, result.text)
        assert words in _one_error(result.err), (name, result.err)
    huge = Path("huge.plan")
    with huge.open("wb") as handle:
        handle.write(b'{"dfr_saved_plan": 1, "x": "')
        handle.truncate(65 * 1024 * 1024)  # sparse: no 65 MB written
    result = dfr("apply", huge)
    assert result.code == 1 and "too large" in _one_error(result.err)
    assert posts(emu) == 0
    # An editor's byte order mark changes no content: the plan is still the plan.
    Path("bom.plan").write_bytes(b"\xef\xbb\xbf" + good)
    result = dfr("apply", "--poll-interval", POLL, "bom.plan")
    assert result.code == 0, result.text
    assert posts(emu) == 1


def test_apply_from_another_folder_uses_the_plans_state_or_refuses(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    ws.write("beta")
    plan = dfr("plan", "--out", "the.plan", "manifests", state=None)  # the default state
    assert plan.code == 0, plan.text
    sub = ws.root / "sub"
    sub.mkdir()
    os.chdir(sub)
    # Here the default state is sub/dfr.state.json, another (empty) state.
    result = dfr("apply", "--poll-interval", POLL, "../the.plan", state=None)
    assert result.code == 1, result.text
    line = _one_error(result.err)
    assert "another state" in line and os.path.realpath("../dfr.state.json") in line
    assert posts(emu) == 0 and not (sub / "dfr.state.json").exists()
    # Naming the plan's state applies it, reading the manifests the plan read.
    result = dfr("apply", "--poll-interval", POLL, "../the.plan", state="../dfr.state.json")
    assert result.code == 0, result.text
    assert posts(emu) == 2 and set(ws.run_ids()) == {"alpha", "beta"}


def test_a_plan_applies_in_another_checkout_of_the_same_state(
    emu: Emulator, ws: Workspace, dfr: Runner, tmp_path: Path
) -> None:
    """GitOps: one CI job plans, another applies, each in its own checkout (of the
    repository and of the state branch) at another path. A state that has recorded
    runs is known by its lineage wherever it is; only a plan made before any state
    existed is bound to where its state was to be."""
    import shutil

    ws.write("alpha")
    assert dfr("apply", "--auto-approve", "--poll-interval", POLL, "manifests").code == 0
    ws.write("beta")
    assert _saved(dfr).exists()
    other = tmp_path / "another-job"
    shutil.copytree(ws.root, other)
    os.chdir(other)
    result = dfr("apply", "--poll-interval", POLL, "the.plan", state=str(other / "dfr.state.json"))
    assert result.code == 0, result.text
    assert posts(emu) == 2  # alpha once (the first apply), beta once
    recorded = json.loads((other / "dfr.state.json").read_text())
    assert set(recorded["runs"]) == {"alpha", "beta"}


def test_apply_after_a_manifest_was_renamed_runs_the_same_runs(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    plan = _saved(dfr)
    (ws.manifests / "alpha.yaml").rename(ws.manifests / "renamed.yaml")  # git mv
    result = dfr("apply", "--poll-interval", POLL, plan)
    assert result.code == 0, result.text
    assert posts(emu) == 1 and set(ws.run_ids()) == {"alpha"}


def test_a_plan_made_with_refresh_applies_with_the_statuses_it_showed(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    assert dfr("apply", "--auto-approve", "--no-wait", "manifests").code == 0
    run_id = str(ws.run_ids()["alpha"])
    wait_for(lambda: emu_status(emu, run_id) == "SUCCEEDED")
    assert ws.record("alpha")["status"] == "PENDING"  # --no-wait: not seen finished
    ws.write("beta")
    plan = _saved(dfr, "the.plan", "--refresh")
    result = dfr("apply", "--poll-interval", POLL, plan)
    assert result.code == 0, result.text
    assert posts(emu) == 2
    assert {r["status"] for r in ws.state_doc()["runs"].values()} == {"SUCCEEDED"}
    again = dfr("apply", plan)
    assert again.code == 1 and "stale" in _one_error(again.err)
    assert posts(emu) == 2


@pytest.mark.parametrize("moved", ["FAILED", "gone"])
def test_a_refresh_plan_whose_statuses_moved_since_is_refused(
    emu: Emulator, ws: Workspace, dfr: Runner, moved: str
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    run_id = str(ws.run_ids()["alpha"])
    ws.write("beta")
    plan = _saved(dfr, "the.plan", "--refresh")  # alpha PENDING, beta to create
    if moved == "gone":
        emu.forget(run_id)
    else:
        emu.force_status(run_id, moved)
    result = dfr("apply", "--no-wait", plan)
    assert result.code == 1, result.text
    # A run that answers 404 is never taken for deleted on one look (see `dfr refresh`).
    words = "404" if moved == "gone" else "moved since `dfr plan --refresh`"
    assert words in _one_error(result.err)
    assert posts(emu) == 1


def test_a_plan_with_other_paths_or_plan_options_is_refused(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    plan = _saved(dfr)
    for args in (
        (plan, "manifests"),
        ("manifests", plan),
        (plan, plan),
        ("--replace", "alpha", plan),
        ("--prune", plan),
    ):
        result = dfr("apply", "--auto-approve", *args)
        assert result.code == 1, (args, result.text)
        line = _one_error(result.err)
        assert "saved plan" in line, (args, line)
    assert posts(emu) == 0


def test_a_plan_made_with_replace_replaces_once(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    old = str(ws.run_ids()["alpha"])
    plan = _saved(dfr, "the.plan", "--replace", "alpha")
    result = dfr("apply", "--no-wait", plan)
    assert result.code == 0, result.text
    assert posts(emu) == 2 and cancels(emu) == 1 and ws.run_ids()["alpha"] != old
    for extra in ((), ("--replace", "alpha")):
        again = dfr("apply", "--no-wait", *extra, plan)
        assert again.code == 1, again.text
        _one_error(again.err)
    assert posts(emu) == 2 and cancels(emu) == 1


def test_a_plan_saved_by_the_previous_dfr_still_applies(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    """Plans saved before they named their state and --refresh (same format 1)."""
    ws.write("alpha")
    plan = _saved(dfr)
    document = json.loads(plan.read_text())
    del document["refresh"], document["state"]["at"], document["state"]["workspace"]
    document["checksum"] = planfile._checksum(document)
    plan.write_text(json.dumps(document, indent=2, sort_keys=True))
    result = dfr("apply", "--poll-interval", POLL, plan)
    assert result.code == 0, result.text
    assert posts(emu) == 1


def test_plan_of_a_saved_plan_says_what_it_is(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    plan = _saved(dfr)
    result = dfr("plan", "--out", "again.plan", plan)
    assert result.code == 1 and "dfr apply the.plan" in _one_error(result.err)
    assert not Path("again.plan").exists()


def test_the_same_plan_twice_in_a_row_is_stale(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    plan = _saved(dfr)  # made before any state existed (serial 0)
    assert dfr("apply", "--no-wait", plan).code == 0
    result = dfr("apply", "--no-wait", plan)
    assert result.code == 1
    assert "stale" in _one_error(result.err) and "another state" not in result.err
    assert posts(emu) == 1


def test_a_plan_made_before_another_apply_submitted_is_stale(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha")
    ws.write("beta")
    plan = _saved(dfr)
    assert dfr("apply", "--auto-approve", "--no-wait", "manifests").code == 0  # beta paid
    result = dfr("apply", "--no-wait", plan)
    assert result.code == 1 and "stale" in _one_error(result.err)
    assert posts(emu) == 2


def test_a_plan_for_one_database_workspace_is_refused_on_another(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    url = database_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    sql(url, f"CREATE SCHEMA {schema}")
    try:
        backend = in_schema(url, schema)
        ws.write("alpha")
        on = ("--backend", backend, "--workspace")
        made = dfr("plan", *on, "team", "--out", "the.plan", "manifests", state=None)
        assert made.code == 0, made.text
        password = urlsplit(url).password
        assert password and password not in Path("the.plan").read_text()
        result = dfr("apply", *on, "other", "the.plan", state=None)
        assert result.code == 1 and "workspace team" in _one_error(result.err)
        assert password not in result.text
        result = dfr("apply", "--state", "local.json", "the.plan", state=None)
        assert result.code == 1 and "another state" in _one_error(result.err)
        assert posts(emu) == 0
        result = dfr("apply", *on, "team", "--poll-interval", POLL, "the.plan", state=None)
        assert result.code == 0, result.text
        assert posts(emu) == 1
    finally:
        sql(url, f"DROP SCHEMA {schema} CASCADE")


# -- apply F as processes: at once, and killed mid-submit ------------------------------

N = 4
Start = Callable[..., EmulatorProcess]
Make = Callable[[EmulatorProcess], Workspace]


def _process_ws(start_emulator: Start, workspace: Make) -> tuple[EmulatorProcess, Workspace]:
    emu = start_emulator(latency=0.05, seed=11)
    ws = workspace(emu)
    ws.write_manifests(N)
    plan = ws.dfr("plan", "--out", "the.plan", str(ws.manifests))
    assert plan.code == 0, plan.text
    return emu, ws


def _one_run_per_manifest(emu: EmulatorProcess, ws: Workspace) -> None:
    runs = emu.runs()
    by_samples = {r["runtime_params"]["number_of_samples"]: r["id"] for r in runs}
    assert len(runs) == N == len(by_samples), runs
    state = ws.read_state()
    for name, samples in ws.samples.items():
        record = state.runs[name]
        assert record.run_id == by_samples[samples] and record.intent is None, name


def test_two_processes_applying_one_plan_submit_once(
    start_emulator: Start, workspace: Make
) -> None:
    emu, ws = _process_ws(start_emulator, workspace)
    args = ("apply", "--no-wait", "--lock-timeout", "30s", "the.plan")
    procs = [ws.start(*args), ws.start(*args)]
    results = sorted((ws.finish(p) for p in procs), key=lambda r: r.code)
    assert [r.code for r in results] == [0, 1], [r.text for r in results]
    assert "stale" in _one_error(results[1].err)
    _one_run_per_manifest(emu, ws)


@pytest.mark.parametrize("crash", ["after-post:2", "before-post:3", "after-post:2:SIGINT"])
def test_apply_of_a_plan_stopped_mid_submit_never_pays_twice(
    start_emulator: Start, workspace: Make, crash: str
) -> None:
    emu, ws = _process_ws(start_emulator, workspace)
    stopped = ws.dfr("apply", "--no-wait", "--parallelism", "1", "the.plan", crash_at=crash)
    signum = signal.SIGINT if crash.endswith("SIGINT") else signal.SIGKILL
    assert stopped.code in (-signum, 128 + signum), stopped.text
    created = emu.stats()["runs_created"]
    again = ws.dfr("apply", "--no-wait", "the.plan")
    assert again.code == 1 and "stale" in _one_error(again.err)
    assert emu.stats()["runs_created"] == created
    ws.apply_until_ok(2, "--no-wait")
    _one_run_per_manifest(emu, ws)
