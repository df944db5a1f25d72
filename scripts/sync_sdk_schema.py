"""Regenerate the SDK-derived parts of the manifest schema from the installed SDK.

    pip install pydataframer==X.Y.Z        # the release to speak
    python scripts/sync_sdk_schema.py        # rewrite schemas/generation-run.schema.json
    python scripts/sync_sdk_schema.py --check  # exit 1 (and say what) if it is out of date

`schemas/project.schema.json` (dfr.yaml) repeats the manifest's `$defs/model`
so that it stands alone; this script keeps that copy equal too.

`schemas/spec.schema.json` (`kind: Spec` manifests) takes its create options
from the SDK's `SpecCreateParams` the same way: every field but `name` (the
manifest's `metadata.name`), `generation_objectives` spelled `objectives`,
with its JSON type, enum (`spec_generation_model_name`'s model list) and
docstring. What stays hand-written there: `content`, `content_file`, the
rules between fields (`allOf`) and the envelope.

The official SDK (`pydataframer`, generated from the service's OpenAPI spec) is
the oracle for the create-run body. From its `RunCreateParams` this script takes:

- the list of current models (`$defs/current_model`), from the Literal of
  `generation_model` (the three model fields must share one list);
- the set of create fields: a field the SDK added is added to `$defs/spec`
  with its JSON type and enum; a field the SDK dropped is reported, never
  silently removed (an old manifest must keep a clear error or warning);
- each field's enum (Literal) and its description (the SDK's docstring);
- `deprecated: true` where the docstring says to use other fields instead;
- the SDK version it was made from (`$defs/current_model/x-sdk-version`);
- the evaluation models (`$defs/evaluation_model`, a manifest's `evaluate.model`),
  from the Literal of `EvaluationCreateParams.evaluation_model`.

What stays hand-written: ranges (`minimum`, `maximum`), patterns, the old
reference page's models (`$defs/legacy_model`), the field order, and the
manifest envelope. dfr reads only the schema at run time; it never imports
the SDK (tests do, to check the schema against it).
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any

# The SDK's own spelling: typing's from Python 3.11, typing_extensions' (an SDK
# dependency) on 3.10, where typing has no Required.
from typing_extensions import NotRequired, Required

SCHEMA = Path(__file__).resolve().parent.parent / "reconciler/schemas/generation-run.schema.json"
PROJECT_SCHEMA = SCHEMA.with_name("project.schema.json")
SPEC_SCHEMA = SCHEMA.with_name("spec.schema.json")
#: SpecCreateParams' fields as a Spec manifest spells them (None: not in `spec:`).
SPEC_FIELD_NAMES: dict[str, str | None] = {"name": None, "generation_objectives": "objectives"}
#: Hand-written keys of a Spec manifest's `spec:` that come after the SDK's options.
SPEC_OWN_FIELDS = ("content", "content_file")
SPEC_SOURCES = ("objectives", "dataset_id")
#: Run fields the SDK requires that a manifest may replace with another key
#: (`spec_ref` names a Spec manifest instead of `spec_id`; the schema's `allOf`
#: says "exactly one of" in its own words).
REQUIRED_ALTERNATIVES = {"spec_id": "spec_ref"}
MODEL_FIELDS = ("generation_model", "outline_model", "revision_model")
#: Manifest-only wording kept over the SDK's docstring (the SDK's text is appended).
_REQUIRED_NOTE = {
    "spec_id": "dfr compares spec ids case-insensitively (the API answers them in lower case).",
}


def sdk_params() -> tuple[type, str]:
    """`RunCreateParams` and the installed SDK's version."""
    from dataframer.types.dataframer.run_create_params import RunCreateParams

    return RunCreateParams, importlib.metadata.version("pydataframer")


