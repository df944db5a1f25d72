"""Create-run body validation and `runtime_params`, as the API's FastAPI layer does them.

Two modes, both built from `$defs` of the manifest schema shipped in the
package, so the emulator and `dfr validate` can never disagree about what a
valid request is:

- the current API (default): `$defs/spec` as it is (the official SDK's 18
  fields, their types, enums and the old page's ranges), with `$defs/model`
  narrowed to `$defs/current_model` (the SDK's 34 models);
- legacy (`EmulatorConfig.legacy`): the old reference page's 11 fields only,
  same rules, with `$defs/legacy_model` (its 12 models).

Errors come back as FastAPI's 422 shape with pydantic v2's types and
messages: `{"detail": [{"type": ..., "loc": ["body", ...], "msg": ...,
"input": ..., "ctx": ...}]}` (`missing`, `extra_forbidden`, `literal_error`,
`int_type`, `bool_type`, `list_type`, `string_type`, `greater_than_equal`,
`less_than_equal`, ...). Integers and booleans are strict, as in
`dfr validate`: 10.0 is not a sample count and "yes" is not a boolean.

`runtime_params` computes what a run records it used: the body's values, else
the service's current defaults (`DEFAULT_*` below); legacy runs keep the old
page's shape.

jsonschema is imported on first use: importing the emulator package must stay
cheap for the rest of the CLI.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

#: The old reference page's create fields (history: it will not change).
LEGACY_FIELDS = (
    "spec_id",
    "number_of_samples",
    "spec_version",
    "generation_model",
    "outline_model",
    "revision_model",
    "enable_revisions",
    "max_revision_cycles",
    "seed_shuffling_level",
    "max_examples_in_prompt",
    "unified_multifield",
)

#: Keys of a run's `runtime_params` (the SDK's RuntimeParams), alphabetical as it lists them.
RUNTIME_PARAM_FIELDS = (
    "filtering_types",
    "generation_model",
    "generation_thinking_budget",
    "max_examples_in_prompt",
    "max_revision_cycles",
    "number_of_samples",
    "outline_model",
    "outline_thinking_budget",
    "revision_model",
    "revision_thinking_budget",
    "revision_types",
    "seed_shuffling_level",
    "skip_outline",
    "tools",
    "unified_multifield",
)

#: Keys of a legacy run's `runtime_params`, in the order the old page lists them:
#: its create fields but the spec's id and version.
LEGACY_RUNTIME_PARAM_FIELDS = tuple(
    name for name in LEGACY_FIELDS if name not in ("spec_id", "spec_version")
)

# The service's defaults. They belong to the service and change over time;
# these are made up, among the current models.
DEFAULT_MODEL = "anthropic/claude-sonnet-5-5-thinking"
DEFAULT_THINKING_BUDGET = 8000
DEFAULT_MAX_REVISION_CYCLES = 1
DEFAULT_SEED_SHUFFLING_LEVEL = "none"
#: What `enable_revisions: true` alone turns on: every revision type, in the
#: SDK's order. `distinguishability` is for seeded specs only: it is left out
#: when the spec has no dataset (every seed spec has one, so it is in).
ALL_REVISION_TYPES = ("coherence_flow", "consistency", "distinguishability", "conformance")
SEEDED_ONLY_REVISION_TYPES = frozenset({"distinguishability"})
ENABLE_REVISIONS_FILTERING = ("structural",)

#: The old page's defaults (legacy mode).
LEGACY_DEFAULTS: dict[str, Any] = {
    "generation_model": "gemini/gemini-3-pro-preview-thinking",
    "outline_model": "gemini/gemini-3-pro-preview-thinking",
    "revision_model": "gemini/gemini-3-pro-preview-thinking",
    "enable_revisions": False,
    "max_revision_cycles": 1,
    "seed_shuffling_level": "none",
    "unified_multifield": True,
}

THINKING_SUFFIX = "-thinking"

# pydantic v2's type names and messages (Python mode, as FastAPI validates a parsed body).
_TYPE_ERRORS = {
    "integer": ("int_type", "Input should be a valid integer"),
    "number": ("float_type", "Input should be a valid number"),
    "string": ("string_type", "Input should be a valid string"),
    "boolean": ("bool_type", "Input should be a valid boolean"),
    "object": ("dict_type", "Input should be a valid dictionary"),
    "array": ("list_type", "Input should be a valid list"),
}


_RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than"})


@functools.lru_cache(maxsize=1)
def schema_document() -> dict[str, Any]:
    resource = importlib.resources.files("reconciler") / "schemas" / "generation-run.schema.json"
    loaded: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return loaded


def model_names(*, legacy: bool = False) -> tuple[str, ...]:
    """The models a create body may name in this mode."""
    defs = schema_document()["$defs"]
    return tuple(defs["legacy_model" if legacy else "current_model"]["enum"])


@functools.lru_cache(maxsize=2)
def _validator(legacy: bool) -> Validator:
    from jsonschema import Draft202012Validator, validators

    # Integers are strict, as in `dfr validate`: 10000.0 is not a sample count.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    document = schema_document()
    defs = dict(document["$defs"])
    spec = api_body_schema(defs["spec"])
    if legacy:
        defs["model"] = defs["legacy_model"]
        props = spec["properties"]
        spec["properties"] = {name: props[name] for name in LEGACY_FIELDS}
        spec["required"] = [name for name in spec.get("required", []) if name in LEGACY_FIELDS]
    else:
        defs["model"] = defs["current_model"]
    defs["spec"] = spec
    # A root that only points at `$defs/spec` keeps the schema's own `$ref`s
    # (to `#/$defs/model`) resolvable without a registry.
    schema = {"$schema": document.get("$schema"), "$defs": defs, "$ref": "#/$defs/spec"}
    validator: Validator = strict(schema)
    return validator


#: Keys of a manifest's `spec` that dfr resolves itself and never sends.
MANIFEST_ONLY_KEYS = ("spec_ref",)


def api_body_schema(manifest_spec: dict[str, Any]) -> dict[str, Any]:
    """The API's create body from the manifest's `spec`: `spec_id` required, no `spec_ref`.

    (A manifest may name its spec by `spec_ref` instead; the rules tying the two
    together are the manifest's, not the API's.)
    """
    spec = {key: value for key, value in manifest_spec.items() if key != "allOf"}
    props = spec["properties"]
    spec["properties"] = {k: v for k, v in props.items() if k not in MANIFEST_ONLY_KEYS}
    required = [name for name in spec.get("required", []) if name != "spec_id"]
    spec["required"] = ["spec_id", *required]
    return spec


def validate_body(body: object, *, legacy: bool = False) -> list[dict[str, Any]]:
    """FastAPI-style error items for `body`; empty when it is a valid request."""
    if not isinstance(body, dict):
        return [
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": body,
            }
        ]
    items: list[dict[str, Any]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for error in _validator(legacy).iter_errors(body):
        for item in _detail_items(error):
            # jsonschema may report the same missing field once per property.
            key = (item["type"], tuple(item["loc"]))
            if key not in seen:
                seen.add(key)
                items.append(item)
    # pydantic reports one error per value: a Literal field refuses any other
    # value with `literal_error` alone (not also the type jsonschema checks), and
    # a value of the wrong type is not also checked against a range (0.5 for a
    # count is an `int_type`, not also below the minimum).
    literal_locs = {tuple(i["loc"]) for i in items if i["type"] == "literal_error"}
    items = [
        i for i in items if not (i["type"].endswith("_type") and tuple(i["loc"]) in literal_locs)
    ]
    type_locs = {tuple(i["loc"]) for i in items if i["type"].endswith("_type")}
    items = [i for i in items if i["type"] not in _RANGE_ERRORS or tuple(i["loc"]) not in type_locs]
    items.sort(key=lambda i: [str(part) for part in i["loc"]])
    return items


def json_body(raw: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """A request's JSON body, or FastAPI's 422 items for one that is empty or not JSON."""
    if not raw.strip():
        return None, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    try:
        return json.loads(raw), []
    except UnicodeDecodeError:
        return None, [_json_invalid(0, "Invalid UTF-8")]
    except json.JSONDecodeError as exc:
        return None, [_json_invalid(exc.pos, exc.msg)]


def _json_invalid(position: int, error: str) -> dict[str, Any]:
    """FastAPI's item for a body that is not JSON: where the parser stopped, and why."""
    return {
        "type": "json_invalid",
        "loc": ["body", position],
        "msg": "JSON decode error",
        "input": {},
        "ctx": {"error": error},
    }


