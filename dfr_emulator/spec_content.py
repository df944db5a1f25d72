"""What a spec write says: the create and update bodies, checked as the API does, and the YAML.

- `create_errors(body)` / `update_errors(body)`: FastAPI's 422 detail items for
  the SDK's `SpecCreateParams` / `SpecUpdateParams` (pydantic v2 types and
  messages, strict, extra keys forbidden, `dataset_id` a UUID), as
  `validation.validate_body` does for a run's body.
- `create_refusal(body)`: what a well-typed create body still cannot ask for
  (the API's 400): a seedless spec without `generation_objectives`,
  conditional distributions without distributions.
- `generated_yaml(body, dataset_name)`: the content the service "generates": a
  `spec:` root with `description`, `requirements` and `data_property_variations`,
  then a read-only `metadata:` section; the same body always gives the same YAML.
- `edited_yaml(text)`: an update's `content_yaml` checked (a `spec:` mapping of
  editable fields; `metadata:` ignored) and stored as the service keeps it:
  re-serialised, its `metadata:` the spec's own. Clients must compare the `spec:`
  part, not the text they sent.

PyYAML is imported on first use.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from dfr_emulator.seeds import SPEC_RUNTIME_PARAMS
from dfr_emulator.validation import _choices

#: The SDK's `spec_generation_model_name` Literal (pydataframer 0.19.2).
SPEC_GENERATION_MODELS = (
    "anthropic/claude-fable-5-1-thinking",
    "anthropic/claude-opus-5-5-thinking",
    "anthropic/claude-sonnet-5-5-thinking",
    "gemini/gemini-3.1-pro-preview-thinking",
    "openai/gpt-6-astra-thinking",
    "openai/gpt-6.1-sol-thinking",
    "openai/gpt-5.6-terra-thinking",
    "databricks/system.ai.claude-sonnet-5-thinking",
    "databricks/system.ai.claude-opus-5-thinking",
    "databricks/system.ai.gpt-6-astra-thinking",
    "databricks/system.ai.gpt-6-1-sol-thinking",
    "databricks/system.ai.gpt-5-6-terra-thinking",
)

#: SpecCreateParams' fields and their JSON types, in the SDK's order.
CREATE_FIELDS: dict[str, str] = {
    "name": "string",
    "dataset_id": "uuid",
    "description": "string",
    "extrapolate_axes": "boolean",
    "extrapolate_values": "boolean",
    "generate_conditional_distributions": "boolean",
    "generate_distributions": "boolean",
    "generation_objectives": "string",
    "spec_generation_model_name": "model",
}

#: The `spec:` keys an update may set (SpecUpdateParams' docstring).
EDITABLE_FIELDS = (
    "description",
    "requirements",
    "data_property_variations",
    "selected_sql_schema_column",
    "selected_sql_query_columns",
)

#: Made-up properties a generated spec varies, picked by the body's digest.
_PROPERTIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tone", ("neutral", "formal", "casual", "frustrated")),
    ("length", ("short", "medium", "long")),
    ("audience", ("novice", "practitioner", "expert")),
    ("language", ("en", "de", "fr", "es")),
    ("channel", ("email", "chat", "phone", "web form")),
    ("sentiment", ("negative", "mixed", "positive")),
    ("region", ("EMEA", "APAC", "AMER")),
)


def _item(kind: str, name: str, msg: str, value: Any, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": kind, "loc": ["body", name], "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return item


def _type_error(name: str, kind: str, value: Any) -> dict[str, Any] | None:
    """pydantic's (strict) error for one field's value, or None when it fits."""
    if kind == "boolean":
        ok = isinstance(value, bool)
        return None if ok else _item("bool_type", name, "Input should be a valid boolean", value)
    if not isinstance(value, str):
        return _item("string_type", name, "Input should be a valid string", value)
    if kind == "model" and value not in SPEC_GENERATION_MODELS:
        expected = _choices(SPEC_GENERATION_MODELS)
        return _item("literal_error", name, f"Input should be {expected}", value, expected=expected)
    if kind == "uuid" and not _is_uuid(value):
        return _item("uuid_parsing", name, "Input should be a valid UUID", value)
    if name == "name" and not value:
        msg = "String should have at least 1 character"
        return _item("string_too_short", name, msg, value, min_length=1)
    return None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _body_errors(body: object, fields: dict[str, str], required: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return [{"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}]
    items: list[dict[str, Any]] = []
    if required not in body:
        items.append(_item("missing", required, "Field required", body))
    for name, value in body.items():
        if name not in fields:
            items.append(_item("extra_forbidden", name, "Extra inputs are not permitted", value))
            continue
        error = _type_error(name, fields[name], value)
        if error is not None:
            items.append(error)
    items.sort(key=lambda i: [str(part) for part in i["loc"]])
    return items


def create_errors(body: object) -> list[dict[str, Any]]:
    """FastAPI-style 422 items for a spec create body; empty when it is well typed."""
    return _body_errors(body, CREATE_FIELDS, "name")


def update_errors(body: object) -> list[dict[str, Any]]:
    """FastAPI-style 422 items for a spec update body; empty when it is well typed."""
    return _body_errors(body, {"content_yaml": "string"}, "content_yaml")


def create_refusal(body: dict[str, Any]) -> str | None:
    """Why the API refuses a well-typed create body (400), or None."""
    if body.get("dataset_id") is None and not str(body.get("generation_objectives", "")).strip():
        return (
            "generation_objectives is required for a seedless spec "
            "(give dataset_id for a seeded one)"
        )
    if body.get("generate_conditional_distributions") and not generation_options(body).get(
        "generate_distributions"
    ):
        return "generate_conditional_distributions requires generate_distributions to be true"
    return None


def generation_options(body: dict[str, Any]) -> dict[str, Any]:
    """The spec's `runtime_params`: the body's options over the service's defaults."""
    return {name: body.get(name, default) for name, default in SPEC_RUNTIME_PARAMS.items()}


