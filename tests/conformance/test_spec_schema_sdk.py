"""The Spec manifest schema against the official SDK's `SpecCreateParams`.

`schemas/spec.schema.json`'s create options are the SDK's fields (every one but
`name`, which is `metadata.name`; `generation_objectives` written `objectives`),
with the SDK's types and enums; `scripts/sync_sdk_schema.py --check` says when
the SDK moved, and what `create_body` sends type-checks against the SDK.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest
from conformance_helpers import load_script

params = pytest.importorskip("dataframer.types.dataframer.spec_create_params")
pydantic = pytest.importorskip("pydantic")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reconciler.specs_check import create_body, spec_manifest_schema  # noqa: E402

SpecCreateParams = params.SpecCreateParams
REPO = Path(__file__).resolve().parents[2]
SYNC = REPO / "scripts" / "sync_sdk_schema.py"
SPEC_SCHEMA = REPO / "reconciler" / "schemas" / "spec.schema.json"
OWN = ("content", "content_file")  # dfr's: the content, never in the create body
RENAMED = {"objectives": "generation_objectives"}


def sync_module() -> ModuleType:
    return load_script(SYNC, "sync_sdk_schema_spec_test")


def props() -> dict[str, Any]:
    result: dict[str, Any] = spec_manifest_schema()["$defs"]["spec"]["properties"]
    return result


def test_the_create_options_are_the_sdks_fields_but_name() -> None:
    sdk = set(SpecCreateParams.__annotations__) - {"name"}
    ours = {RENAMED.get(k, k) for k in props() if k not in OWN}
    assert ours == sdk


def test_each_option_has_the_sdks_type_and_enum() -> None:
    hints = typing.get_type_hints(SpecCreateParams)
    for key, prop in props().items():
        if key in OWN:
            continue
        hint = hints[RENAMED.get(key, key)]
        if typing.get_origin(hint) is Literal:
            assert prop["enum"] == list(typing.get_args(hint)), key
        else:
            want = {bool: "boolean", str: "string", int: "integer"}[hint]
            assert prop["type"] == want, key


def test_the_sync_check_names_a_field_the_sdk_added(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert sync_module().main(["--check"]) == 0
    monkeypatch.setitem(SpecCreateParams.__annotations__, "spec_temperature", bool)
    before = SPEC_SCHEMA.read_bytes()
    assert sync_module().main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "spec.schema.json: out of date with the installed SDK" in err
    assert "/$defs/spec/properties/spec_temperature: new from the SDK" in err
    assert SPEC_SCHEMA.read_bytes() == before  # --check never writes
    copies = {}
    for name in ("generation-run", "project", "spec"):
        copies[name] = tmp_path / f"{name}.schema.json"
        copies[name].write_bytes((SPEC_SCHEMA.parent / f"{name}.schema.json").read_bytes())
    args = ["--schema", str(copies["generation-run"]), "--project-schema"]
    args += [str(copies["project"]), "--spec-schema", str(copies["spec"])]
    assert sync_module().main(args) == 0  # rewrites the copies only
    copy = copies["spec"]
    assert "spec_temperature" in json.loads(copy.read_text())["$defs"]["spec"]["properties"]


def _value(prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if prop.get("type") == "boolean":
        return st.booleans()
    return st.text(min_size=1, max_size=20)


@st.composite
def spec_bodies(draw: st.DrawFn) -> dict[str, Any]:
    options = [k for k in props() if k not in OWN and k not in ("objectives", "dataset_id")]
    chosen = draw(st.lists(st.sampled_from(options), unique=True))
    source = draw(st.sampled_from(["objectives", "dataset_id"]))
    keys = [source, *chosen]
    return {k: draw(_value(props()[k])) for k in keys}


@given(spec_bodies())
def test_every_create_body_type_checks_against_spec_create_params(body: dict[str, Any]) -> None:
    sent = create_body("tickets", body)
    assert next(iter(sent)) == "name" and sent["name"] == "tickets"
    assert "objectives" not in sent and "content" not in sent
    pydantic.TypeAdapter(SpecCreateParams).validate_python(sent, strict=True)
