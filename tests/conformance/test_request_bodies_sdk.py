"""Every create body dfr builds type-checks against the SDK's `RunCreateParams`.

The body is built by `Manifest.body` (the only place a request body is made)
from a manifest that `dfr validate` accepts. Manifests are drawn from the
manifest schema itself (every field, every enum value, current models), so a
schema that allowed a value the SDK refuses, or a body builder that added,
renamed or retyped a field, fails here. Models of the old reference page are
left out: the current API refuses them, and dfr says so with a warning.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.manifests import Manifest
from reconciler.schema import manifest_schema, problems

dataframer = pytest.importorskip("dataframer")
pydantic = pytest.importorskip("pydantic")

from dataframer.types.dataframer.run_create_params import RunCreateParams  # noqa: E402

ADAPTER = pydantic.TypeAdapter(RunCreateParams)
SCHEMA = manifest_schema()
# spec_ref names a Spec manifest instead of spec_id and is never sent: the plan
# resolves it to spec_id (tests/unit/test_specplan.py).
PROPS: dict[str, Any] = {
    k: v for k, v in SCHEMA["$defs"]["spec"]["properties"].items() if k != "spec_ref"
}
CURRENT: list[str] = SCHEMA["$defs"]["current_model"]["enum"]


def _values(name: str, prop: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values the schema allows for one field (current models for the model fields)."""
    if prop.get("$ref") == "#/$defs/model":
        return st.sampled_from(CURRENT)
    if name == "spec_id":
        return st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
    kind = prop.get("type")
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    if kind == "integer":
        return st.integers(prop.get("minimum", -(10**6)), prop.get("maximum", 10**6))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        items = prop["items"]
        inner = st.sampled_from(items["enum"]) if "enum" in items else st.text(min_size=1)
        return st.lists(inner, unique=True, max_size=4)
    raise AssertionError(f"no strategy for {name}: {prop}")


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    required = ["spec_id", *SCHEMA["$defs"]["spec"]["required"]]
    optional = [n for n in PROPS if n not in required]
    chosen = draw(st.lists(st.sampled_from(optional), unique=True))
    return {n: draw(_values(n, PROPS[n])) for n in [*required, *chosen]}


def _manifest_doc(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": {"name": "m"},
        "spec": spec,
    }


@given(specs())
def test_every_body_of_a_valid_manifest_type_checks_against_run_create_params(
    spec: dict[str, Any],
) -> None:
    assert list(problems(_manifest_doc(spec))) == []  # dfr validate accepts it
    body = Manifest("m", spec).body
    assert set(body) <= set(RunCreateParams.__annotations__)
    ADAPTER.validate_python(body, strict=True)
    assert body == spec  # sent as written: nothing added, renamed or dropped


def test_a_legacy_model_is_valid_for_dfr_and_refused_by_the_sdk() -> None:
    spec = {
        "spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "number_of_samples": 1,
        "generation_model": "anthropic/claude-sonnet-4-5",
    }
    assert list(problems(_manifest_doc(spec))) == []  # accepted, with a warning elsewhere
    with pytest.raises(pydantic.ValidationError, match="generation_model"):
        ADAPTER.validate_python(Manifest("m", spec).body, strict=True)
