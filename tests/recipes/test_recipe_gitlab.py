"""What the GitLab CI recipe promises beyond its jobs' runs: which pipelines run which
job, the state saved in the main script (after_script only as a fallback), secrets as
File variables read by the command that needs them, the MR note's token."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from recipe_ci import GitLabCI
from recipe_forge import Forge
from recipe_harness import Machine, gitlab_rules_pass, load
from recipe_support import CI, MakeProject

from dfr_emulator import Emulator

RECIPE = CI / "gitlab-ci.yml"


def _doc() -> dict[str, Any]:
    return load(RECIPE)


@pytest.mark.parametrize(
    ("source", "branch", "jobs"),
    [
        ("push", "main", {"validate", "apply"}),
        ("schedule", "main", {"validate", "apply"}),
        ("web", "main", {"validate", "apply"}),
        ("merge_request_event", None, {"validate", "plan"}),
        # "Run pipeline" on another branch would apply unreviewed manifests.
        ("web", "feature", set()),
        ("push", "feature", set()),
    ],
)
def test_which_pipelines_run_which_jobs(source: str, branch: str | None, jobs: set[str]) -> None:
    variables = {"CI_PIPELINE_SOURCE": source, "CI_DEFAULT_BRANCH": "main"}
    if branch is not None:
        variables["CI_COMMIT_BRANCH"] = branch
    doc = _doc()
    ran = {
        name
        for name, job in doc.items()
        if isinstance(job, dict) and "script" in job and not name.startswith(".")
        if gitlab_rules_pass(job, variables)
    }
    assert ran == jobs


def test_the_state_is_saved_in_the_main_script_and_the_job_fails_if_it_is_not() -> None:
    # after_script's failures are ignored by GitLab (and it has its own 5-minute
    # limit): it is only the fallback for a job canceled before its script saved.
    apply = _doc()["apply"]
    script = "\n".join(str(line) for line in _flatten(apply["script"]))
    assert script.index("dfr apply") < script.index("git -C .dfr-state push")
    assert script.rstrip().endswith('exit "$status"')
    assert "could not be saved" in script and "dfr state list" in script
    after = "\n".join(_flatten(apply["after_script"]))
    assert "git -C .dfr-state push" in after
    assert apply["resource_group"] == "dfr-state"


def test_secrets_are_file_variables_read_by_the_command_that_needs_them() -> None:
    text = RECIPE.read_text()
    # No job reads a secret from a plain variable: the environment holds paths only.
    for name in ("DATAFRAMER_API_KEY", "PGPASSWORD", "DFR_PUSH_TOKEN", "DFR_NOTE_TOKEN"):
        for use in re.findall(rf"\$\{{?{name}\b[^}}]*\}}?", text):
            assert use.startswith(("${DFR_", "$DFR_")) and "_FILE" in use, use
    assert '--api-key-file "$DFR_API_KEY_FILE"' in text
    for name, job in _doc().items():
        if isinstance(job, dict) and "script" in job and not name.startswith("."):
            first = _flatten(job["script"])[0]
            assert first.startswith(
                'python -m pip install -q "dataframer-reconciler[postgres]=='
            ), name


def test_a_missing_note_token_fails_the_plan_job_saying_why(
    project: MakeProject, forge: Forge, machine: Machine, tmp_path: Path, emulator: Emulator
) -> None:
    # A protected variable is invisible to merge-request pipelines: the note used to
    # be skipped in silence.
    ci = GitLabCI(project(GitLabCI.recipe), forge, machine, tmp_path)
    ci.without.add("DFR_NOTE_TOKEN_FILE")
    sha = ci.project.commit({"dataframer/x.yaml": "# nothing\n"}, branch="feature")
    failed = ci.plan(sha, 4)
    assert failed.ran and not failed.ok
    assert "DFR_NOTE_TOKEN_FILE" in failed.log and "not protected" in failed.log
    assert "api scope" in failed.log


def test_without_a_push_token_the_fallback_stops_before_dfr_runs(
    project: MakeProject, forge: Forge, machine: Machine, tmp_path: Path, emulator: Emulator
) -> None:
    ci = GitLabCI(project(GitLabCI.recipe), forge, machine, tmp_path)
    ci.without.add("DFR_PUSH_TOKEN_FILE")
    failed = ci.apply()
    assert failed.ran and not failed.ok and "write_repository" in failed.log
    assert "Refreshed" not in failed.log and emulator.stats()["runs_created"] == 0


def _flatten(items: Any) -> list[str]:
    out: list[str] = []
    for item in items:
        out.extend(_flatten(item) if isinstance(item, list) else [str(item)])
    return out
