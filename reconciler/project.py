"""The project file `dfr.yaml`: finding it, reading it, validating it.

Where it is found, first match wins:

1. `--config FILE` on the command line;
2. the environment variable `DFR_CONFIG`;
3. `dfr.yaml` in the current directory or the nearest parent, up to and including
   the root of the git repository the current directory is in. Outside a git
   repository only the current directory is looked at, so a stray `dfr.yaml`
   in a shared parent (a home or /tmp) never leaks into an unrelated project.

No file is no project: every setting keeps its built-in default and there is no
policy. The file is read with the same strict YAML 1.2 reader as manifests and
validated by `schemas/project.schema.json`; every problem is a located
diagnostic (`dfr.yaml:LINE:COL: error: ...`). Relative paths in it are relative
to its own directory and are handed out relative to the current directory.

`extra_models` lists models a user allows beyond this release's list (a model
the service added after it): the manifests' validator and the validation
cache's key take them in (`reconciler.validate`), and `policy.allowed_models`
may name them.

Precedence (applied by the commands): a command-line flag, then its environment
variable, then this file, then the built-in default.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError, ValidationFailed
from reconciler.policy import DocumentCheck, Policy, manifest_checks
from reconciler.yamlsafe import (
    MAX_FILE_BYTES,
    Document,
    YAMLProblem,
    decode,
    key_node_of,
    locate,
    parse_documents,
    position,
)

PROJECT_FILE = "dfr.yaml"
SCHEMA_FILE = "project.schema.json"
ENV_CONFIG = "DFR_CONFIG"

#: Keys that would put a secret in a committed file (compared without '-', '_', case).
_SECRET_KEYS = {
    "apikey",
    "dataframerapikey",
    "key",
    "token",
    "apitoken",
    "secret",
    "password",
    "bearer",
    "authorization",
}


@dataclass(frozen=True, slots=True)
class Project:
    """The settings of `dfr.yaml` (all None when there is no file) and its problems."""

    file: str | None = None  # as shown to the user; None: no project file
    manifests: tuple[str, ...] = ()
    state: str | None = None
    backend: str | None = None
    workspace: str | None = None
    api_url: str | None = None
    parallelism: int | None = None
    poll_interval: float | None = None
    timeout: float | None = None
    max_rps: float | None = None
    extra_models: tuple[str, ...] = ()
    policy: Policy = field(default_factory=Policy)
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return diag.count_errors(self.diagnostics) == 0

    def root(self) -> Path:
        """The project's root: the folder of dfr.yaml, else the git repository's root,
        else the current folder. Recorded manifest files are relative to it."""
        cwd = Path.cwd()
        if self.file:
            return (cwd / self.file).resolve().parent
        return (git_root(cwd) or cwd).resolve()

    def checks(self) -> list[DocumentCheck]:
        """Per-manifest checks for `validate_paths`: the policy's (none without a policy)."""
        return manifest_checks(self.policy)

    def manifest_paths(self, paths: Sequence[str]) -> tuple[str, ...]:
        """PATH arguments, else the file's `manifests`, else the current directory."""
        return tuple(paths) or self.manifests or (".",)


# -- finding ---------------------------------------------------------------------------


