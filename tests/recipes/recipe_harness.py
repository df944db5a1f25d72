"""Run the steps of the CI recipes in examples/ci/ as a runner would.

A recipe is read from its YAML and its jobs are carried out, step by step, in a
workspace on this machine:

- GitHub Actions (`run_github_job`): the job's `if:`, then each step's `if:`
  (`success()` unless it says otherwise), `env:` at every level with `${{ }}`
  expressions evaluated (github, env, vars, secrets, steps), each `run:` in
  `bash --noprofile --norc -eo pipefail` (the recipe's `shell: bash`), GITHUB_ENV
  and GITHUB_STEP_SUMMARY files, steps' outcomes. Two `uses:` steps are stood in
  for: actions/checkout (a fetch of the commit over HTTP with the job's token,
  `persist-credentials: false`, `git clean -ffdx` in a reused workspace, as the
  action does) and actions/setup-python (the runner's Python is already on PATH).
- GitLab CI (`run_gitlab_job`): the job's `rules:`, the fetch strategy (a fresh
  clone, or fetch and clean in a reused workspace, the job token in the remote's
  URL), `before_script` + `script` in one `bash` with `set -eo pipefail`,
  `after_script` in another shell whose failure does not count, CI/CD variables
  (File variables become a path to a file holding the value) and the predefined
  CI_* variables.

The forge is `recipe_forge.Forge` (git over HTTP, tokens, faults, comments); the
environment starts empty but for PATH (the runner's Python first), HOME, and what
the test adds for the "machine" (a package index on disk, for instance). Nothing of
the test process's own environment leaks into a job.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STEP_TIMEOUT = 120.0


@dataclass
class Step:
    name: str
    outcome: str  # success | failure | skipped
    output: str = ""
    seconds: float = 0.0


@dataclass
class JobResult:
    ran: bool
    ok: bool
    steps: list[Step] = field(default_factory=list)
    log: str = ""

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


@dataclass
class Machine:
    """What a runner brings: its PATH (the runner's Python first), a home, extra env."""

    path: str
    env: dict[str, str] = field(default_factory=dict)

    def base_env(self, home: Path) -> dict[str, str]:
        home.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": self.path,
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(home),
            # No terminal on a runner: git fails instead of asking for a password.
            "GIT_TERMINAL_PROMPT": "0",
            **self.env,
        }