def _choices(values: Sequence[Any]) -> str:
    """pydantic's way of listing Literal options: "'a', 'b' or 'c'"."""
    shown = [repr(v) for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return f"{', '.join(shown[:-1])} or {shown[-1]}"


#: A bound keyword -> pydantic's error type, its words and its `ctx` key.
_BOUNDS = {
    "minimum": ("greater_than_equal", "greater than or equal to", "ge"),
    "maximum": ("less_than_equal", "less than or equal to", "le"),
    "exclusiveMinimum": ("greater_than", "greater than", "gt"),
}


def _detail_items(error: Any) -> list[dict[str, Any]]:
    """One jsonschema error as one or more FastAPI detail items."""
    loc: list[Any] = ["body", *error.absolute_path]
    keyword = error.validator
    value = error.instance
    if keyword == "required":
        # jsonschema reports the whole set; FastAPI names each missing field.
        missing = [name for name in error.validator_value if name not in value]
        return [
            {"type": "missing", "loc": [*loc, name], "msg": "Field required", "input": value}
            for name in missing
        ]
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in value if name not in allowed)
        return [
            {
                "type": "extra_forbidden",
                "loc": [*loc, name],
                "msg": "Extra inputs are not permitted",
                "input": value[name],
            }
            for name in extra
        ]
    return _value_items(error, loc, keyword, value)


