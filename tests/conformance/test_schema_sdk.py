"""The manifest schema against the official SDK (pydataframer), read straight from its types.

The SDK's `RunCreateParams` is the oracle for the create body: its keys, which
are Required, each field's Literal values and annotation, and the model list
of the three model fields. `sdk_differences` compares the committed schema
with it and says each difference in words; the tests assert there is none,
and that a new SDK model makes both it and `scripts/sync_sdk_schema.py --check`
name the model. Skipped only when the SDK is not installed.
"""

from __future__ import annotations

import collections.abc
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from conformance_helpers import load_script

params = pytest.importorskip("dataframer.types.dataframer.run_create_params")
RunCreateParams: Any = params.RunCreateParams
# The SDK's own spelling (typing's from Python 3.11, typing_extensions' before).
extensions = pytest.importorskip("typing_extensions")
REQUIRED: Any = extensions.Required
NOT_REQUIRED: Any = extensions.NotRequired

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "reconciler" / "schemas" / "generation-run.schema.json"
SYNC = REPO / "scripts" / "sync_sdk_schema.py"
MODEL_FIELDS = ("generation_model", "outline_model", "revision_model")
NEW = "acme/new-model-9"
#: A manifest may name its spec by `spec_ref` (a Spec manifest) instead of the
#: SDK's required `spec_id`; the plan resolves it, so it is never sent.
ALTERNATIVES = {"spec_ref": "spec_id"}


def committed() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return doc


def hints() -> dict[str, Any]:
    return typing.get_type_hints(RunCreateParams, include_extras=True)


def unwrap(hint: Any) -> Any:
    """`Required[X]` / `NotRequired[X]` -> X."""
    while typing.get_origin(hint) in (REQUIRED, NOT_REQUIRED):
        hint = typing.get_args(hint)[0]
    return hint


def literal(hint: Any) -> list[Any] | None:
    hint = unwrap(hint)
    return list(typing.get_args(hint)) if typing.get_origin(hint) is Literal else None


def _list_words(where: str, ours: list[Any], sdks: list[Any]) -> list[str]:
    out = [f"{where}: the SDK lists {v!r}, the schema does not" for v in sdks if v not in ours]
    out += [f"{where}: the schema lists {v!r}, the SDK does not" for v in ours if v not in sdks]
    if not out and ours != sdks:
        out.append(f"{where}: the same values as the SDK's, in another order")
    return out


# -- the comparison ---------------------------------------------------------------------------


def model_differences(doc: dict[str, Any], sdk: dict[str, Any]) -> list[str]:
    """$defs/current_model against each model field's Literal; the fields refer to $defs/model."""
    defs = doc["$defs"]
    out: list[str] = []
    for name in MODEL_FIELDS:
        values = literal(sdk[name]) if name in sdk else None
        if values is None:
            out.append(f"{name}: the SDK has no Literal list of models for it")
            continue
        out += _list_words(
            f"$defs/current_model (the SDK's {name})", defs["current_model"]["enum"], values
        )
        prop = defs["spec"]["properties"].get(name, {})
        if prop.get("$ref") != "#/$defs/model":
            out.append(f"spec.{name}: refers to {prop.get('$ref')!r}, not '#/$defs/model'")
    missing = [m for m in defs["current_model"]["enum"] if m not in defs["model"]["enum"]]
    out += [f"$defs/model: does not accept the current model {m!r}" for m in missing]
    return out


def field_differences(doc: dict[str, Any], sdk: dict[str, Any]) -> list[str]:
    """$defs/spec's keys and required ones against RunCreateParams'."""
    spec = doc["$defs"]["spec"]
    ours, sdks = [k for k in spec["properties"] if k not in ALTERNATIVES], list(sdk)
    # The SDK's required key that another key may stand in for: required unless that one is given.
    stand_in = [v for k, v in ALTERNATIVES.items() if k in spec["properties"]]
    spec = {**spec, "required": [*stand_in, *spec["required"]]}
    out = [
        f"field {k!r}: in the SDK's RunCreateParams, not in $defs/spec"
        for k in sdks
        if k not in ours
    ]
    out += [
        f"field {k!r}: in $defs/spec, not in the SDK's RunCreateParams"
        for k in ours
        if k not in sdks
    ]
    required = [k for k, h in sdk.items() if typing.get_origin(h) is REQUIRED]
    out += [
        f"field {k!r}: the SDK requires it, the schema does not"
        for k in required
        if k not in spec["required"]
    ]
    out += [
        f"field {k!r}: the schema requires it, the SDK does not"
        for k in spec["required"]
        if k not in required
    ]
    return out


