"""`dfr import`, `dfr refresh`, `dfr status` and `dfr state list|show|rm|mv` tried
as a hostile user would: run ids in another case or with blanks, ids of other
things, answers naming another run, a run under two names, odd names, a held
lock, a damaged state, PostgreSQL and files alike.

The promises: never a duplicate run, never a lost run id; every bad input one
line, exit 1, nothing changed, no traceback (the `dfr` fixture checks that).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.emulators import KEY, REVIEWS, SLOW
from support.runner import Result, Runner, apply_args, dfr_process
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


@pytest.mark.parametrize(
    "run_id",
    [REVIEWS, "00000000-0000-4000-8000-000000000000", "../runs", "a/b?c#d", "", " "],
)
def test_import_of_an_id_that_is_no_run_is_one_line(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient, run_id: str
) -> None:
    """A spec's id, an unknown id, path tricks, nothing: 404 or refused, one line."""
    _manifests(ws, "alpha")
    result = dfr("import", "alpha", run_id, "manifests")
    _one_line_error(result)
    assert not ws.state.exists() or ws.run_ids() == {}


def test_import_of_an_evaluation_id_is_not_found(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha")
    run_id = api.create_run(BODY).id
    emu.force_status(run_id, "SUCCEEDED")
    evaluation = api.create_evaluation(run_id)
    result = dfr("import", "alpha", evaluation.id, "manifests")
    _one_line_error(result)
    assert "not found" in result.err


def test_import_answered_with_garbage_records_nothing(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    """(5xx and read timeouts end the same way, after the client's retries: tried by
    hand, too slow for the suite.)"""
    _manifests(ws, "alpha")
    run_id = api.create_run(BODY).id
    emu.configure(garbage_rate=1.0)
    _one_line_error(dfr("import", "alpha", run_id, "manifests"))
    assert not ws.state.exists() or ws.run_ids() == {}
    emu.configure(garbage_rate=0.0)
    assert dfr("import", "alpha", run_id, "manifests").code == 0


def test_import_of_a_run_of_another_spec_is_refused_then_forced_shows_a_replace(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha")
    run_id = api.create_run({"spec_id": REVIEWS, "number_of_samples": 40}).id
    refused = dfr("import", "alpha", run_id, "manifests")
    _one_line_error(refused)
    assert "spec_id" in refused.err and REVIEWS in refused.err
    assert dfr("import", "--force", "alpha", run_id, "manifests").code == 0
    plan = dfr("plan", "--detailed-exitcode", "manifests")
    assert plan.code == 2 and "alpha must be replaced" in plan.out and REVIEWS in plan.out
    assert "Plan: 0 to create, 1 to replace, 0 orphaned." in plan.out


def test_import_and_state_edits_wait_for_or_refuse_a_held_lock(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    _manifests(ws, "alpha", "beta")
    run_id = api.create_run(BODY).id
    assert dfr("import", "beta", run_id, "manifests").code == 0
    before = ws.state.read_bytes()
    with LocalBackend(ws.state).lock("apply"):
        for command in (
            ("import", "alpha", run_id, "manifests"),
            ("state", "rm", "beta"),
            ("state", "mv", "beta", "gamma"),
            ("refresh",),
        ):
            result = dfr(*command)
            _one_line_error(result)
            assert "is locked by pid" in result.err, command
        # Reading needs no lock.
        assert dfr("state", "list").code == 0 and dfr("status").code == 0
    assert ws.state.read_bytes() == before


# -- dfr refresh ------------------------------------------------------------------------


def _submitted(ws: Workspace, dfr: Runner, emu: Emulator, *names: str) -> dict[str, str]:
    """Runs held PENDING for `names`; name -> run id."""
    emu.configure(**SLOW)
    _manifests(ws, *names)
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    return {name: str(run_id) for name, run_id in ws.run_ids().items()}


def test_refresh_with_a_nonsense_count_for_one_run_still_records_the_others(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha", "beta")
    _rewrite_runs(
        emu,
        lambda run: (
            {**run, "samples_completed": -5, "samples_failed": -1}
            if run["id"] == ids["alpha"]
            else {**run, "status": "SUCCEEDED", "samples_completed": 40, "total_cost": 1.5}
        ),
    )
    result = dfr("refresh")
    assert result.code == 0, result.text
    assert ws.record("beta")["status"] == "SUCCEEDED"
    alpha = ws.record("alpha")
    assert (alpha["samples_completed"], alpha["samples_failed"]) == (None, None)


@pytest.mark.parametrize(
    "change",
    [
        {"status": "QUEUED\x1b[31m\n::error::x"},
        {"status": 5},
        {"status": None, "samples_completed": "lots", "total_cost": "NaN"},
        {"created_at": "yesterday", "completed_at": 7, "spec_version": "three"},
        {"spec_version": -1, "total_cost": -2.5, "samples_completed": 10**30},
    ],
)
def test_refresh_of_odd_answers_records_what_it_can_on_one_line(
    ws: Workspace, dfr: Runner, emu: Emulator, change: dict[str, Any]
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha")
    _rewrite_runs(emu, lambda run: {**run, **change})
    result = dfr("refresh")
    assert result.code == 0, result.text
    assert all(line.isprintable() for line in result.text.splitlines())
    status = dfr("status")
    assert status.code == 0 and ids["alpha"] in status.out
    assert not any(line.startswith("::") for line in status.out.splitlines())
    assert ws.run_ids() == ids


def test_refresh_of_answers_with_only_an_id_changes_nothing(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha", "beta")
    before = ws.state_doc()["runs"]
    _rewrite_runs(emu, lambda run: {"id": run["id"]})
    assert dfr("refresh").code == 0
    assert ws.state_doc()["runs"] == before and ws.run_ids() == ids


def test_refresh_warns_when_the_api_reports_another_spec_for_a_run(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha", "beta")
    _rewrite_runs(
        emu, lambda run: {**run, "spec_id": REVIEWS} if run["id"] == ids["alpha"] else run
    )
    result = dfr("refresh")
    assert result.code == 0, result.text
    (warning,) = result.lines("warning: alpha:")
    assert ids["alpha"] in warning and REVIEWS in warning and "dfr apply --replace alpha" in warning
    assert "beta" not in result.err


def test_a_run_recorded_under_two_names_is_shown_by_refresh_and_status(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """A hand-edited state (or one from an older dfr) gives one run two names: the
    second manifest has no run of its own, and plan would say nothing."""
    ids = _submitted(ws, dfr, emu, "alpha", "beta")
    with LocalBackend(ws.state).lock("test") as store:
        store.put(store.state.runs["beta"].evolve(run_id=ids["alpha"].upper()))
    result = dfr("refresh")
    assert result.code == 0, result.text
    (warning,) = result.lines("warning: run ")
    assert ids["alpha"] in warning and "'alpha' and 'beta'" in warning
    status = dfr("status")
    assert any("'alpha' and 'beta'" in line for line in status.out.splitlines())


def test_refresh_through_the_api_limit_records_every_run(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """Runs the list leaves out are read one by one, at 1 request a second: 429s."""
    _submitted(ws, dfr, emu, "alpha", "beta")
    emu.rewrite("runs.list", lambda runs: [])
    emu.rewrite("runs.get", lambda run: {**run, "status": "SUCCEEDED"})
    emu.configure(rate_limit=1.0)
    result = dfr("refresh")
    assert result.code == 0, result.text
    assert {r["status"] for r in ws.state_doc()["runs"].values()} == {"SUCCEEDED"}
    assert emu.stats()["responses"].get("429", 0) >= 1


@pytest.mark.parametrize("where", ["folder", "dangling-link", "link"])
def test_refresh_with_state_at_a_folder_or_a_link(
    ws: Workspace, dfr: Runner, emu: Emulator, where: str
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha")
    path = ws.root / where
    if where == "folder":
        path.mkdir()
    else:
        path.symlink_to(ws.state if where == "link" else ws.root / "nowhere.json")
    _rewrite_runs(emu, lambda run: {**run, "status": "SUCCEEDED"})
    result = dfr("refresh", state=path)
    if where == "folder":
        _one_line_error(result)
        assert "Is a directory" in result.err
        return
    assert result.code == 0, result.text
    assert path.is_symlink()  # written through the link, not over it
    if where == "link":
        assert ws.record("alpha")["status"] == "SUCCEEDED" and ws.run_ids() == ids


# -- dfr state list|show|rm|mv and dfr status -------------------------------------------

ODD_NAMES = ["é", "../x", "", "spec/", "run/", "a" * 64, "-", "ALPHA", "alpha\n", "\x1b[31m", "a/b"]


def _odd_names_change_nothing(dfr: Runner, before: Callable[[], Any], *state: str) -> None:
    """show, rm and mv with each odd name: exit 1, one line, the name as typed, nothing
    changed (on a file or a database: `state` is the flags that name it)."""
    start = before()
    for name in ODD_NAMES:
        for command in (("show", name), ("rm", name), ("mv", "alpha", name), ("mv", name, "x")):
            result = dfr("state", *command[:1], *state, "--", *command[1:])
            _one_line_error(result)
            assert all(line.isprintable() for line in result.err.splitlines())
        assert before() == start
    assert dfr("state", "mv", *state, "alpha", "a" * 63).code == 0
    assert dfr("state", "mv", *state, "run/" + "a" * 63, "run/alpha").code == 0
    assert before() == start


def test_odd_names_in_state_commands_on_a_file(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    _submitted(ws, dfr, emu, "alpha")
    _odd_names_change_nothing(dfr, ws.run_ids)


def test_odd_names_in_state_commands_on_postgresql(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    from pg_server import database_url, drop_workspace

    url = database_url()
    where = ("--backend", url, "--workspace", f"hostile-{os.getpid()}-{id(ws)}")
    try:
        _manifests(ws, "alpha")
        emu.configure(**SLOW)
        assert dfr(*apply_args("--no-wait", *where, "manifests"), state=None).code == 0

        def run_ids() -> list[str]:
            listed = dfr("state", "list", "--json", *where, state=None)
            return [f"{r['name']}={r['run_id']}" for r in json.loads(listed.out)]

        assert len(run_ids()) == 1
        _odd_names_change_nothing(lambda *a: dfr(*a, state=None), run_ids, *where)
    finally:
        drop_workspace(url, where[3])


def test_state_mv_quotes_a_new_name_as_typed(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    _submitted(ws, dfr, emu, "alpha")
    for typed in ("run/", "run/run/alpha", "run/ALPHA"):
        result = dfr("state", "mv", "alpha", typed)
        _one_line_error(result)
        assert f"{typed!r} is not a valid manifest name" in result.err


def test_state_rm_and_mv_write_an_odd_run_id_on_one_line(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """A run id that a hand edit (or an older dfr) left with a newline in it."""
    _submitted(ws, dfr, emu, "alpha", "beta")
    with LocalBackend(ws.state).lock("test") as store:
        for name in ("alpha", "beta"):
            store.put(store.state.runs[name].evolve(run_id=f"{name}\n::error::x\x1b[2J"))
    for command in (("state", "mv", "alpha", "gamma"), ("state", "rm", "beta")):
        result = dfr(*command)
        assert result.code == 0, result.text
        assert len(result.out.splitlines()) == 1, result.out
        assert "\x1b" not in result.text and "\n::" not in result.text


def test_damaged_state_is_named_with_its_backup_by_every_state_command(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    _submitted(ws, dfr, emu, "alpha")
    _manifests(ws, "beta")
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0  # a backup now exists
    ws.state.write_bytes(b'{"format_version": 1, "runs": {"alpha": ')
    backup = "a backup of the previous version is at "
    for command in (
        ("state", "mv", "alpha", "gamma"),
        ("state", "rm", "alpha"),
        ("state", "show", "alpha"),
        ("state", "list", "--json"),
        ("status", "--json"),
        ("refresh",),
        ("import", "alpha", "x", "manifests"),
    ):
        result = dfr(*command)
        _one_line_error(result)
        assert backup in result.err and result.err.endswith("dfr.state.json.backup\n"), command
    assert ws.state.read_bytes() == b'{"format_version": 1, "runs": {"alpha": '


@pytest.mark.parametrize("selector", ["=x", "=", "team", ""])
def test_status_refuses_a_label_selector_without_a_key(
    ws: Workspace, dfr: Runner, emu: Emulator, selector: str
) -> None:
    _submitted(ws, dfr, emu, "alpha")
    for extra in ((), ("--json",)):
        result = dfr("status", *extra, "-l", selector)
        assert result.code == 1 and result.out == "", result.text
        assert "KEY=VALUE" in result.err


def test_status_label_selectors_match_values_with_equals_signs_and_empty_ones(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    emu.configure(**SLOW)
    ws.write("alpha", labels={"team": "a=b", "x": ""}, number_of_samples=40)
    ws.write("beta", labels={"team": "a"}, number_of_samples=40)
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    for selectors, names in (
        (("team=a=b",), ["alpha"]),
        (("x=",), ["alpha"]),
        (("team=a",), ["beta"]),
        (("team=a", "x="), []),
        (("é=é",), []),
    ):
        args = [arg for s in selectors for arg in ("-l", s)]
        result = dfr("status", "--json", *args)
        assert result.code == 0, result.text
        assert [r["name"] for r in json.loads(result.out)["runs"]] == names, selectors


def test_state_list_writes_a_hand_edited_name_on_one_line(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    ids = _submitted(ws, dfr, emu, "alpha")
    document = json.loads(ws.state.read_text())
    document["runs"]["a\nb\x1b[2J"] = {**document["runs"].pop("alpha"), "name": "a\nb\x1b[2J"}
    ws.state.write_text(json.dumps(document))
    for command in (("state", "list"), ("status",)):
        result = dfr(*command)
        assert result.code == 0, result.text
        assert "\x1b" not in result.out
        (row,) = [line for line in result.out.splitlines() if ids["alpha"] in line]
        assert row.startswith("a\\nb\\x1b[2J"), row


def test_import_from_another_api_than_the_states_is_refused(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    """Recorded, it left a state of two APIs, which refresh refused against either."""
    from support.emulators import emulator

    ids = _submitted(ws, dfr, emu, "alpha")
    _manifests(ws, "beta")
    with emulator(**SLOW) as staging, DataframerClient(staging.base_url, KEY) as other:
        run_id = other.create_run(BODY).id
        result = dfr("import", "beta", run_id, "manifests", "--api-url", staging.base_url)
        _one_line_error(result)
        assert emu.base_url in result.err and "--switch-api" in result.err
    assert ws.run_ids() == ids
    assert dfr("refresh").code == 0


def test_state_rm_of_an_unconfirmed_submission_is_refused_unless_forced(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    """Forgotten, the run the lost answer's POST made was recorded nowhere: the next
    apply paid for a second one."""
    _manifests(ws, "alpha", "beta")
    _unconfirmed(ws)
    made = api.create_run(BODY).id
    before = ws.state.read_bytes()
    refused = dfr("state", "rm", "alpha")
    _one_line_error(refused)
    assert "unconfirmed" in refused.err and "dfr refresh" in refused.err
    assert ws.state.read_bytes() == before
    # refresh finds the run: then rm is an ordinary forget.
    assert dfr("refresh").code == 0 and ws.run_ids() == {"alpha": made}
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    assert len(emu.runs()) == 2
    # --force forgets an unconfirmed submission all the same.
    _unconfirmed(ws, "beta")
    forced = dfr("state", "rm", "--force", "beta")
    assert forced.code == 0 and "unconfirmed" in forced.err
    assert "beta" not in ws.run_ids()


def test_import_for_a_spec_manifests_name_or_run_prefix(
    ws: Workspace, dfr: Runner, emu: Emulator, api: DataframerClient
) -> None:
    from test_spec_apply import write_spec

    write_spec(ws, name="tickets")
    _manifests(ws, "alpha")
    run_id = api.create_run(BODY).id
    result = dfr("import", "tickets", run_id, "manifests")
    _one_line_error(result)
    assert "'tickets' is a Spec manifest" in result.err
    assert "dfr import spec tickets SPEC_ID" in result.err
    # run/NAME is NAME, as in the state commands.
    assert dfr("import", "run/alpha", run_id, "manifests").code == 0
    assert ws.run_ids() == {"alpha": run_id}


def _status_on_a_terminal(ws: Workspace) -> Result:
    """`dfr status` as a process whose stdout is a terminal (the rich table)."""
    env = {**ws.env(), "TERM": "xterm"}
    return dfr_process("status", env=env, cwd=ws.root, tty=True, tty_stdout=True)


def test_status_on_a_terminal_shows_brackets_in_a_run_id_as_they_are(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """The rich table read `[/x]` as markup: a traceback (and `[bold]` restyled text)."""
    _submitted(ws, dfr, emu, "alpha", "beta")
    with LocalBackend(ws.state).lock("test") as store:
        store.put(store.state.runs["alpha"].evolve(run_id="[/x]"))
        store.put(store.state.runs["beta"].evolve(run_id="[bold]b[/bold]", status="[red]Q"))
    result = _status_on_a_terminal(ws)
    assert result.code == 0, result.text
    assert "Traceback" not in result.text
    assert "[/x]" in result.out and "[bold]b[/bold]" in result.out and "[red]Q" in result.out