# ----- YAML ---------------------------------------------------------------------------


def _dump(document: dict[str, Any]) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, text)
    dumped: str = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096
    )
    return dumped


def metadata(name: str, dataset_name: str | None) -> dict[str, Any]:
    """The read-only `metadata:` section every stored version carries."""
    return {"name": name, "dataset_name": dataset_name}


def _digest(body: dict[str, Any]) -> bytes:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()


def generated_properties(body: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The properties a generation from `body` varies (two or three, by its digest)."""
    digest = _digest(body)
    start = digest[1] % len(_PROPERTIES)
    return tuple(_PROPERTIES[(start + i) % len(_PROPERTIES)] for i in range(2 + digest[0] % 2))


def generated_yaml(body: dict[str, Any], dataset_name: str | None) -> str:
    """The YAML a successful generation makes of `body`: a pure function of it."""
    digest = _digest(body)
    options = generation_options(body)
    name = str(body["name"])
    objectives = str(body.get("generation_objectives") or "").strip()
    source = f"the seed dataset {dataset_name}" if dataset_name else "the objectives"
    requirements = objectives or f"Each sample follows the structure and style of {source}."
    if options["extrapolate_values"] and dataset_name:
        requirements += "\nValues may go beyond the ranges seen in the seed data."
    variations: list[dict[str, Any]] = []
    for offset, (prop, values) in enumerate(generated_properties(body)):
        variation: dict[str, Any] = {"property_name": prop, "property_values": list(values)}
        if options["generate_distributions"]:
            variation["base_distributions"] = _distribution(values, digest[2 + offset :])
        variations.append(variation)
    if options["generate_conditional_distributions"]:
        first, second = variations[0], variations[1]
        second["conditional_distributions"] = {
            f"{first['property_name']}={value}": _distribution(
                second["property_values"], digest[8 + index :]
            )
            for index, value in enumerate(first["property_values"])
        }
    spec = {
        "description": str(body.get("description") or f"Synthetic data for {name}, from {source}."),
        "requirements": requirements,
        "data_property_variations": variations,
    }
    return _dump({"spec": spec, "metadata": metadata(name, dataset_name)})


def _distribution(values: Any, noise: bytes) -> dict[str, int]:
    """Whole percentages over `values` summing to 100, shaped by `noise`."""
    weights = [1 + (noise[i % len(noise)] if noise else 0) % 7 for i in range(len(values))]
    total = sum(weights)
    shares = [w * 100 // total for w in weights]
    shares[0] += 100 - sum(shares)
    return {str(value): share for value, share in zip(values, shares, strict=True)}


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "description": (str,),
    "requirements": (str,),
    "data_property_variations": (list,),
    "selected_sql_schema_column": (str, type(None)),
    "selected_sql_query_columns": (list, type(None)),
}


def edited_spec(text: str) -> dict[str, Any]:
    """The `spec:` mapping of an update's `content_yaml`; ValueError says what is wrong."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"content_yaml is not valid YAML: {_one_line(exc)}") from None
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise ValueError("content_yaml must have a 'spec' root key holding a mapping")
    others = sorted(str(key) for key in document if key not in ("spec", "metadata"))
    if others:
        raise ValueError(f"content_yaml has unknown root key(s): {', '.join(others)}")
    spec: dict[str, Any] = document["spec"]
    _check_tree(spec)
    if not spec:
        raise ValueError("'spec' must contain one or more editable fields")
    unknown = sorted(str(key) for key in spec if key not in _FIELD_TYPES)
    if unknown:
        allowed = ", ".join(EDITABLE_FIELDS)
        raise ValueError(f"'spec' has non-editable field(s): {', '.join(unknown)} ({allowed})")
    for key, value in spec.items():
        if not isinstance(value, _FIELD_TYPES[key]):
            kind = _FIELD_TYPES[key][0].__name__
            raise ValueError(f"spec.{key} must be a {'string' if kind == 'str' else kind}")
    return spec


#: Most nodes an update's `spec:` may expand to (aliases counted each time they are used).
MAX_NODES = 100_000


def _check_tree(root: Any) -> None:
    """ValueError for a `spec:` that refers to itself or expands past MAX_NODES (aliases)."""
    budget = MAX_NODES
    stack: list[tuple[Any, frozenset[int]]] = [(root, frozenset())]
    while stack:
        value, above = stack.pop()
        budget -= 1
        if budget < 0:
            raise ValueError(f"'spec' expands to more than {MAX_NODES} values")
        if isinstance(value, dict | list):
            if id(value) in above:
                raise ValueError("'spec' refers to itself (a recursive YAML alias)")
            path = above | {id(value)}
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, path) for child in children)


def edited_yaml(text: str, name: str, dataset_name: str | None) -> str:
    """What the service stores for an update: its `spec:` with the spec's own metadata."""
    return _dump({"spec": edited_spec(text), "metadata": metadata(name, dataset_name)})


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
