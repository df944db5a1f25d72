"""What the GitHub Actions recipe promises beyond its jobs' runs: which events apply,
the concurrency groups, where each secret goes, the install, the paths filter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from recipe_forge import Forge
from recipe_harness import GitHubEvent, Machine, load, run_github_job
from recipe_support import CI, MakeProject

RECIPE = CI / "github-actions.yml"


def _doc() -> dict[Any, Any]:
    return load(RECIPE)


def _steps(job: str) -> list[dict[str, Any]]:
    return list(_doc()["jobs"][job]["steps"])


@pytest.mark.parametrize(
    ("event", "ref", "runs"),
    [
        ("push", "refs/heads/main", True),
        ("schedule", "refs/heads/main", True),
        ("workflow_dispatch", "refs/heads/main", True),
        # "Run workflow" on another branch would apply unreviewed manifests.
        ("workflow_dispatch", "refs/heads/feature", False),
        ("pull_request", "refs/pull/3/merge", False),
    ],
)
def test_apply_runs_for_main_only(
    event: str,
    ref: str,
    runs: bool,
    project: MakeProject,
    forge: Forge,
    machine: Machine,
    tmp_path: Path,
) -> None:
    proj = project("github-actions.yml")
    forge.token("t-read", "read")
    if runs:
        # Only whether the job starts: a job that cannot fetch stops at its checkout.
        forge.revoke("forge-admin-token")
    result = run_github_job(
        RECIPE,
        "apply",
        event=GitHubEvent(name=event, sha=proj.sha, ref=ref),
        forge_url=forge.url,
        repository=proj.path,
        token="not-a-token",
        workspace=tmp_path / "w",
        machine=machine,
    )
    assert result.ran is runs
    if runs:
        assert result.steps[0].outcome == "failure"  # the checkout: the token is no good


def test_every_job_that_writes_state_is_one_concurrency_group_that_applies_too() -> None:
    # GitHub keeps one pending job per group and cancels it when a newer one arrives.
    # The hourly run used to refresh only, so it could swallow a pending apply; now
    # every job of the group refreshes and applies main as it then is.
    doc = _doc()
    apply = doc["jobs"]["apply"]
    assert apply["concurrency"] == {"group": "dfr-state", "cancel-in-progress": False}
    groups = [
        job.get("concurrency", {}).get("group")
        for name, job in doc["jobs"].items()
        if name != "plan"
    ]
    assert groups == ["dfr-state"]
    run = next(s for s in _steps("apply") if s.get("id") == "apply")["run"]
    assert "dfr refresh" in run and "dfr apply --auto-approve" in run
    assert "github.event_name" not in str([s.get("if") for s in _steps("apply")])
    plan = doc["jobs"]["plan"]["concurrency"]
    assert plan["cancel-in-progress"] is True and "pull_request.number" in plan["group"]


def test_dfr_is_installed_pinned_before_any_secret_and_each_secret_goes_to_its_steps() -> None:
    doc = _doc()
    assert "secrets." not in str(doc.get("env")), "a workflow-level secret reaches every step"
    version = doc["env"]["DFR_VERSION"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    expected = {
        "DATAFRAMER_API_KEY": {"Refresh and apply"},
        "DFR_PGPASSWORD": {"Plan", "Refresh and apply", "Status"},
    }
    for job_name, job in doc["jobs"].items():
        assert "secrets." not in str(job.get("env")), job_name
        steps = job["steps"]
        install = next(i for i, s in enumerate(steps) if "pip install" in s.get("run", ""))
        assert '"dataframer-reconciler[postgres]==${DFR_VERSION}"' in steps[install]["run"]
        for i, step in enumerate(steps):
            text = str(step.get("env", {})) + str(step.get("with", {}))
            used = set(re.findall(r"secrets\.(\w+)", text))
            if "github.token" in text:
                used.add("github.token")
            if i <= install:
                assert not used, f"{job_name}: {step.get('name')} runs before or with the install"
            for secret in used - {"github.token"}:
                assert step["name"] in expected[secret], (secret, step["name"])
            if "github.token" in used:
                # The job token: only to the steps that talk to the forge.
                assert re.search(r"state branch|Comment", step["name"]), step["name"]
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_the_paths_filter_includes_dfr_yaml() -> None:
    # A policy change in dfr.yaml is a change: it must plan on PRs and apply on main.
    triggers = _doc()[True]  # PyYAML (YAML 1.1) reads the key `on` as True
    for event in ("pull_request", "push"):
        assert set(triggers[event]["paths"]) == {"dataframer/**", "dfr.yaml"}
    assert {"pull_request", "push", "schedule", "workflow_dispatch"} == set(triggers)
