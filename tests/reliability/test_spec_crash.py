"""`dfr apply` of a spec killed (SIGKILL) at each spec crash point, then resumed.

A Spec manifest with content and two runs that use it: one apply creates the
spec (version 1, the API's), PUTs the content (version 2) and then creates the
runs. Killed before or after the spec's POST or PUT (`reconciler.hooks` points,
armed by `tests/support/crashing_dfr.py`), the next applies must leave exactly
one spec with exactly two versions, both recorded as dfr's, the runs created
once each on it, and no intent in state.
"""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from reliability_harness import assert_no_traceback
from support.emulators import EmulatorProcess
from support.workspace import Workspace

Start = Callable[..., EmulatorProcess]
Make = Callable[[EmulatorProcess], Workspace]

SPEC = textwrap.dedent(
    """\
    apiVersion: dataframer.ai/v1
    kind: Spec
    metadata:
      name: crash-spec
    spec:
      objectives: Support tickets, each with a priority.
      content:
        description: tickets as the manifest says
        requirements: one ticket per file
    """
)

POINTS = ["before-spec-post", "after-spec-post", "before-spec-put", "after-spec-put"]


def _setup(start: Start, workspace: Make) -> tuple[EmulatorProcess, Workspace]:
    emu = start(latency=0.02, seed=5)
    ws = workspace(emu)
    (ws.manifests / "spec.yaml").write_text(SPEC, "utf-8")
    for name, samples in (("uses-1", 21), ("uses-2", 22)):
        ws.write_spec(
            name,
            {"spec_ref": {"name": "crash-spec", "version": "latest"}, "number_of_samples": samples},
        )
        ws.samples[name] = samples
    return emu, ws


def _check(emu: EmulatorProcess, ws: Workspace) -> None:
    specs = [s for s in emu.specs() if s["name"] == "crash-spec"]
    assert len(specs) == 1, specs
    (spec,) = specs
    assert len(spec["versions"]) == 2, spec["versions"]
    record = ws.read_state().specs["crash-spec"]
    assert record.spec_id == spec["id"] and record.intent is None
    assert [(v.number, v.by_dfr) for v in record.versions] == [(1, True), (2, True)]
    runs: list[dict[str, Any]] = emu.runs()
    params: list[dict[str, Any]] = [r.get("runtime_params") or {} for r in runs]
    assert sorted(p["number_of_samples"] for p in params) == [21, 22]
    state = ws.read_state()
    for name in ("uses-1", "uses-2"):
        assert state.runs[name].intent is None and state.runs[name].spec["spec_id"] == spec["id"]
    assert all(r["spec_version"] == 2 for r in runs)
    assert_no_traceback(ws.outputs)


@pytest.mark.parametrize("point", POINTS)
def test_a_kill_at_a_spec_point_leaves_one_spec_and_one_new_version(
    start_emulator: Start, workspace: Make, point: str
) -> None:
    emu, ws = _setup(start_emulator, workspace)
    killed = ws.dfr(*ws.apply_args("--no-wait"), crash_at=f"{point}:1")
    assert killed.code == -signal.SIGKILL, f"{point} was never reached:\n{killed.text}"
    ws.apply_until_ok(3)
    _check(emu, ws)


def test_a_kill_during_the_recovery_of_a_killed_create(
    start_emulator: Start, workspace: Make
) -> None:
    emu, ws = _setup(start_emulator, workspace)
    for point in ("after-spec-post:1", "after-spec-put:1"):
        killed = ws.dfr(*ws.apply_args("--no-wait"), crash_at=point)
        assert killed.code == -signal.SIGKILL, f"{point} was never reached:\n{killed.text}"
    ws.apply_until_ok(3)
    _check(emu, ws)


def test_sigterm_after_the_specs_post_records_its_id_and_stops(
    start_emulator: Start, workspace: Make
) -> None:
    emu, ws = _setup(start_emulator, workspace)
    stopped = ws.dfr(*ws.apply_args(), crash_at="after-spec-post:1:SIGTERM")
    assert stopped.code == 143, stopped.text
    record = ws.read_state().specs["crash-spec"]
    assert record.spec_id is not None and record.intent is None  # the id was kept
    assert emu.stats()["runs_created"] == 0
    ws.apply_until_ok(3)
    _check(emu, ws)