def _value_items(error: Any, loc: list[Any], keyword: str, value: Any) -> list[dict[str, Any]]:
    """The detail item of a value of the wrong type, out of bounds or not allowed."""
    if keyword == "type":
        expected = error.validator_value
        kind, msg = _TYPE_ERRORS.get(
            expected if isinstance(expected, str) else "",
            ("type_error", "Input is of a wrong type"),
        )
        return [{"type": kind, "loc": loc, "msg": msg, "input": value}]
    if keyword in _BOUNDS:
        kind, words, key = _BOUNDS[keyword]
        bound = error.validator_value
        return [
            {
                "type": kind,
                "loc": loc,
                "msg": f"Input should be {words} {bound}",
                "input": value,
                "ctx": {key: bound},
            }
        ]
    if keyword in ("enum", "const"):
        options = error.validator_value if keyword == "enum" else [error.validator_value]
        expected = _choices(options)
        return [
            {
                "type": "literal_error",
                "loc": loc,
                "msg": f"Input should be {expected}",
                "input": value,
                "ctx": {"expected": expected},
            }
        ]
    if keyword in ("pattern", "format"):
        return [
            {
                "type": "uuid_parsing",
                "loc": loc,
                "msg": "Input should be a valid UUID",
                "input": value,
            }
        ]
    if keyword == "uniqueItems":
        msg = "Value error, list items must be unique"
        return [{"type": "value_error", "loc": loc, "msg": msg, "input": value}]
    return [
        {"type": "value_error", "loc": loc, "msg": f"Value error, {error.message}", "input": value}
    ]


def is_thinking(model: str | None) -> bool:
    return model is not None and model.endswith(THINKING_SUFFIX)


def runtime_params(body: dict[str, Any], *, seeded: bool = True) -> dict[str, Any]:
    """The generation parameters a run actually uses: the body over the service's defaults.

    `seeded`: whether the spec has a seed dataset (then `enable_revisions`
    alone also turns on `distinguishability`). Revisions are on when
    `revision_types` or `filtering_types` ends up non-empty; when off,
    `revision_model`, `max_revision_cycles` and `revision_thinking_budget` are
    null. A thinking budget is null for a model without `-thinking`.
    """
    revision_types = body.get("revision_types")
    filtering_types = body.get("filtering_types")
    if body.get("enable_revisions") and revision_types is None and filtering_types is None:
        revision_types = [
            kind for kind in ALL_REVISION_TYPES if seeded or kind not in SEEDED_ONLY_REVISION_TYPES
        ]
        filtering_types = list(ENABLE_REVISIONS_FILTERING)
    revision_types = list(revision_types or [])
    filtering_types = list(filtering_types or [])
    revising = bool(revision_types or filtering_types)

    def budget(model: str | None, sent: Any) -> int | None:
        if not is_thinking(model):
            return None
        return int(sent) if sent is not None else DEFAULT_THINKING_BUDGET

    generation_model = body.get("generation_model") or DEFAULT_MODEL
    outline_model = body.get("outline_model") or DEFAULT_MODEL
    revision_model = (body.get("revision_model") or DEFAULT_MODEL) if revising else None
    cycles = body.get("max_revision_cycles")
    params: dict[str, Any] = {
        "filtering_types": filtering_types,
        "generation_model": generation_model,
        "generation_thinking_budget": budget(
            generation_model, body.get("generation_thinking_budget")
        ),
        "max_examples_in_prompt": body.get("max_examples_in_prompt"),
        "max_revision_cycles": (
            (cycles if cycles is not None else DEFAULT_MAX_REVISION_CYCLES) if revising else None
        ),
        "number_of_samples": body["number_of_samples"],
        "outline_model": outline_model,
        "outline_thinking_budget": budget(outline_model, body.get("outline_thinking_budget")),
        "revision_model": revision_model,
        "revision_thinking_budget": (
            budget(revision_model, body.get("revision_thinking_budget")) if revising else None
        ),
        "revision_types": revision_types,
        "seed_shuffling_level": body.get("seed_shuffling_level") or DEFAULT_SEED_SHUFFLING_LEVEL,
        "skip_outline": bool(body.get("skip_outline", False)),
        "tools": list(body.get("tools") or []),
        "unified_multifield": bool(body.get("unified_multifield", True)),
    }
    return params


def legacy_runtime_params(body: dict[str, Any]) -> dict[str, Any]:
    """A legacy run's `runtime_params`: the old page's nine fields, its defaults filled in."""
    merged = {**LEGACY_DEFAULTS, **body}
    return {name: merged.get(name) for name in LEGACY_RUNTIME_PARAM_FIELDS}
