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

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError, ValidationFailed
from reconciler.policy import DocumentCheck, Policy, manifest_checks
from reconciler.project_checks import (
    PROJECT_FILE,
    declared_extra_models,
    problems,
)
from reconciler.yamlsafe import (
    MAX_FILE_BYTES,
    Document,
    YAMLProblem,
    decode,
    key_node_of,
    parse_documents,
    position,
)

ENV_CONFIG = "DFR_CONFIG"


@dataclass(frozen=True, slots=True)
class Project:
    """The settings of `dfr.yaml` (all None when there is no file) and its problems."""

    file: str | None = None  # as shown to the user; None: no project file
    # Paths are seen from the current directory (the file's own are from its folder).
    manifests: tuple[str, ...] = ()  # files and folders to read without PATH
    state: str | None = None  # the state file's path
    backend: str | None = None  # a postgresql:// URL as written, or a state file's path
    workspace: str | None = None  # the database's workspace
    api_url: str | None = None  # as written
    parallelism: int | None = None  # requests (and downloads) in flight at once
    poll_interval: float | None = None  # seconds
    timeout: float | None = None  # seconds apply waits for runs; None: no limit
    max_rps: float | None = None  # API requests a second
    extra_models: tuple[str, ...] = ()  # allowed beyond this release's model list
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
    found = problems(doc, shown)
    if any(d.is_error for d in found):
        # The manifests are still checked (by `dfr validate`): with the extra
        # models when that setting itself is fine, so its models are not errors too.
        bad_extra = any(d.path[:1] == ("extra_models",) for d in found if d.is_error)
        extra = () if bad_extra else declared_extra_models(doc.value)
        return Project(file=shown, extra_models=extra, diagnostics=tuple(diag.sort(found)))
    return _settings(doc, shown, _relative_base(path, here), tuple(found))


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
    # dfr.yaml's policy reads as the settings state records, with each key's place.
    policy = replace(Policy.from_settings(policy_value, source=shown), places=places)
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
        extra_models=declared_extra_models(value),
        policy=policy,
        diagnostics=diagnostics,
    )


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
