"""One interface over both recipes, so that each scenario runs on GitHub's and GitLab's.

`GitHubCI` and `GitLabCI` set a repository up as each forge would (tokens, secrets,
variables), run the recipe's jobs through recipe_harness, and check every job's log
for secrets. `arm` is called where a fault is to be injected: just before the state
is touched (GitHub: before the step that locks or reads the state branch; GitLab:
after the checkout, before the script).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from recipe_forge import Comment, Forge
from recipe_harness import (
    GitHubEvent,
    GitLabPipeline,
    JobResult,
    Machine,
    run_github_job,
    run_gitlab_job,
)
from recipe_support import KEY, Project, no_secret_in

Arm = Callable[[], object]


class CI:
    kind: str
    recipe: str

    def __init__(self, project: Project, forge: Forge, machine: Machine, root: Path) -> None:
        self.project, self.forge, self.machine, self.root = project, forge, machine, root
        self.count = 0
        self.lock = threading.Lock()
        self.database: tuple[str, str] | None = None  # (URL without password, password)
        self.extra: dict[str, str] = {}  # more variables (vars on GitHub)

    def _next(self) -> int:
        with self.lock:
            self.count += 1
            return self.count

    def workspace(self, name: str | None, number: int) -> Path:
        return self.root / "work" / (name or f"job-{number}")

    def use_database(self, url: str, password: str) -> None:
        self.database = (url, password)

    def secrets(self) -> tuple[str, ...]:
        return (KEY, *(self.database[1:] if self.database else ()))

    def apply(
        self,
        *,
        workspace: str | None = None,
        arm: Arm | None = None,
        event: str = "push",
        cancel_when: Callable[[], bool] | None = None,
    ) -> JobResult:
        raise NotImplementedError

    def plan(self, sha: str, number: int, *, arm: Arm | None = None) -> JobResult:
        raise NotImplementedError

    def comments(self, number: int) -> list[Comment]:
        raise NotImplementedError

    def expire_tokens(self) -> None:
        """Every token the jobs use stops working."""
        raise NotImplementedError

    def renew_tokens(self) -> None:
        raise NotImplementedError

    def branch_exists(self) -> bool:
        return bool(self.forge.git(self.project.bare, "branch", "--list", "dfr-state").strip())

    def state(self) -> dict[str, str | None]:
        """name -> run id (None: a submission not confirmed yet) of the state on the
        branch, read as dfr reads it (the snapshot and its journal)."""
        if not self.branch_exists():
            return {}
        from reconciler.state.local import LocalBackend

        with tempfile.TemporaryDirectory() as folder:
            archive = subprocess.run(
                ["git", "-C", str(self.project.bare), "archive", "dfr-state"],
                capture_output=True,
                check=True,
                timeout=30,
            ).stdout
            subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True, timeout=30)
            state = LocalBackend(Path(folder) / "dfr.state.json").read()
        return {name: record.run_id for name, record in state.runs.items()}


class GitHubCI(CI):
    kind = "github"
    recipe = "github-actions.yml"
    token = "ghs-job-token-5d2c8a0e"

    def __init__(self, project: Project, forge: Forge, machine: Machine, root: Path) -> None:
        super().__init__(project, forge, machine, root)
        forge.token(self.token, "write")
        self.file = root / "dataframer.yml"
        self.file.write_text(
            forge.git(project.bare, "show", "main:.github/workflows/dataframer.yml")
        )

    def expire_tokens(self) -> None:
        self.forge.revoke(self.token)

    def renew_tokens(self) -> None:
        self.forge.token(self.token, "write")

    def _run(
        self,
        job: str,
        event: GitHubEvent,
        workspace: Path,
        arm: Arm | None,
        state_step: str,
        cancel_when: Callable[[], bool] | None = None,
    ) -> JobResult:
        vars = dict(self.extra)
        secrets = {"DATAFRAMER_API_KEY": KEY}
        if self.database:
            vars["DFR_BACKEND"] = self.database[0]
            secrets["DFR_PGPASSWORD"] = self.database[1]
        armed = [False]

        def before(name: str) -> None:
            # The state step, or the first dfr step in the database's case.
            if arm is not None and not armed[0] and name.startswith(state_step):
                armed[0] = True
                arm()

        result = run_github_job(
            self.file,
            job,
            event=event,
            forge_url=self.forge.url,
            repository=self.project.path,
            token=self.token,
            workspace=workspace,
            machine=self.machine,
            vars=vars,
            secrets=secrets,
            before_step=before,
            cancel_when=cancel_when,
        )
        no_secret_in(result.log, self.token, *self.secrets())
        return result

    def apply(
        self,
        *,
        workspace: str | None = None,
        arm: Arm | None = None,
        event: str = "push",
        cancel_when: Callable[[], bool] | None = None,
    ) -> JobResult:
        n = self._next()
        return self._run(
            "apply",
            GitHubEvent(name=event, sha=self.project.sha, run_id=n),
            self.workspace(workspace, n),
            arm,
            "Refresh and apply" if self.database else "Lock and check out",
            cancel_when,
        )

    def plan(self, sha: str, number: int, *, arm: Arm | None = None) -> JobResult:
        n = self._next()
        return self._run(
            "plan",
            GitHubEvent(
                name="pull_request",
                sha=sha,
                ref=f"refs/pull/{number}/merge",
                pr_number=number,
                run_id=n,
            ),
            self.workspace(None, n),
            arm,
            "Validate" if self.database else "Read the state branch",
        )

    def comments(self, number: int) -> list[Comment]:
        return self.forge.comments(f"github:{self.project.path}#{number}")


class GitLabCI(CI):
    kind = "gitlab"
    recipe = "gitlab-ci.yml"
    job_token = "glcbt-job-token-81f0b2c4"
    push_token = "glpat-push-token-3a9d6e1f"
    note_token = "glpat-note-token-6b20c7d9"

    def __init__(self, project: Project, forge: Forge, machine: Machine, root: Path) -> None:
        super().__init__(project, forge, machine, root)
        forge.token(self.job_token, "read")
        forge.token(self.push_token, "write")
        forge.token(self.note_token, "read")
        self.file = root / "gitlab-ci.yml"
        self.file.write_text(forge.git(project.bare, "show", "main:.gitlab-ci.yml"))
        self.without: set[str] = set()  # File variables the project did not set

    def expire_tokens(self) -> None:
        for token in (self.job_token, self.push_token, self.note_token):
            self.forge.revoke(token)

    def renew_tokens(self) -> None:
        self.forge.token(self.job_token, "read")
        self.forge.token(self.push_token, "write")
        self.forge.token(self.note_token, "read")

    def secrets(self) -> tuple[str, ...]:
        return (*super().secrets(), self.job_token, self.push_token, self.note_token)

    def _run(
        self,
        job: str,
        pipeline: GitLabPipeline,
        workspace: Path,
        arm: Arm | None,
        cancel_when: Callable[[], bool] | None = None,
    ) -> JobResult:
        variables = dict(self.extra)
        files = {
            "DFR_API_KEY_FILE": KEY,
            "DFR_NOTE_TOKEN_FILE": self.note_token,
            "DFR_PUSH_TOKEN_FILE": self.push_token,
        }
        if self.database:
            variables["DFR_BACKEND"] = self.database[0]
            files["DFR_PGPASSWORD_FILE"] = self.database[1]
        files = {k: v for k, v in files.items() if k not in self.without}
        result = run_gitlab_job(
            self.file,
            job,
            pipeline=pipeline,
            forge_url=self.forge.url,
            project_path=self.project.path,
            job_token=self.job_token,
            workspace=workspace,
            machine=self.machine,
            variables=variables,
            file_variables=files,
            before_script_hook=arm,
            cancel_when=cancel_when,
        )
        no_secret_in(result.log, *self.secrets())
        return result

    def apply(
        self,
        *,
        workspace: str | None = None,
        arm: Arm | None = None,
        event: str = "push",
        cancel_when: Callable[[], bool] | None = None,
    ) -> JobResult:
        n = self._next()
        pipeline = GitLabPipeline(source=event, sha=self.project.sha, pipeline_id=n, job_id=n)
        return self._run("apply", pipeline, self.workspace(workspace, n), arm, cancel_when)

    def plan(self, sha: str, number: int, *, arm: Arm | None = None) -> JobResult:
        n = self._next()
        pipeline = GitLabPipeline(
            source="merge_request_event",
            sha=sha,
            branch="feature",
            mr_iid=number,
            pipeline_id=n,
            job_id=n,
        )
        return self._run("plan", pipeline, self.workspace(None, n), arm)

    def comments(self, number: int) -> list[Comment]:
        return self.forge.comments(f"gitlab:7!{number}")
