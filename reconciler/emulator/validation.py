"""Create-run body validation, as the real API's FastAPI layer answers it.

The body is checked against `$defs/spec` of the manifest schema shipped in the
package, so the emulator and `dfr validate` can never disagree about what a
valid request is. Errors come back as FastAPI's 422 shape:
`{"detail": [{"loc": ["body", ...], "msg": ..., "type": ...}]}`.

jsonschema is imported on first use: importing the emulator package must stay
cheap for the rest of the CLI.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

#: Fields of `runtime_params`, in the order the API lists them.
RUNTIME_PARAM_FIELDS = (
    "number_of_samples",
    "generation_model",
    "outline_model",
    "revision_model",
    "enable_revisions",
    "max_revision_cycles",
    "seed_shuffling_level",
    "max_examples_in_prompt",
    "unified_multifield",
)

_TYPE_NAMES = {
    "integer": "int_type",
    "number": "float_type",
    "string": "string_type",
    "boolean": "bool_type",
    "object": "dict_type",
    "array": "list_type",
}


@functools.lru_cache(maxsize=1)
def _schema_document() -> dict[str, Any]:
    resource = importlib.resources.files("reconciler") / "schemas" / "generation-run.schema.json"
    loaded: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return loaded


@functools.lru_cache(maxsize=1)
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, validators

    # Integers are strict, as in `dfr validate`: 10000.0 is not a sample count.
    checker = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    strict = validators.extend(Draft202012Validator, type_checker=checker)  # type: ignore[no-untyped-call]
    document = _schema_document()
    # A root that only points at `$defs/spec` keeps the manifest's own `$ref`s
    # (to `#/$defs/model`) resolvable without a registry.
    schema = {
        "$schema": document.get("$schema"),
        "$defs": document["$defs"],
        "$ref": "#/$defs/spec",
    }
    validator: Validator = strict(schema)
    return validator


@functools.lru_cache(maxsize=1)
def spec_defaults() -> dict[str, Any]:
    """The schema's `default`s of the request body fields."""
    props = _schema_document()["$defs"]["spec"]["properties"]
    return {name: prop["default"] for name, prop in props.items() if "default" in prop}


def validate_body(body: object) -> list[dict[str, Any]]:
    """FastAPI-style error items for `body`; empty when it is a valid request."""
    if not isinstance(body, dict):
        return [
            {
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "type": "model_attributes_type",
            }
        ]
    errors = []
    for error in sorted(_validator().iter_errors(body), key=lambda e: list(e.absolute_path)):
        errors.extend(_detail_items(error))
    return errors


def _detail_items(error: Any) -> list[dict[str, Any]]:
    """One jsonschema error as one or more FastAPI detail items."""
    loc: list[Any] = ["body", *error.absolute_path]
    keyword = error.validator
    if keyword == "required":
        # jsonschema reports the whole set; FastAPI names each missing field.
        missing = [name for name in error.validator_value if name not in error.instance]
        return [
            {"loc": [*loc, name], "msg": "Field required", "type": "missing"} for name in missing
        ]
    if keyword == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(name for name in error.instance if name not in allowed)
        return [
            {
                "loc": [*loc, name],
                "msg": "Extra inputs are not permitted",
                "type": "extra_forbidden",
            }
            for name in extra
        ]
    if keyword == "type":
        expected = error.validator_value
        kind = (
            _TYPE_NAMES.get(expected, "type_error") if isinstance(expected, str) else "type_error"
        )
        return [{"loc": loc, "msg": f"Input should be a valid {expected}", "type": kind}]
    if keyword == "minimum":
        msg = f"Input should be greater than or equal to {error.validator_value}"
        return [{"loc": loc, "msg": msg, "type": "greater_than_equal"}]
    if keyword == "maximum":
        msg = f"Input should be less than or equal to {error.validator_value}"
        return [{"loc": loc, "msg": msg, "type": "less_than_equal"}]
    if keyword == "enum":
        options = ", ".join(repr(v) for v in error.validator_value)
        return [{"loc": loc, "msg": f"Input should be {options}", "type": "enum"}]
    if keyword in ("pattern", "format"):
        return [{"loc": loc, "msg": "Input should be a valid UUID", "type": "uuid_parsing"}]
    return [{"loc": loc, "msg": error.message, "type": "value_error"}]


def runtime_params(body: dict[str, Any]) -> dict[str, Any]:
    """The generation parameters a run actually uses: the body over the defaults."""
    merged = {**spec_defaults(), **body}
    return {name: merged.get(name) for name in RUNTIME_PARAM_FIELDS}