def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string literal right after its annotation)."""
    tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))  # type: ignore[arg-type]
    docs: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            body = node.body
            for stmt, after in zip(body, [*body[1:], None], strict=True):
                if (
                    isinstance(stmt, ast.AnnAssign)
                    and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                ):
                    docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def _unwrap(hint: Any) -> Any:
    """`Required[X]` / `NotRequired[X]` -> X."""
    while typing.get_origin(hint) in (Required, NotRequired):
        hint = typing.get_args(hint)[0]
    return hint


def json_type(hint: Any) -> dict[str, Any]:
    """The JSON Schema of one SDK annotation (the kinds RunCreateParams uses)."""
    hint = _unwrap(hint)
    origin = typing.get_origin(hint)
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is str:
        return {"type": "string"}
    if origin is typing.Literal:
        values = list(typing.get_args(hint))
        return {"type": "string", "enum": values}
    if origin is not None and typing.get_args(hint):
        # List[...] and the SDK's SequenceNotStr[...] / Sequence[...]: a JSON array.
        items = json_type(typing.get_args(hint)[0])
        return {"type": "array", "items": items, "uniqueItems": True}
    raise SystemExit(f"sync_sdk_schema: no JSON type for SDK annotation {hint!r}; extend json_type")


def sdk_facts() -> dict[str, Any]:
    """What the SDK says about the create body: models, fields, types, docs, version."""
    cls, version = sdk_params()
    hints = typing.get_type_hints(cls, include_extras=True)
    model_lists = {name: list(typing.get_args(_unwrap(hints[name]))) for name in MODEL_FIELDS}
    models = model_lists["generation_model"]
    for name, listed in model_lists.items():
        if listed != models:
            raise SystemExit(f"sync_sdk_schema: {name} lists other models than generation_model")
    required = [name for name, hint in hints.items() if typing.get_origin(hint) is Required]
    return {
        "version": version,
        "models": models,
        "evaluation_models": evaluation_models(),
        "fields": {name: json_type(hint) for name, hint in hints.items()},
        "required": required,
        "docs": field_docs(cls),
    }


def evaluation_models() -> list[str]:
    """The models `POST /api/dataframer/evaluations/` takes (`evaluate.model`)."""
    from dataframer.types.dataframer.evaluation_create_params import EvaluationCreateParams

    hints = typing.get_type_hints(EvaluationCreateParams, include_extras=True)
    return list(typing.get_args(_unwrap(hints["evaluation_model"])))


def _description(name: str, doc: str) -> str:
    note = _REQUIRED_NOTE.get(name)
    return f"{doc} {note}" if note else doc


def regenerate(schema: dict[str, Any], facts: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The schema with its SDK-derived parts replaced, and notes for a person."""
    out = json.loads(json.dumps(schema))  # a deep copy
    notes: list[str] = []
    defs = out["$defs"]
    current = defs.setdefault("current_model", {"type": "string"})
    current["enum"] = list(facts["models"])
    current["x-sdk-version"] = facts["version"]
    if "evaluation_model" in defs and facts.get("evaluation_models"):
        defs["evaluation_model"]["enum"] = list(facts["evaluation_models"])
        defs["evaluation_model"]["x-sdk-version"] = facts["version"]
    legacy = defs["legacy_model"]["enum"]
    defs["model"]["enum"] = [*facts["models"], *[m for m in legacy if m not in facts["models"]]]

    spec = defs["spec"]
    props: dict[str, Any] = spec["properties"]
    for name in props:
        if name not in facts["fields"] and name not in REQUIRED_ALTERNATIVES.values():
            notes.append(f"field {name!r} is in the schema but not in the SDK's RunCreateParams")
    for name, kind in facts["fields"].items():
        prop = props.setdefault(name, {})
        if name not in schema["$defs"]["spec"]["properties"]:
            notes.append(f"added field {name!r} from the SDK")
        if name in MODEL_FIELDS:
            for key in ("type", "enum", "allOf"):
                prop.pop(key, None)
            prop["$ref"] = "#/$defs/model"
        else:
            prop.pop("$ref", None)
            prop.update(kind)
        doc = facts["docs"].get(name)
        if doc:
            prop["description"] = _description(name, doc)
        if doc and doc.lower().startswith("use ") and " instead" in doc.lower():
            prop["deprecated"] = True
        else:
            prop.pop("deprecated", None)
        prop.pop("default", None)  # defaults belong to the API and change with it
    spec["required"] = [
        name
        for name in props
        if name in facts["required"] and REQUIRED_ALTERNATIVES.get(name) not in props
    ]
    return out, notes