def load(path: Path) -> dict[Any, Any]:
    """The recipe as YAML 1.1 reads it (as the forges do: `on` is read back by key).

    Keys are strings but GitHub's `on`, which YAML 1.1 reads as the key True."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


#: What a step or script ended with when the runner canceled it.
CANCELED = -15


def _bash(
    script: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    cancel_when: Callable[[], bool] | None = None,
) -> tuple[int, str]:
    """Run `script` as the runner does; a timeout or `cancel_when()` turning true
    cancels it as runners do: SIGTERM to the whole process group, SIGKILL 10 s later."""
    with tempfile.TemporaryFile(mode="w+") as output:
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        canceled = False
        while proc.poll() is None:
            if not canceled and (
                time.monotonic() > deadline or (cancel_when is not None and cancel_when())
            ):
                canceled = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                break
            time.sleep(0.02)
        output.seek(0)
        text = output.read()
    if canceled:
        return CANCELED, text + "\n[canceled]\n"
    return proc.returncode, text


# -- expressions -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*'|\"[^\"]*\")|(?P<op>==|!=|&&|\|\||=~|[!()])"
    r"|(?P<num>\d+(?:\.\d+)?)|(?P<name>\$?[A-Za-z_][A-Za-z0-9_.\-]*(?:\(\))?))"
)


class Expr:
    """A small evaluator for the expressions the recipes use: GitHub's `${{ }}` and
    `if:` (contexts, ==, !=, &&, ||, !, parentheses, always() and friends) and GitLab's
    `rules: if:` ($VARS, string literals, ==, !=, &&, ||). Anything else is an error,
    so a recipe cannot quietly use what the harness does not understand."""

    def __init__(self, text: str, lookup: Callable[[str], Any]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                raise ValueError(f"cannot read the expression {text!r} at {text[pos:]!r}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind)))
            pos = match.end()
        self.lookup = lookup
        self.i = 0

    def value(self) -> Any:
        result = self._or()
        if self.i != len(self.tokens):
            raise ValueError(f"unexpected {self.tokens[self.i][1]!r}")
        return result

    def _peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def _or(self) -> Any:
        left = self._and()
        while self._peek() == "||":
            self.i += 1
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> Any:
        left = self._not()
        while self._peek() == "&&":
            self.i += 1
            right = self._not()
            left = right if truthy(left) else left
        return left

    def _not(self) -> Any:
        if self._peek() == "!":
            self.i += 1
            return not truthy(self._not())
        return self._compare()

    def _compare(self) -> Any:
        left = self._primary()
        if self._peek() in ("==", "!="):
            op = self._peek()
            self.i += 1
            right = self._primary()
            same = loose(left) == loose(right)
            return same if op == "==" else not same
        return left

    def _primary(self) -> Any:
        kind, text = self.tokens[self.i]
        self.i += 1
        if text == "(":
            inner = self._or()
            assert self._peek() == ")", "unbalanced parentheses"
            self.i += 1
            return inner
        if kind == "str":
            return text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1]
        if kind == "num":
            return float(text)
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        return self.lookup(text)


def truthy(value: Any) -> bool:
    return value not in (None, "", False, 0, 0.0)


def loose(value: Any) -> Any:
    """GitHub compares strings case-insensitively, and null like an empty string."""
    if value is None:
        return ""
    return value.lower() if isinstance(value, str) else value


def _dig(data: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- GitHub Actions ----------------------------------------------------------------------


@dataclass
class GitHubEvent:
    """What triggered the job, as the `github` context describes it."""

    name: str  # push | pull_request | schedule | workflow_dispatch
    sha: str
    ref: str = "refs/heads/main"
    pr_number: int | None = None
    run_id: int = 1
    run_attempt: int = 1


def run_github_job(
    recipe: Path,
    job_name: str,
    *,
    event: GitHubEvent,
    forge_url: str,
    repository: str,
    token: str,
    workspace: Path,
    machine: Machine,
    vars: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    before_step: Callable[[str], None] | None = None,
    cancel_when: Callable[[], bool] | None = None,
) -> JobResult:
    """Run one job of a GitHub Actions recipe. `cancel_when`, polled while a step
    runs, cancels the job as "Cancel workflow" does: the running step is stopped
    (SIGTERM), then only steps whose `if:` says always() (or cancelled()) run."""
    doc = load(recipe)
    job = doc["jobs"][job_name]
    home = workspace.parent / f"{workspace.name}-home-{event.run_id}"
    github: dict[str, Any] = {
        "event_name": event.name,
        "sha": event.sha,
        "ref": event.ref,
        "ref_name": event.ref.rsplit("/", 1)[-1],
        "repository": repository,
        "server_url": forge_url,
        "api_url": f"{forge_url}/api/github",
        "run_id": str(event.run_id),
        "run_attempt": str(event.run_attempt),
        "workspace": str(workspace),
        "token": token,
        "event": {},
    }
    if event.pr_number is not None:
        github["event"] = {"pull_request": {"number": event.pr_number, "head": {"sha": event.sha}}}
    contexts: dict[str, Any] = {
        "github": github,
        "vars": dict(vars or {}),
        "secrets": dict(secrets or {}),
        "env": {},
        "steps": {},
    }
    failed = [False]
    canceled = [False]

    def lookup(name: str) -> Any:
        if name.endswith("()"):
            function = name[:-2]
            if function == "always":
                return True
            if function == "success":
                return not failed[0] and not canceled[0]
            if function == "failure":
                return failed[0] and not canceled[0]
            if function == "cancelled":
                return canceled[0]
            raise ValueError(f"function {name} is not known to the harness")
        head, *rest = name.split(".")
        if head not in contexts:
            raise ValueError(f"context {head!r} is not known to the harness")
        return _dig(contexts[head], rest)

    def evaluate(text: str) -> Any:
        return Expr(text, lookup).value()

    def substitute(value: Any) -> str:
        return re.sub(r"\$\{\{(.*?)\}\}", lambda m: _text(evaluate(m.group(1))), _text(value))

    def condition(raw: Any) -> bool:
        if raw is None:
            return not failed[0] and not canceled[0]
        text = str(raw).strip()
        text = text[3:-2] if text.startswith("${{") else text
        if not re.search(r"\b(always|success|failure|cancelled)\(\)", text):
            text = f"success() && ({text})"
        return truthy(evaluate(text))

    if not condition(job.get("if")):
        return JobResult(ran=False, ok=True)

    workflow_env = {k: substitute(v) for k, v in (doc.get("env") or {}).items()}
    contexts["env"] = dict(workflow_env)
    job_env = {k: substitute(v) for k, v in (job.get("env") or {}).items()}
    contexts["env"].update(job_env)
    exported: dict[str, str] = {}
    summary = home / "step_summary.md"
    result = JobResult(ran=True, ok=True)
    log: list[str] = []
    for index, raw_step in enumerate(job["steps"]):
        name = raw_step.get("name") or raw_step.get("uses") or raw_step.get("run", "")
        started = time.monotonic()
        if not condition(raw_step.get("if")):
            outcome, output = "skipped", ""
        else:
            if before_step is not None:
                before_step(name)
            step_env = {k: substitute(v) for k, v in (raw_step.get("env") or {}).items()}
            env_file = home / f"env-{index}"
            env_file.parent.mkdir(parents=True, exist_ok=True)
            env_file.write_text("")
            env = {
                **machine.base_env(home),
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(workspace),
                "GITHUB_EVENT_NAME": event.name,
                "GITHUB_SHA": event.sha,
                "GITHUB_REF": event.ref,
                "GITHUB_REF_NAME": github["ref_name"],
                "GITHUB_REPOSITORY": repository,
                "GITHUB_SERVER_URL": forge_url,
                "GITHUB_API_URL": github["api_url"],
                "GITHUB_RUN_ID": str(event.run_id),
                "GITHUB_RUN_ATTEMPT": str(event.run_attempt),
                "GITHUB_ENV": str(env_file),
                "GITHUB_STEP_SUMMARY": str(summary),
                "RUNNER_TEMP": str(home),
                **workflow_env,
                **job_env,
                **exported,
                **step_env,
            }
            if "uses" in raw_step:
                code, output = _github_action(
                    raw_step, workspace, forge_url, repository, token, event
                )
            else:
                script = substitute(raw_step["run"])
                code, output = _bash(
                    script,
                    cwd=workspace,
                    env=env,
                    timeout=STEP_TIMEOUT,
                    cancel_when=None if canceled[0] else cancel_when,
                )
            for line in env_file.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    exported[key] = value
                    contexts["env"][key] = value
            outcome = "success" if code == 0 else "failure"
            if code == CANCELED:
                outcome = "cancelled"
                canceled[0] = True
                result.ok = False
            elif code != 0:
                failed[0] = True
                result.ok = False
        if "id" in raw_step:
            contexts["steps"][raw_step["id"]] = {"outcome": outcome, "conclusion": outcome}
        result.steps.append(Step(name, outcome, output, time.monotonic() - started))
        log.append(f"##[step] {name}: {outcome}\n{output}")
    result.log = "\n".join(log)
    return result


def _github_action(
    step: Mapping[str, Any],
    workspace: Path,
    forge_url: str,
    repository: str,
    token: str,
    event: GitHubEvent,
) -> tuple[int, str]:
    uses = str(step["uses"])
    if uses.startswith("actions/setup-python@"):
        return 0, "(the runner's Python is on PATH)\n"
    if not uses.startswith("actions/checkout@"):
        raise ValueError(f"the harness cannot stand in for {uses}")
    persist = (step.get("with") or {}).get("persist-credentials", True)
    header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    auth = ["-c", f"http.extraheader=AUTHORIZATION: basic {header}"]
    url = f"{forge_url}/{repository}"
    env = {"PATH": os.environ["PATH"], "HOME": str(workspace.parent), "GIT_TERMINAL_PROMPT": "0"}
    try:
        if (workspace / ".git").exists():
            # A reused workspace: what actions/checkout does with clean: true.
            git("clean", "-ffdx", cwd=workspace, env=env)
            git("reset", "--hard", "HEAD", cwd=workspace, env=env)
        else:
            workspace.mkdir(parents=True, exist_ok=True)
            git("init", "-q", cwd=workspace, env=env)
            git("remote", "add", "origin", url, cwd=workspace, env=env)
        git(
            *auth,
            "fetch",
            "-q",
            "--no-tags",
            "--depth=1",
            "origin",
            event.sha,
            cwd=workspace,
            env=env,
        )
        if event.name == "pull_request":
            git("checkout", "-q", "--force", "--detach", event.sha, cwd=workspace, env=env)
        else:
            branch = event.ref.rsplit("/", 1)[-1]
            git("checkout", "-q", "--force", "-B", branch, event.sha, cwd=workspace, env=env)
        if persist:
            # The action's default: the token stays in .git/config for every later step.
            git(
                "config",
                "--local",
                auth[1].split("=", 1)[0],
                auth[1].split("=", 1)[1],
                cwd=workspace,
                env=env,
            )
    except RuntimeError as exc:
        return 1, str(exc)
    return 0, f"checked out {event.sha}\n"


# -- GitLab CI ---------------------------------------------------------------------------


@dataclass
class GitLabPipeline:
    """What started the pipeline, as the predefined CI_* variables describe it."""

    source: str  # push | schedule | web | merge_request_event
    sha: str
    branch: str = "main"
    mr_iid: int | None = None
    pipeline_id: int = 1
    job_id: int = 1


def gitlab_rules_pass(job: Mapping[str, Any], variables: Mapping[str, str]) -> bool:
    """The first matching rule decides (`when: never` excludes); `changes:` counts as
    met. No rules: the job runs."""
    rules = job.get("rules")
    if rules is None:
        return True

    def lookup(name: str) -> Any:
        if not name.startswith("$"):
            raise ValueError(f"{name!r} in a GitLab rule is not a variable")
        return variables.get(name[1:])

    for rule in rules:
        if "if" in rule and not truthy(Expr(rule["if"], lookup).value()):
            continue
        when: str = rule.get("when", "on_success")
        return when != "never"
    return False


def _flatten(items: Any) -> list[str]:
    out: list[str] = []
    for item in items or []:
        if isinstance(item, list):
            out.extend(_flatten(item))
        else:
            out.append(str(item))
    return out


def run_gitlab_job(
    recipe: Path,
    job_name: str,
    *,
    pipeline: GitLabPipeline,
    forge_url: str,
    project_path: str,
    job_token: str,
    workspace: Path,
    machine: Machine,
    variables: Mapping[str, str] | None = None,
    file_variables: Mapping[str, str] | None = None,
    before_script_hook: Callable[[], object] | None = None,
    cancel_when: Callable[[], bool] | None = None,
) -> JobResult:
    """Run one job of a GitLab CI recipe. `cancel_when`, polled while the script
    runs, cancels the job: the script gets SIGTERM, then after_script runs (as GitLab
    17 does for a canceled job) and its result does not count."""
    doc = load(recipe)
    job = doc[job_name]
    host_port = forge_url.split("://", 1)[1]
    home = workspace.parent / f"{workspace.name}-home-{pipeline.job_id}"
    ci: dict[str, str] = {
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(workspace),
        "CI_PROJECT_PATH": project_path,
        "CI_PROJECT_ID": "7",
        "CI_SERVER_URL": forge_url,
        "CI_SERVER_HOST": host_port.split(":")[0],
        "CI_SERVER_PORT": host_port.split(":")[1],
        "CI_SERVER_PROTOCOL": "http",
        "CI_API_V4_URL": f"{forge_url}/api/v4",
        "CI_JOB_TOKEN": job_token,
        "CI_REPOSITORY_URL": f"http://gitlab-ci-token:{job_token}@{host_port}/{project_path}.git",
        "CI_COMMIT_SHA": pipeline.sha,
        "CI_COMMIT_SHORT_SHA": pipeline.sha[:8],
        "CI_COMMIT_REF_NAME": pipeline.branch,
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_SOURCE": pipeline.source,
        "CI_PIPELINE_ID": str(pipeline.pipeline_id),
        "CI_JOB_ID": str(pipeline.job_id),
        "CI_JOB_URL": f"{forge_url}/{project_path}/-/jobs/{pipeline.job_id}",
        "CI_JOB_NAME": job_name,
    }
    if pipeline.mr_iid is not None:
        ci["CI_MERGE_REQUEST_IID"] = str(pipeline.mr_iid)
    else:
        ci["CI_COMMIT_BRANCH"] = pipeline.branch
    project_vars = dict(variables or {})
    files_dir = home / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    for name, value in (file_variables or {}).items():
        path = files_dir / name
        path.write_text(value)
        path.chmod(0o600)
        project_vars[name] = str(path)
    yaml_vars = {k: str(v) for k, v in (doc.get("variables") or {}).items()}
    yaml_vars.update({k: str(v) for k, v in (job.get("variables") or {}).items()})
    variables_all = {**yaml_vars, **project_vars, **ci}
    if not gitlab_rules_pass(job, variables_all):
        return JobResult(ran=False, ok=True)
    code, output = _gitlab_checkout(workspace, ci["CI_REPOSITORY_URL"], pipeline.sha)
    log = [f"$ (fetch) {output}"]
    result = JobResult(ran=True, ok=code == 0)
    result.steps.append(Step("checkout", "success" if code == 0 else "failure", output))
    if code != 0:
        result.log = "\n".join(log)
        return result
    if before_script_hook is not None:
        before_script_hook()
    env = {**machine.base_env(home), **variables_all}
    default = doc.get("default") or {}
    before = job.get("before_script", default.get("before_script"))
    script = "\n".join(_flatten(before) + _flatten(job["script"]))
    code, output = _bash(
        script, cwd=workspace, env=env, timeout=STEP_TIMEOUT, cancel_when=cancel_when
    )
    result.ok = code == 0
    outcome = "success" if code == 0 else "cancelled" if code == CANCELED else "failure"
    result.steps.append(Step("script", outcome, output))
    log.append(output)
    after = _flatten(job.get("after_script", default.get("after_script")))
    if after:
        env["CI_JOB_STATUS"] = {"success": "success", "cancelled": "canceled"}.get(
            outcome, "failed"
        )
        after_code, after_output = _bash("\n".join(after), cwd=workspace, env=env, timeout=300)
        # GitLab ignores after_script's exit status: it never changes the job's.
        result.steps.append(
            Step("after_script", "success" if after_code == 0 else "failure", after_output)
        )
        log.append(after_output)
    result.log = "\n".join(log)
    return result


def _gitlab_checkout(workspace: Path, url: str, sha: str) -> tuple[int, str]:
    env = {"PATH": os.environ["PATH"], "HOME": str(workspace.parent), "GIT_TERMINAL_PROMPT": "0"}
    try:
        if (workspace / ".git").exists():
            # GIT_STRATEGY: fetch (GitLab's default) in a reused build folder.
            git("remote", "set-url", "origin", url, cwd=workspace, env=env)
            git("clean", "-ffdx", cwd=workspace, env=env)
            git("reset", "--hard", "-q", cwd=workspace, env=env)
        else:
            workspace.mkdir(parents=True, exist_ok=True)
            git("init", "-q", cwd=workspace, env=env)
            git("remote", "add", "origin", url, cwd=workspace, env=env)
        git("fetch", "-q", "--no-tags", "--depth=20", "origin", sha, cwd=workspace, env=env)
        git("checkout", "-q", "--force", "--detach", sha, cwd=workspace, env=env)
    except RuntimeError as exc:
        return 1, str(exc).replace(url, "<repository url>")
    return 0, f"checked out {sha}\n"


def scripts(recipe: Path) -> list[tuple[str, str]]:
    """Every shell script of a recipe, (where, text), for shellcheck: GitHub `run:`
    steps (expressions replaced by a placeholder), GitLab jobs' before_script, script
    and after_script joined as the runner joins them."""
    doc = load(recipe)
    found: list[tuple[str, str]] = []
    if "jobs" in doc:
        for job_name, job in doc["jobs"].items():
            for i, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    text = re.sub(r"\$\{\{.*?\}\}", "PLACEHOLDER", step["run"])
                    found.append((f"{job_name}.steps[{i}]", text))
        return found
    default = doc.get("default") or {}
    for job_name, job in doc.items():
        if job_name.startswith(".") or not isinstance(job, dict) or "script" not in job:
            continue
        before = job.get("before_script", default.get("before_script"))
        found.append((job_name, "\n".join(_flatten(before) + _flatten(job["script"]))))
        if job.get("after_script"):
            found.append((f"{job_name}.after_script", "\n".join(_flatten(job["after_script"]))))
    return found