def git_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` that holds `.git` (a folder or a file)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def find(
    explicit: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, str] | None:
    """The project file to read and how to show its name, or None when there is none."""
    env = os.environ if environ is None else environ
    here = Path.cwd() if cwd is None else cwd
    for given, what in ((explicit, "--config"), (env.get(ENV_CONFIG), ENV_CONFIG)):
        if given:
            path = here / given
            if not path.is_file():
                problem = "is a directory" if path.is_dir() else "no such file"
                raise UsageError(f"{what} {given}: {problem}")
            return path, given
    start = here.resolve()
    root = git_root(start)
    folders = [start]
    if root is not None:
        folders += list(start.parents)[: len(start.parents) - len(root.parents)]
    for folder in folders:
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate, _shown(candidate, start)
    return None


def _shown(path: Path, cwd: Path) -> str:
    try:
        return os.path.relpath(path, cwd)
    except ValueError:  # pragma: no cover - another drive (Windows)
        return str(path)


# -- reading ---------------------------------------------------------------------------


@functools.cache
def project_schema() -> dict[str, Any]:
    from reconciler.schema import schema_text

    result: dict[str, Any] = json.loads(schema_text(SCHEMA_FILE))
    return result


@functools.lru_cache(maxsize=8)
def _validator(extra_models: tuple[str, ...] = ()) -> Any:
    """The project file's validator; `policy.allowed_models` may name the file's extra models."""
    from reconciler.schema import make_validator, with_extra_models

    return make_validator(with_extra_models(project_schema(), extra_models))


def _declared_extra_models(value: Mapping[str, Any]) -> tuple[str, ...]:
    """The strings of the file's `extra_models` list, as written (unchecked)."""
    raw = value.get("extra_models")
    if not isinstance(raw, list):
        return ()
    return tuple(dict.fromkeys(m for m in raw if isinstance(m, str)))


def load(path: Path, shown: str, *, cwd: Path | None = None) -> Project:
    """Read and validate one project file; problems become diagnostics, never exceptions."""
    here = Path.cwd() if cwd is None else cwd

    def fail(message: str, line: int = 1, col: int = 1, code: str = "project") -> Project:
        return Project(file=shown, diagnostics=(diag.error(message, shown, line, col, code=code),))

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return fail(f"cannot read the project file: {exc.strerror}", code="io")
    documents: list[Document] = []
    try:
        documents.extend(parse_documents(decode(data)))
    except YAMLProblem as p:
        return fail(p.message, p.line + 1, p.column + 1, p.code)
    if len(documents) > 1:
        return fail(
            "the project file holds more than one YAML document; put every setting in one",
            documents[1].line,
            documents[1].column,
        )
    if not documents or documents[0].value is None:
        return Project(file=shown)  # an empty file: no settings
    doc = documents[0]
    if not isinstance(doc.value, dict):
        return fail(
            "the project file must be a mapping of settings (manifests, state, policy, ...)",
            doc.line,
            doc.column,
        )
    problems = _problems(doc, shown)
    if any(d.is_error for d in problems):
        # The manifests are still checked (by `dfr validate`): with the extra
        # models when that setting itself is fine, so its models are not errors too.
        bad_extra = any(d.path[:1] == ("extra_models",) for d in problems if d.is_error)
        extra = () if bad_extra else _declared_extra_models(doc.value)
        return Project(file=shown, extra_models=extra, diagnostics=tuple(diag.sort(problems)))
    return _settings(doc, shown, _relative_base(path, here), tuple(problems))


def _problems(doc: Document, shown: str) -> list[Diagnostic]:
    from reconciler.schema import problems as schema_problems

    out: list[Diagnostic] = []
    secrets: set[str] = set()
    for key in doc.value:
        if key.replace("_", "").replace("-", "").lower() in _SECRET_KEYS:
            secrets.add(key)
            line, col = position(key_node_of(doc.node, (key,)))
            out.append(
                diag.error(
                    f"{key!r}: the API key never goes in {PROJECT_FILE}, which is committed "
                    "with your manifests; set the environment variable DATAFRAMER_API_KEY "
                    "(in CI, from the CI system's secret store)",
                    shown,
                    line,
                    col,
                    code="project-secret",
                    path=(key,),
                )
            )
    against = _validator(_declared_extra_models(doc.value))
    for problem in schema_problems(doc.value, against):
        if problem.path[:1] and problem.path[0] in secrets:
            continue
        node = (
            key_node_of(doc.node, problem.path)
            if problem.on_key
            else locate(doc.node, problem.path)
        )
        line, col = position(node)
        out.append(
            diag.error(
                _reworded(problem.path, problem.message),
                shown,
                line,
                col,
                code="project",
                path=problem.path,
            )
        )
    if not out:
        out.extend(_cross_field(doc, shown))
    return out


def _reworded(path: tuple[str | int, ...], message: str) -> str:
    """Clearer words for the schema errors that jsonschema words for programmers."""
    generic = (
        "is not valid under any of the given schemas" in message or "does not match" in message
    )
    if not generic:
        return message
    if path in (("poll_interval",), ("timeout",)):
        return (
            f"{path[0]} must be a number of seconds above 0 or a duration like 90s, 15m, 2h "
            "or 1h30m"
        )
    if path == ("backend",):
        return (
            "backend must be a postgresql:// URL without a password (this file is committed: "
            "give the password in PGPASSWORD or ~/.pgpass) or a state file path"
        )
    if path == ("workspace",):
        return (
            "workspace: 1 to 128 letters, digits, '.', '_', '-' or '/', starting with a "
            "letter or digit"
        )
    if path == ("api_url",):
        return (
            "api_url must be a plain http(s) URL like https://df-api.dataframer.ai, without "
            "credentials, query or fragment (the key comes from DATAFRAMER_API_KEY)"
        )
    if path[:1] == ("extra_models",):
        where = "extra_models" + "".join(f"[{step}]" for step in path[1:])
        return (
            f"{where}: a model is written as the API spells it, 1 to 200 characters "
            "without spaces, like acme/new-model-9"
        )
    if path[:2] == ("policy", "required_labels"):
        return (
            "policy.required_labels: a label key is 1 to 63 letters, digits, '-', '_', '.' "
            "or '/', starting and ending with a letter or digit"
        )
    return message


def _cross_field(doc: Document, shown: str) -> list[Diagnostic]:
    return [
        *_known_extra_models(doc, shown),
        *_budget_below_run_limit(doc, shown),
        *_durations(doc, shown),
    ]


def _durations(doc: Document, shown: str) -> list[Diagnostic]:
    """An error for each duration the schema's pattern lets through but dfr refuses (too long)."""
    from reconciler.durations import parse_duration

    out = []
    for key in ("poll_interval", "timeout"):
        try:
            parse_duration(doc.value.get(key), key)
        except UsageError as exc:
            line, col = position(locate(doc.node, (key,)))
            out.append(diag.error(exc.message, shown, line, col, code="project", path=(key,)))
    return out


def _known_extra_models(doc: Document, shown: str) -> list[Diagnostic]:
    """A warning for each extra model this release knows already (it may go)."""
    from reconciler.schema import current_model_set, sdk_version

    current = current_model_set()
    out = []
    for i, model in enumerate(doc.value.get("extra_models") or ()):
        if model in current:
            line, col = position(locate(doc.node, ("extra_models", i)))
            out.append(
                diag.warning(
                    f"extra_models: {model!r} is a model of the current API that this dfr "
                    f"release knows (pydataframer {sdk_version()}); it needs no entry here",
                    shown,
                    line,
                    col,
                    code="project",
                    path=("extra_models", i),
                )
            )
    return out


def _budget_below_run_limit(doc: Document, shown: str) -> list[Diagnostic]:
    policy = doc.value.get("policy") or {}
    per_run = policy.get("max_samples_per_run")
    per_apply = policy.get("max_samples_per_apply")
    if per_run is None or per_apply is None or per_run <= per_apply:
        return []
    line, col = position(key_node_of(doc.node, ("policy", "max_samples_per_run")))
    return [
        diag.warning(
            f"policy.max_samples_per_run ({per_run:,}) is larger than max_samples_per_apply "
            f"({per_apply:,}): a run between the two passes validate but no apply may submit it",
            shown,
            line,
            col,
            code="project",
            path=("policy", "max_samples_per_run"),
        )
    ]


def _relative_base(path: Path, cwd: Path) -> str:
    """The project file's folder as a prefix for its relative paths, seen from `cwd`."""
    return _shown(path.resolve().parent, cwd.resolve())


def _settings(doc: Document, shown: str, base: str, diagnostics: tuple[Diagnostic, ...]) -> Project:
    from reconciler.durations import parse_duration

    value = doc.value

    def rel(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(base, p))

    def seconds(key: str) -> float | None:
        return parse_duration(value.get(key), key)  # _durations() already vetted it

    policy_value = value.get("policy") or {}
    places: dict[str, tuple[int, int]] = {}
    for key in policy_value:
        places[key] = position(key_node_of(doc.node, ("policy", key)))
    models = policy_value.get("allowed_models")
    policy = Policy(
        max_samples_per_run=policy_value.get("max_samples_per_run"),
        max_samples_per_apply=policy_value.get("max_samples_per_apply"),
        allowed_models=tuple(models) if models is not None else None,
        required_labels=tuple(policy_value.get("required_labels") or ()),
        max_distribution_gap=_float_or_none(policy_value.get("max_distribution_gap")),
        source=shown,
        places=places,
    )
    return Project(
        file=shown,
        manifests=tuple(rel(p) for p in value.get("manifests") or ()),
        state=rel(value["state"]) if value.get("state") else None,
        backend=_backend_setting(value.get("backend"), rel),
        workspace=value.get("workspace"),
        api_url=value.get("api_url"),
        parallelism=value.get("parallelism"),
        poll_interval=seconds("poll_interval"),
        timeout=seconds("timeout"),
        max_rps=float(value["max_rps"]) if value.get("max_rps") is not None else None,
        extra_models=_declared_extra_models(value),
        policy=policy,
        diagnostics=diagnostics,
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _backend_setting(raw: str | None, rel: Any) -> str | None:
    """`backend` as given (a URL), or made relative to the file when it names a state file."""
    if not raw:
        return None
    if "://" in raw:
        return raw
    return str(rel(raw))


def discover(explicit: str | None = None) -> Project:
    """The project of the current directory (or `explicit`), loaded; Project() if none."""
    found = find(explicit)
    if found is None:
        return Project()
    path, shown = found
    return load(path, shown)


# -- the project of this command -------------------------------------------------------


def require(project: Project, err: TextIO) -> Project:
    """`project` for a command that acts on it: its problems reported on `err`, and
    ValidationFailed when one is an error. `dfr validate` does not ask: it reports
    the project file's problems with the manifests' own."""
    if project.diagnostics:
        diag.write_text(project.diagnostics, err)
    if not project.ok:
        errors = diag.count_errors(project.diagnostics)
        raise ValidationFailed(
            f"{errors} error{'s' if errors != 1 else ''} in the project file {project.file}; "
            "nothing was done"
        )
    return project


def validate_with_project(
    project: Project,
    paths: Sequence[str],
    *,
    skip_non_manifests: bool = False,
    cache: Any = None,
    jobs: int = 1,
    known_specs: Any = None,
) -> Any:
    """`dfr validate`: the project file's problems, then the manifests' with its policy.

    A project file with errors does not stop the manifests from being checked
    (without a policy), so one run shows every problem. Manifests without
    `spec_version` get the reproducibility warning here (and only here: plan and
    apply stay quiet about it).
    """
    from reconciler.policy import unpinned_version
    from reconciler.validate import validate_paths

    result = validate_paths(
        project.manifest_paths(paths),
        skip_non_manifests=skip_non_manifests,
        checks=[*project.checks(), unpinned_version],
        cache=cache,
        jobs=jobs,
        extra_models=project.extra_models,
        root=project.root(),
        known_specs=known_specs,  # the spec names state records (reconciler.engine.specnames)
    )
    result.diagnostics = [*project.diagnostics, *result.diagnostics]
    return result
