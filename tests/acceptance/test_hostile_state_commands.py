"""`dfr import`, `dfr refresh`, `dfr status` and `dfr state list|show|rm|mv` tried
as a hostile user would: run ids in another case or with blanks, ids of other
things, answers naming another run, a run under two names, odd names, a held
lock, a damaged state, PostgreSQL and files alike.

The promises: never a duplicate run, never a lost run id; every bad input one
line, exit 1, nothing changed, no traceback (the `dfr` fixture checks that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.emulators import KEY, REVIEWS, SLOW
from support.runner import Result, Runner
from support.workspace import Workspace, spec

from dfr_emulator import Emulator
from reconciler.api import DataframerClient
from reconciler.state.local import LocalBackend
from reconciler.state.model import Intent, RunRecord

BODY = spec(number_of_samples=40)


@pytest.fixture
def api(emu: Emulator) -> Iterator[DataframerClient]:
    """A client of our own, to create runs behind dfr's back."""
    emu.configure(**SLOW)
    with DataframerClient(emu.base_url, KEY) as client:
        yield client


def _manifests(ws: Workspace, *names: str) -> None:
    for name in names:
        ws.write(name, number_of_samples=40)


def _one_line_error(result: Result) -> None:
    assert result.code == 1, result.text
    assert result.out == "", result.out
    assert result.err.startswith("error: ") and result.err.count("\n") <= 2, result.err


def _rewrite_runs(emu: Emulator, change: Callable[[dict[str, Any]], Any] | None) -> None:
    """Every run the API answers (read by id and listed) as `change` makes it."""
    if change is None:
        emu.rewrite("runs.get", None)
        emu.rewrite("runs.list", None)
        return
    emu.rewrite("runs.get", change)
    emu.rewrite("runs.list", lambda runs: [change(run) for run in runs])


# -- dfr import -------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [" {id}", "{id}\n", "\t{upper} "])
def test_import_reads_the_run_id_without_blanks_so_no_run_gets_two_names(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient, typed: str
) -> None:
    _manifests(ws, "alpha", "beta")
    run_id = api.create_run(BODY).id
    as_typed = typed.format(id=run_id, upper=run_id.upper())
    result = dfr("import", "alpha", as_typed, "manifests")
    assert result.code == 0, result.text
    assert result.out == f"Imported run {run_id} (PENDING) as alpha.\n"
    assert ws.run_ids() == {"alpha": run_id}
    # The same run, typed another way, is known: again for alpha, never for beta.
    assert dfr("import", "alpha", as_typed, "manifests").code == 0
    again = dfr("import", "beta", as_typed, "manifests")
    _one_line_error(again)
    assert f"run {run_id} is already recorded for 'alpha'" in again.err.lower()
    assert ws.run_ids() == {"alpha": run_id}


@pytest.mark.parametrize("answered", ["other-run", "5", "a\nb", "../../x", "   "])
def test_import_refuses_an_answer_about_another_run(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient, answered: str
) -> None:
    _manifests(ws, "alpha", "beta")
    recorded, asked = api.create_run(BODY).id, api.create_run(BODY).id
    assert dfr("import", "alpha", recorded, "manifests").code == 0
    other = recorded if answered == "other-run" else answered
    _rewrite_runs(emu, lambda run: {**run, "id": other})
    result = dfr("import", "beta", asked, "manifests")
    if not other.strip():  # no id in the answer: the id asked for is the run's
        assert result.code == 0, result.text
        assert ws.run_ids() == {"alpha": recorded, "beta": asked}
        return
    _one_line_error(result)
    assert f"asked for run {asked}" in result.err and "nothing was recorded" in result.err
    assert ws.run_ids() == {"alpha": recorded}


def test_import_refuses_a_run_whose_answer_names_no_spec_unless_forced(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha")
    run_id = api.create_run({"spec_id": REVIEWS, "number_of_samples": 40}).id
    _rewrite_runs(emu, lambda run: {k: v for k, v in run.items() if k != "spec_id"})
    result = dfr("import", "alpha", run_id, "manifests")
    _one_line_error(result)
    assert "does not say which spec" in result.err and "--force" in result.err
    assert not ws.state.exists() or ws.run_ids() == {}
    forced = dfr("import", "--force", "alpha", run_id, "manifests")
    assert forced.code == 0, forced.text
    assert "does not say which spec" in forced.err
    assert ws.run_ids() == {"alpha": run_id}


def _unconfirmed(ws: Workspace, name: str = "alpha") -> None:
    """State as an apply killed after its POST leaves it: an intent, no run id."""
    with LocalBackend(ws.state).lock("test") as store:
        intent = Intent.new(BODY, at="2020-01-01T00:00:00Z")
        store.put(RunRecord.new(name).evolve(intent=intent, spec=dict(BODY)))


def test_import_over_an_unconfirmed_submission_keeps_the_run_it_made(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha")
    made = api.create_run(BODY).id  # the lost answer's run
    _unconfirmed(ws)
    other = api.create_run(spec(number_of_samples=41)).id  # another body: only --force
    result = dfr("import", "--force", "alpha", other, "manifests")
    _one_line_error(result)
    assert made in result.err and "dfr refresh" in result.err
    assert ws.run_ids() == {"alpha": None}
    # The run the submission made is the one to import: adopted.
    assert dfr("import", "alpha", made, "manifests").code == 0
    record = ws.record("alpha")
    assert (record["run_id"], record["intent"]) == (made, None)


def test_import_over_an_unconfirmed_submission_that_made_nothing(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha")
    _unconfirmed(ws)
    other = api.create_run(spec(number_of_samples=41)).id  # not the submission's body
    result = dfr("import", "--force", "alpha", other, "manifests")
    assert result.code == 0, result.text
    assert ws.run_ids() == {"alpha": other}


def test_import_of_two_candidates_takes_the_one_named(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    """Two runs match a lost submission: refresh names both and `dfr import`; either
    is accepted, and the other is left for the other manifest."""
    _manifests(ws, "alpha")
    first, second = api.create_run(BODY).id, api.create_run(BODY).id
    _unconfirmed(ws)
    refreshed = dfr("refresh")
    assert refreshed.code == 1 and first in refreshed.err and second in refreshed.err
    assert dfr("import", "alpha", second, "manifests").code == 0
    assert ws.run_ids() == {"alpha": second}
