"""The manifest JSON Schema: loading it, its model lists, validators, readable errors.

`schemas/generation-run.schema.json` is the one source of the manifest rules.
It ships inside the package and is read with importlib.resources, so an
installed `dfr` never depends on the source tree. This module compiles one
validator per list of extra models (`extra_models:` in dfr.yaml extends
`$defs/model`) for the whole process and words jsonschema's errors for
people: the key or value they are about, and "did you mean" where a near
miss exists.

The model lists: `$defs/current_model` (the official SDK's, with the SDK
version it came from), `$defs/legacy_model` (the old reference page's,
accepted with a warning) and `$defs/model`, their union, which validates.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

SCHEMA_FILE = "generation-run.schema.json"
API_VERSION = "dataframer.ai/v1"
KIND = "GenerationRun"
#: The spec fields that name a model.
MODEL_FIELDS = ("generation_model", "outline_model", "revision_model")
#: Each thinking budget and the model field it belongs to.
THINKING_BUDGETS = {
    "generation_thinking_budget": "generation_model",
    "outline_thinking_budget": "outline_model",
    "revision_thinking_budget": "revision_model",
}
THINKING_SUFFIX = "-thinking"


def schema_text(name: str = SCHEMA_FILE) -> str:
    return (
        resources.files("reconciler").joinpath("schemas").joinpath(name).read_text(encoding="utf-8")
    )


@functools.cache
def manifest_schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(schema_text())
    return result


@functools.cache
def spec_schema() -> dict[str, Any]:
    result: dict[str, Any] = manifest_schema()["$defs"]["spec"]
    return result


def models() -> list[str]:
    """Every model a manifest may name without dfr.yaml: the current and the legacy ones."""
    result: list[str] = manifest_schema()["$defs"]["model"]["enum"]
    return result


def current_models() -> list[str]:
    """The models of the current API, as the official SDK lists them."""
    result: list[str] = manifest_schema()["$defs"]["current_model"]["enum"]
    return result


def legacy_models() -> list[str]:
    """The old reference page's models (some of them are still current)."""
    result: list[str] = manifest_schema()["$defs"]["legacy_model"]["enum"]
    return result


def sdk_version() -> str:
    """The version of the official SDK (pydataframer) the model list was taken from."""
    return str(manifest_schema()["$defs"]["current_model"].get("x-sdk-version", "unknown"))


def is_thinking(model: str) -> bool:
    """Whether `model` runs in thinking mode (the API's `-thinking` suffix)."""
    return model.endswith(THINKING_SUFFIX)


@functools.cache
def _stems() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for model in current_models():
        out.setdefault(_stem(model), []).append(model)
    return out


def _stem(model: str) -> str:
    """A model's family: lower case, without the thinking suffix and version numbers."""
    return re.sub(r"[0-9.]+", "#", model.removesuffix(THINKING_SUFFIX).lower())


def closest_current_model(model: str) -> str | None:
    """The current model nearest to `model` (same family, then same mode), or None.

    Families are compared without their version numbers, so that an old
    `claude-opus-4-5` finds the current `claude-opus-5-5-thinking` rather than
    the textually closer `claude-haiku-4-5`.
    """
    stems = _stems()
    near = difflib.get_close_matches(_stem(model), list(stems), n=1, cutoff=0.6)
    if not near:
        return None
    family = stems[near[0]]
    same_mode = [m for m in family if is_thinking(m) == is_thinking(model)] or family
    return max(same_mode, key=lambda m: difflib.SequenceMatcher(None, model, m).ratio())


@functools.cache
def known_models() -> frozenset[str]:
    """Every model of this release (current and legacy), for membership tests."""
    return frozenset(models())


@functools.cache
def current_model_set() -> frozenset[str]:
    return frozenset(current_models())


def new_models(extra: Iterable[str]) -> tuple[str, ...]:
    """The models of `extra` this release does not know, sorted, each once."""
    known = known_models()
    return tuple(sorted({m for m in extra if m not in known}))


def with_extra_models(doc: dict[str, Any], extra: Iterable[str]) -> dict[str, Any]:
    """A copy of schema `doc` whose `$defs/model` enum also allows `extra` (dfr.yaml's)."""
    added = [m for m in dict.fromkeys(extra) if m not in doc["$defs"]["model"]["enum"]]
    if not added:
        return doc
    model = {**doc["$defs"]["model"], "enum": [*doc["$defs"]["model"]["enum"], *added]}
    return {**doc, "$defs": {**doc["$defs"], "model": model}}


def validator(extra_models: Iterable[str] = ()) -> Any:
    """The validator for manifest documents, with `extra_models` allowed as models too.

    One per list of extra models for the whole process (a command has one
    project, so one list): forked workers inherit the one the parent built.
    """
    return _validator(new_models(extra_models) if extra_models else ())


@functools.lru_cache(maxsize=8)
def _validator(extra: tuple[str, ...]) -> Any:
    return make_validator(with_extra_models(manifest_schema(), extra))


def make_validator(schema: dict[str, Any], *, references: tuple[dict[str, Any], ...] = ()) -> Any:
    """A draft 2020-12 validator for `schema`; `references` are schemas its `$ref`s name by `$id`.

    Integers are strict: jsonschema accepts 10000.0 as an integer, but the API
    body would then carry a float, so only real ints pass. Numbers are finite:
    YAML's `.nan` passes every `minimum` and `maximum` (each comparison with NaN
    is false), and `.inf` is no setting a person means.
    """
    import jsonschema
    from jsonschema import validators
    from referencing import Registry, Resource

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _checker, value: (
                isinstance(value, int) and not isinstance(value, bool)
            ),
            "number": lambda _checker, value: (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ),
        }
    )
    strict = validators.extend(base, type_checker=checker)  # type: ignore[no-untyped-call]
    registry: Registry[Any] = Registry().with_resources(
        (str(ref["$id"]), Resource.from_contents(ref)) for ref in references
    )
    return strict(schema, registry=registry)


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """One readable schema error: its path, whether it is about the key, and words."""

    path: tuple[str | int, ...]
    message: str
    on_key: bool = False