def spec_sdk_facts() -> dict[str, Any]:
    """What the SDK says about the create-spec body: fields, types, docs."""
    from dataframer.types.dataframer.spec_create_params import SpecCreateParams

    hints = typing.get_type_hints(SpecCreateParams, include_extras=True)
    docs = field_docs(SpecCreateParams)
    fields: dict[str, Any] = {}
    for name, hint in hints.items():
        key = SPEC_FIELD_NAMES.get(name, name)
        if key is not None:
            fields[key] = {**json_type(hint), "x-sdk-field": name, "doc": docs.get(name, "")}
    return {"fields": fields}


def regenerate_spec(
    schema: dict[str, Any], facts: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The Spec manifest schema with its create options replaced by the SDK's."""
    out = json.loads(json.dumps(schema))
    notes: list[str] = []
    spec = out["$defs"]["spec"]
    old: dict[str, Any] = spec["properties"]
    for name in old:
        if name not in facts["fields"] and name not in SPEC_OWN_FIELDS:
            notes.append(f"Spec field {name!r} is in the schema but not in SpecCreateParams")
    props: dict[str, Any] = {}
    # The spec's source first (what it is made from), then the options in the SDK's order.
    ordered = sorted(facts["fields"].items(), key=lambda kv: kv[0] not in SPEC_SOURCES)
    for name, kind in ordered:
        prop = dict(old.get(name, {}))
        if name not in old:
            notes.append(f"added Spec field {name!r} from the SDK")
        for key in ("type", "enum", "items", "uniqueItems"):
            prop.pop(key, None)
        prop.update({k: v for k, v in kind.items() if k != "doc"})
        if kind["doc"]:
            sent = kind["x-sdk-field"]
            prop["description"] = kind["doc"] + (f" Sent as `{sent}`." if sent != name else "")
        props[name] = prop
    for name in SPEC_OWN_FIELDS:
        props[name] = old[name]
    spec["properties"] = props
    return out, notes


def regenerate_project(project: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """dfr.yaml's schema with its copy of the model list equal to the manifest schema's."""
    out: dict[str, Any] = json.loads(json.dumps(project))
    out["$defs"]["model"]["enum"] = list(manifest["$defs"]["model"]["enum"])
    return out


def changes(old: Any, new: Any, where: str = "") -> list[str]:
    """What differs from `old` to `new`, one readable line each (JSON pointer first)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            here = f"{where}/{key}"
            if key not in new:
                out.append(f"{here}: the SDK no longer has it")
            elif key not in old:
                out.append(f"{here}: new from the SDK: {json.dumps(new[key])[:200]}")
            else:
                out.extend(changes(old[key], new[key], here))
        return out
    if old == new:
        return []
    if isinstance(old, list) and isinstance(new, list):
        added = [x for x in new if x not in old]
        dropped = [x for x in old if x not in new]
        out = [f"{where}: the SDK adds {json.dumps(x)}" for x in added]
        out += [f"{where}: the SDK drops {json.dumps(x)}" for x in dropped]
        return out or [f"{where}: the same values in another order"]
    return [f"{where}: {json.dumps(old)} -> {json.dumps(new)}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if stale")
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    parser.add_argument("--project-schema", type=Path, default=PROJECT_SCHEMA)
    parser.add_argument("--spec-schema", type=Path, default=SPEC_SCHEMA)
    args = parser.parse_args(argv)
    schema = json.loads(args.schema.read_text(encoding="utf-8"))
    project = json.loads(args.project_schema.read_text(encoding="utf-8"))
    spec_schema = json.loads(args.spec_schema.read_text(encoding="utf-8"))
    new, notes = regenerate(schema, sdk_facts())
    new_project = regenerate_project(project, new)
    new_spec, spec_notes = regenerate_spec(spec_schema, spec_sdk_facts())
    for note in [*notes, *spec_notes]:
        print(f"note: {note}", file=sys.stderr)
    files = [
        (args.schema, schema, new),
        (args.project_schema, project, new_project),
        (args.spec_schema, spec_schema, new_spec),
    ]
    if args.check:
        stale = 0
        for path, old, fresh in files:
            if fresh != old:
                stale += 1
                print(f"{path}: out of date with the installed SDK:", file=sys.stderr)
                for line in changes(old, fresh):
                    print(f"  {line}", file=sys.stderr)
        if stale:
            print("run: python scripts/sync_sdk_schema.py", file=sys.stderr)
        return 1 if stale else 0
    for path, _old, fresh in files:
        path.write_text(json.dumps(fresh, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
