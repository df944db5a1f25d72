"""The problems of a project file `dfr.yaml`: schema violations worded for a person,
secrets that must not be committed there, and the rules across its settings
(durations dfr refuses, extra models this release knows, a budget below a run's
limit). Each is a located diagnostic; `reconciler.project` reads the file."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.errors import UsageError
from reconciler.yamlsafe import Document, key_node_of, locate, position

PROJECT_FILE = "dfr.yaml"
SCHEMA_FILE = "project.schema.json"

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


def declared_extra_models(value: Mapping[str, Any]) -> tuple[str, ...]:
    """The strings of the file's `extra_models` list, as written (unchecked)."""
    raw = value.get("extra_models")
    if not isinstance(raw, list):
        return ()
    return tuple(dict.fromkeys(m for m in raw if isinstance(m, str)))


def problems(doc: Document, shown: str) -> list[Diagnostic]:
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
    against = _validator(declared_extra_models(doc.value))
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
