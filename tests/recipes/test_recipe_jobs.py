"""The recipes' jobs under the failures a runner meets, on GitHub's recipe and GitLab's.

Issue 14: run step by step (real git, a forge over HTTP, the emulator as the API),
the old recipes took a failed state fetch for "no state yet" and paid for every run
again, lost run ids when the state push failed (GitLab even stayed green), let two
jobs race on the state branch, broke in a reused workspace, and split the state
between dfr.yaml's database and CI's branch. Each test here is one of those
situations, run on the recipe a user copies. Every job's log is checked for the API
key, the tokens and the database password (recipe_ci).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from recipe_ci import CI, GitHubCI, GitLabCI
from recipe_forge import Forge
from recipe_harness import JobResult, Machine
from recipe_support import UUID, MakeProject, runs_created

from dfr_emulator import SPEC_SUPPORT_TICKETS, Emulator

RUNS = 7  # the run manifests in examples/manifests (and one Spec manifest)


@pytest.fixture(params=["github", "gitlab"])
def ci(
    request: pytest.FixtureRequest,
    project: MakeProject,
    forge: Forge,
    machine: Machine,
    tmp_path: Path,
) -> CI:
    kind = GitHubCI if request.param == "github" else GitLabCI
    root = tmp_path / "runner"
    root.mkdir()
    made = kind(project(kind.recipe), forge, machine, root)
    # A lock held by a job that could not save is waited for this long (default 600 s).
    # 12 s: two jobs racing queue on the lock while the first creates the examples' spec.
    machine.env["DFR_STATE_LOCK_WAIT"] = "12"
    return made


def _ok(result: JobResult) -> None:
    assert result.ran and result.ok, result.log


def _failed(result: JobResult) -> None:
    assert result.ran and not result.ok, result.log


def test_two_jobs_in_a_row_the_second_submits_nothing(ci: CI, emulator: Emulator) -> None:
    _ok(ci.apply())
    assert runs_created(emulator) == RUNS
    state = ci.state()
    assert len(state) == RUNS and all(UUID.fullmatch(i or "") for i in state.values())
    assert ci.project.locked_by() is None
    second = ci.apply(event="schedule")
    _ok(second)
    assert runs_created(emulator) == RUNS
    assert "No changes" in second.log
    assert ci.state() == state


def test_a_state_fetch_that_fails_once_stops_the_job_before_dfr_runs(
    ci: CI, emulator: Emulator
) -> None:
    # Before any state exists, a 502 is not "no state yet": no fresh start.
    failed = ci.apply(arm=lambda: ci.forge.fail("read", 1, 502))
    _failed(failed)
    assert "502" in failed.log and "stopping before dfr runs" in failed.log
    assert runs_created(emulator) == 0 and not ci.branch_exists()
    _ok(ci.apply())
    assert runs_created(emulator) == RUNS
    # With a state, the fetch after a good ls-remote (its 2 requests): stopped too.
    failed = ci.apply(arm=lambda: ci.forge.fail("read", 1, 502, skip=2))
    _failed(failed)
    assert "502" in failed.log
    assert "Refreshed" not in failed.log and "submitted run" not in failed.log
    assert runs_created(emulator) == RUNS and ci.project.locked_by() is None


def test_a_failed_state_push_fails_the_job_prints_the_ids_and_the_next_job_submits_nothing(
    ci: CI, emulator: Emulator
) -> None:
    # An expired token (401) when the job locks the branch: stopped before dfr runs.
    failed = ci.apply(arm=lambda: ci.forge.fail("write", 1, 401))
    _failed(failed)
    assert "cannot lock the state branch" in failed.log and runs_created(emulator) == 0
    # Then one that expires (GitHub) or a 502 (GitLab) after the lock: the state cannot
    # be saved. The job fails, printing every run id it recorded.
    status = 401 if ci.kind == "github" else 502
    failed = ci.apply(arm=lambda: ci.forge.fail("write", 10, status, skip=2))
    _failed(failed)
    assert runs_created(emulator) == RUNS
    ids = [run["id"] for run in emulator.runs()]
    assert all(run_id in failed.log for run_id in ids), failed.log
    assert "could not be saved" in failed.log and "dfr import" in failed.log
    # The branch stays locked, so the next job submits none of them again.
    assert ci.project.locked_by() is not None
    ci.forge.fail("write", 0)
    after = ci.apply()
    _failed(after)
    assert "locked by" in after.log and "Refreshed" not in after.log
    assert runs_created(emulator) == RUNS


def _two_jobs_at_once(ci: CI) -> list[JobResult]:
    """Two apply jobs started together (a barrier arms both); both must succeed."""
    barrier = threading.Barrier(2, timeout=60)
    results: list[JobResult] = []

    def job() -> None:
        results.append(ci.apply(arm=barrier.wait))

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    for result in results:
        _ok(result)
    return results


def test_two_jobs_racing_on_the_state_branch_submit_each_run_once(
    ci: CI, emulator: Emulator
) -> None:
    results = _two_jobs_at_once(ci)
    assert runs_created(emulator) == RUNS
    assert sum("Waiting for the state lock" in r.log for r in results) >= 1 or any(
        "moved meanwhile" in r.log for r in results
    )
    assert len(ci.state()) == RUNS and ci.project.locked_by() is None


def test_a_job_canceled_mid_apply_saves_what_it_recorded_and_the_next_submits_the_rest(
    ci: CI, emulator: Emulator
) -> None:
    # "Cancel workflow" (GitHub: the save step runs, if: always()) or a canceled job or
    # timeout (GitLab: after_script saves, the main script never got there).
    ci.project.commit({"dfr.yaml": _dfr_yaml(emulator, "parallelism: 1\n")})
    emulator.configure(latency=0.3)
    canceled = ci.apply(cancel_when=lambda: runs_created(emulator) >= 2)
    assert canceled.ran and not canceled.ok and "[canceled]" in canceled.log, canceled.log
    paid = runs_created(emulator)
    assert 2 <= paid < RUNS, canceled.log
    # Saved and unlocked after the cancel: every run paid for is in the state, by its
    # id or, when the cancel came between the answer and the record, as a submission
    # the next apply looks up before it submits anything.
    assert ci.project.locked_by() is None, canceled.log
    assert len(ci.state()) >= paid, (ci.state(), canceled.log)
    emulator.configure(latency=0.0)
    _ok(ci.apply())
    assert runs_created(emulator) == RUNS  # the rest, and nothing twice
    assert len(ci.state()) == RUNS


def test_a_reused_workspace_runs_the_next_job_too(ci: CI, emulator: Emulator) -> None:
    # GitLab's fetch strategy and self-hosted runners keep the folder: the checkout
    # cleans it (git clean -ffdx), which leaves the last job's worktree registered.
    _ok(ci.apply(workspace="reused"))
    ci.project.commit({"dataframer/extra.yaml": _manifest("support-tickets-extra")})
    second = ci.apply(workspace="reused")
    _ok(second)
    assert "already checked out" not in second.log and "already registered" not in second.log
    assert runs_created(emulator) == RUNS + 1 and len(ci.state()) == RUNS + 1


def test_without_a_database_variable_a_dfr_yaml_database_is_not_split_from_ci(
    ci: CI, emulator: Emulator
) -> None:
    # The team's dfr.yaml names a database, but CI was not told: the fallback's state
    # file would be a second state. dfr refuses, naming both, before any request.
    ci.project.commit(
        {"dfr.yaml": _dfr_yaml(emulator, "backend: postgresql://dfr@db.invalid/dfr\n")}
    )
    failed = ci.apply()
    _failed(failed)
    assert "DFR_STATE" in failed.log and "postgresql://dfr@db.invalid/dfr" in failed.log
    assert runs_created(emulator) == 0


# -- the plan on the pull or merge request ------------------------------------------------


def test_the_plan_is_one_comment_updated_in_place_naming_its_commit_and_marked_stale(
    ci: CI, emulator: Emulator
) -> None:
    first = ci.project.commit({"dataframer/extra.yaml": _manifest("extra")}, branch="feature")
    _ok(ci.plan(first, 12))
    (comment,) = ci.comments(12)
    assert comment.body.startswith("<!-- dfr-plan -->\n")
    assert f"Plan for commit `{first}`" in comment.body and f"{RUNS + 1} to create" in comment.body
    second = ci.project.commit(
        {"dataframer/extra.yaml": _manifest("extra", samples=20)}, branch="feature"
    )
    _ok(ci.plan(second, 12))
    (comment,) = ci.comments(12)  # the same comment, updated
    assert f"Plan for commit `{second}`" in comment.body and first not in comment.body
    broken = ci.project.commit(
        {"dataframer/extra.yaml": _manifest("extra", samples=0)}, branch="feature"
    )
    failed = ci.plan(broken, 12)
    _failed(failed)
    assert "extra.yaml" in failed.log  # validate's own message, at its place
    (stale,) = ci.comments(12)
    assert stale.id == comment.id and "**Stale:** `dfr validate` failed" in stale.body
    assert f"on commit `{broken}`; the plan below is for commit `{second}`" in stale.body
    assert f"{RUNS + 1} to create" in stale.body  # the last good plan is kept, marked
    assert runs_created(emulator) == 0


@pytest.mark.parametrize("status", [401, 200], ids=["expired-token", "unexpected-payload"])
def test_a_refused_comment_fails_the_plan_job_loudly(
    ci: CI, emulator: Emulator, status: int
) -> None:
    sha = ci.project.commit({"dataframer/extra.yaml": _manifest("extra")}, branch="feature")
    ci.forge.refuse_api(status)
    failed = ci.plan(sha, 12)
    _failed(failed)
    expected = "cannot GET" if status == 401 else "unexpected answer from the API"
    assert expected in failed.log and "Traceback" not in failed.log, failed.log
    assert ci.comments(12) == []


# -- the PostgreSQL backend, the recipes' primary path -----------------------------------


@pytest.fixture
def database(emulator: Emulator) -> Iterator[tuple[str, str, str]]:
    """(URL without password, password, workspace) of the test database, or a skip
    (a failure when DFR_TEST_POSTGRES_REQUIRED is set, as in CI)."""
    url = os.environ.get("DFR_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("DFR_TEST_POSTGRES_REQUIRED"):
            pytest.fail("DFR_TEST_POSTGRES_URL is not set (.ci/postgres.sh prints it)")
        pytest.skip("no PostgreSQL: set DFR_TEST_POSTGRES_URL (see .ci/postgres.sh)")
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    password = str(params.get("password", ""))
    bare = "postgresql://{user}@{host}:{port}/{dbname}".format(
        **{k: params.get(k, "") for k in ("user", "host", "port", "dbname")}
    )
    workspace = f"recipe-{uuid.uuid4().hex[:10]}"
    yield bare, password, workspace
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('dfr_workspaces') IS NOT NULL").fetchone()
        if exists and exists[0]:
            conn.execute("DELETE FROM dfr_runs WHERE workspace = %s", (workspace,))
            conn.execute("DELETE FROM dfr_workspaces WHERE name = %s", (workspace,))
            conn.execute("DELETE FROM dfr_locks WHERE workspace = %s", (workspace,))


def _on_database(ci: CI, emulator: Emulator, database: tuple[str, str, str]) -> tuple[str, str]:
    """Commit a dfr.yaml naming the test database's workspace; its URL and password back."""
    url, password, workspace = database
    ci.project.commit(
        {"dfr.yaml": _dfr_yaml(emulator, f"backend: {url}\nworkspace: {workspace}\n")}
    )
    return url, password