def problems(instance: Any, against: Any = None) -> Iterator[SchemaProblem]:
    """Readable problems of one document; empty when it is valid.

    `against` is a validator from `make_validator` (default: the manifest schema's).
    """
    v = validator() if against is None else against
    if v.is_valid(instance):  # the fast path: most documents are valid
        return
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    for err in sorted(v.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        for problem in _explain(err):
            marker = (problem.path, problem.message)
            if marker not in seen:
                seen.add(marker)
                yield problem


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "document"


def _subject(path: tuple[str | int, ...]) -> str:
    return _dotted(path) if path else "the document"


def suggest(word: str, options: list[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return f"; did you mean {lowered[word.lower()]!r}?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), 1, 0.6)]
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_NAMES = {
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "number": "a finite number",
}


def _describe(value: Any) -> str:
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, float):
        if not math.isfinite(value):  # as YAML spells it
            return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
        return f"number {value!r}"
    if isinstance(value, int):
        return f"integer {value}"
    text = str(value)
    return f"string {text[:60]!r}" + ("..." if len(text) > 60 else "")


def _is_model_list(options: list[Any]) -> bool:
    """Whether an enum is a list of models (the manifest's or dfr.yaml's `$defs/model`)."""
    return set(current_models()) <= set(options)


def _explain(err: Any) -> Iterator[SchemaProblem]:
    path = tuple(err.absolute_path)
    kind = err.validator
    value = err.instance
    name = _subject(path)
    custom = err.schema.get("x-error") if isinstance(err.schema, dict) else None
    if custom and kind in ("oneOf", "anyOf", "not"):
        # A rule between keys: the schema words it (`x-error`), placed on `x-error-key`;
        # about a mapping only (another value has its own type error).
        key = tuple(err.schema.get("x-error-key", ()))
        about_keys = "required" in json.dumps(err.schema[kind])
        if isinstance(value, dict) or not about_keys:
            yield SchemaProblem((*path, *key), str(custom), on_key=bool(key))
    elif "propertyNames" in err.absolute_schema_path:
        # The instance is the offending key; the path is the mapping's.
        yield SchemaProblem(
            (*path, value),
            f"{_subject(path)} key {value!r} is not valid: use 1 to 63 letters, digits, "
            "'-', '_', '.' or '/', starting and ending with a letter or digit",
            on_key=True,
        )
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(err.schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                where = f"in {_dotted(path)}" if path else "at the top level"
                yield SchemaProblem(
                    (*path, key),
                    f"unknown key {key!r} {where}{suggest(key, allowed)}"
                    + ("" if suggest(key, allowed) else f" (allowed: {', '.join(allowed)})"),
                    on_key=True,
                )
    elif kind == "required":
        missing = [k for k in err.validator_value if isinstance(value, dict) and k not in value]
        for key in missing:
            yield SchemaProblem(path, f"{name} is missing the required key {key!r}", on_key=True)
    elif kind in ("enum", "const"):
        yield SchemaProblem(path, f"{name}: {_describe(value)} is not allowed{_enum_hint(err)}")
    else:
        yield _value_problem(err, path, name)


def _enum_hint(err: Any) -> str:
    """What a value outside an enum could be instead: the closest option, the current
    models, or the options."""
    kind, value = err.validator, err.instance
    options = err.validator_value if kind == "enum" else [err.validator_value]
    hint = suggest(value, [str(o) for o in options]) if isinstance(value, str) else ""
    if not hint and isinstance(value, str) and _is_model_list(options):
        hint = (
            f"; the current API (pydataframer {sdk_version()}) offers: "
            f"{', '.join(current_models())}; to use a model newer than this dfr release, "
            "add it to extra_models: in dfr.yaml"
        )
    if not hint:
        listed = ", ".join(map(str, options))
        hint = f"; allowed: {listed}" if len(options) > 1 else f"; it must be {listed!r}"
    return hint


def _value_problem(err: Any, path: tuple[Any, ...], name: str) -> SchemaProblem:
    """A value of the wrong type, out of bounds, of the wrong form or length."""
    kind, value = err.validator, err.instance
    if kind == "type":
        expected = err.validator_value
        words = (
            " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in expected)
            if isinstance(expected, list)
            else _TYPE_NAMES.get(str(expected), str(expected))
        )
        return SchemaProblem(path, f"{name} must be {words}, not {_describe(value)}")
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }[kind]
        return SchemaProblem(path, f"{name} must be {bound} {err.validator_value}, not {value}")
    if kind == "pattern" and path and path[-1] == "name":
        return SchemaProblem(
            path,
            f"{name} {value!r} is not a valid name: use 1 to 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit",
        )
    if kind == "pattern" and path[-2:] == ("outputs", "path") and isinstance(value, str):
        from reconciler.outputs_rules import path_problem

        return SchemaProblem(path, path_problem(value) or f"{name}: {err.message}")
    if kind == "pattern" and path and path[-1] == "spec_id":
        return SchemaProblem(
            path,
            f"{name} must be a UUID like 3c90c3cc-0d44-4b50-8888-8dd25736052a, not {value!r}",
        )
    if kind in ("minLength", "maxLength"):
        word = "at least" if kind == "minLength" else "at most"
        count = err.validator_value
        unit = "character" if count == 1 else "characters"
        return SchemaProblem(path, f"{name} must be {word} {count} {unit} long")
    return SchemaProblem(path, f"{name}: {err.message}")