def _type_problem(where: str, prop: dict[str, Any], hint: Any) -> list[str]:
    """Why the JSON Schema `prop` does not fit the SDK annotation `hint` ([] if it does)."""
    hint = unwrap(hint)
    origin = typing.get_origin(hint)
    simple = {bool: "boolean", int: "integer", str: "string", float: "number"}
    if hint in simple:
        want = simple[hint]
        return (
            []
            if prop.get("type") == want
            else [f"{where}: type {prop.get('type')!r}, the SDK's is {want!r}"]
        )
    if origin is Literal:
        values = list(typing.get_args(hint))
        out = (
            []
            if prop.get("type") == "string"
            else [f"{where}: type {prop.get('type')!r}, the SDK's is a Literal of strings"]
        )
        return out + _list_words(f"{where} enum", list(prop.get("enum", [])), values)
    if (
        isinstance(origin, type)
        and issubclass(origin, collections.abc.Sequence)
        and typing.get_args(hint)
    ):
        if prop.get("type") != "array":
            return [f"{where}: type {prop.get('type')!r}, the SDK's is a list"]
        return _type_problem(f"{where}[]", prop.get("items", {}), typing.get_args(hint)[0])
    return [f"{where}: the SDK's annotation {hint!r} has no rule in this test"]


def type_differences(doc: dict[str, Any], sdk: dict[str, Any]) -> list[str]:
    """Each field's JSON type and enum against the SDK's annotation (models: their own check)."""
    props = doc["$defs"]["spec"]["properties"]
    out: list[str] = []
    for name, hint in sdk.items():
        if name in props and name not in MODEL_FIELDS:
            out += _type_problem(f"spec.{name}", props[name], hint)
    return out


def sdk_differences(doc: dict[str, Any]) -> list[str]:
    """Every difference between the manifest schema `doc` and the installed SDK, in words."""
    sdk = hints()
    return [*model_differences(doc, sdk), *field_differences(doc, sdk), *type_differences(doc, sdk)]


# -- (i)-(iii): the schema is the SDK's ----------------------------------------------------------


def test_current_models_are_the_sdks_and_the_three_lists_are_one() -> None:
    sdk = hints()
    assert model_differences(committed(), sdk) == []
    lists = [literal(sdk[name]) for name in MODEL_FIELDS]
    assert lists[0] == lists[1] == lists[2]
    assert committed()["$defs"]["current_model"]["enum"] == lists[0]


def test_the_spec_has_the_sdks_fields_and_required_ones() -> None:
    doc, sdk = committed(), hints()
    assert field_differences(doc, sdk) == []
    assert set(doc["$defs"]["spec"]["properties"]) - set(ALTERNATIVES) == set(sdk)
    assert sorted(doc["$defs"]["spec"]["required"]) == ["number_of_samples"]
    # spec_id is required unless spec_ref stands in for it (the schema's if/else).
    assert {"if": {"required": ["spec_ref"]}, "else": {"required": ["spec_id"]}} in doc["$defs"][
        "spec"
    ]["allOf"]


def test_every_field_has_the_sdks_json_type_and_enum() -> None:
    assert type_differences(committed(), hints()) == []


def test_the_sdk_version_is_the_installed_one() -> None:
    version = committed()["$defs"]["current_model"]["x-sdk-version"]
    assert version == importlib.metadata.version("pydataframer")


# -- (iv): the old page's models ------------------------------------------------------------------


def test_legacy_models_are_a_list_of_their_own_kept_out_of_the_current_one() -> None:
    defs = committed()["$defs"]
    current, legacy = defs["current_model"]["enum"], defs["legacy_model"]["enum"]
    sdk_models = literal(hints()["generation_model"])
    assert sdk_models is not None
    assert legacy and legacy != current
    for model in legacy:
        if model not in sdk_models:
            assert model not in current, model
    assert defs["model"]["enum"] == [*current, *[m for m in legacy if m not in current]]


# -- (v), (vi): the sync script ------------------------------------------------------------------


def sync_module() -> ModuleType:
    return load_script(SYNC, "sync_sdk_schema_under_test")


def test_the_committed_schema_is_what_the_sync_script_makes() -> None:
    proc = subprocess.run(
        [sys.executable, str(SYNC), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_a_new_sdk_model_is_named_by_the_comparison_and_the_sync_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    models = literal(hints()["generation_model"])
    assert models is not None
    grown = Literal[tuple([*models, NEW])]  # type: ignore[valid-type]
    for name in MODEL_FIELDS:
        monkeypatch.setitem(RunCreateParams.__annotations__, name, grown)

    found = sdk_differences(committed())
    assert found == [
        f"$defs/current_model (the SDK's {name}): the SDK lists {NEW!r}, the schema does not"
        for name in MODEL_FIELDS
    ]
    before = SCHEMA.read_bytes()
    assert sync_module().main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f'/$defs/current_model/enum: the SDK adds "{NEW}"' in err
    assert "out of date with the installed SDK" in err
    assert SCHEMA.read_bytes() == before  # --check never writes


def test_a_changed_field_is_named_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        RunCreateParams.__annotations__, "seed_shuffling_level", Literal["none", "sample", "chaos"]
    )
    monkeypatch.setitem(RunCreateParams.__annotations__, "temperature", float)
    assert sdk_differences(committed()) == [
        "field 'temperature': in the SDK's RunCreateParams, not in $defs/spec",
        "spec.seed_shuffling_level enum: the SDK lists 'chaos', the schema does not",
        "spec.seed_shuffling_level enum: the schema lists 'field', the SDK does not",
        "spec.seed_shuffling_level enum: the schema lists 'prompt', the SDK does not",
    ]