def test_the_database_path_two_jobs_at_once_submit_each_run_once(
    ci: CI, emulator: Emulator, database: tuple[str, str, str]
) -> None:
    url, password = _on_database(ci, emulator, database)
    ci.use_database(url, password)
    _two_jobs_at_once(ci)
    assert runs_created(emulator) == RUNS
    # Nothing on the branch: the database holds the state.
    assert not ci.branch_exists()


def test_the_database_path_refuses_a_variable_that_names_another_database(
    ci: CI, emulator: Emulator, database: tuple[str, str, str]
) -> None:
    url, password = _on_database(ci, emulator, database)
    ci.use_database(url.rsplit("/", 1)[0] + "/another_db", password)
    failed = ci.apply()
    _failed(failed)
    assert "DFR_BACKEND" in failed.log and "dfr.yaml" in failed.log
    assert runs_created(emulator) == 0


# -- helpers ------------------------------------------------------------------------------


def _dfr_yaml(emulator: Emulator, extra: str) -> str:
    return f"api_url: {emulator.base_url}\n{extra}"


def _manifest(name: str, samples: int = 10) -> str:
    return (
        "apiVersion: dataframer.ai/v1\n"
        "kind: GenerationRun\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  spec_id: {SPEC_SUPPORT_TICKETS}\n"
        "  spec_version: 1\n"
        f"  number_of_samples: {samples}\n"
    )
