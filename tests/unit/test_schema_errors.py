"""Schema errors worded for people, placed on the right key or value; properties."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler import schema
from reconciler.diagnostics import Diagnostic
from reconciler.validate import validate_paths

SPEC_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

# Examples per property test: 200, or more under HYPOTHESIS_PROFILE=thorough.
PROPERTY_EXAMPLES = max(200, settings().max_examples)


def manifest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": {"name": "run"},
        "spec": {"spec_id": SPEC_ID, "number_of_samples": 10, **spec},
    }


def messages(instance: Any) -> list[str]:
    return [p.message for p in schema.problems(instance)]


def check(tmp_path: Path, text: str) -> list[str]:
    """`dfr validate FILE` as text lines (LINE:COL: severity: message)."""
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    result = validate_paths([str(path)])
    return [f"{d.line}:{d.column}: {d.severity}: {d.message}" for d in result.diagnostics]


HEAD = "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata:\n  name: run\n"
BODY = HEAD + f"spec:\n  spec_id: {SPEC_ID}\n  number_of_samples: 10\n"


# -- the schema itself ---------------------------------------------------------------


def test_schema_is_draft_2020_12_with_id_and_valid() -> None:
    import jsonschema

    doc = schema.manifest_schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].startswith("https://")
    jsonschema.Draft202012Validator.check_schema(doc)


def test_the_schema_states_no_defaults() -> None:
    # Defaults belong to the API and change with it; dfr records what a run used.
    assert [k for k, p in schema.spec_schema()["properties"].items() if "default" in p] == []


def test_valid_manifest_has_no_problems() -> None:
    assert messages(manifest()) == []


def test_integers_are_strict() -> None:
    assert messages(manifest(number_of_samples=100.0)) == [
        "spec.number_of_samples must be an integer, not number 100.0"
    ]
    assert messages(manifest(number_of_samples=True)) == [
        "spec.number_of_samples must be an integer, not boolean true"
    ]


# -- wording ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"number_of_samples": 0}, "spec.number_of_samples must be at least 1, not 0"),
        ({"number_of_samples": 20001}, "spec.number_of_samples must be at most 20000, not 20001"),
        ({"max_revision_cycles": 6}, "spec.max_revision_cycles must be at most 5, not 6"),
        ({"spec_version": 0}, "spec.spec_version must be at least 1, not 0"),
        ({"max_examples_in_prompt": 0}, "spec.max_examples_in_prompt must be at least 1, not 0"),
        ({"number_of_samples": "10"}, "spec.number_of_samples must be an integer, not string '10'"),
        ({"enable_revisions": "yes"}, "spec.enable_revisions must be true or false, not string"),
        ({"number_of_samples": None}, "must be an integer, not null (an empty value)"),
        ({"spec_id": "abc"}, "spec.spec_id must be a UUID like"),
        ({"spec_id": 5}, "spec.spec_id must be a string, not integer 5"),
        ({"generation_model": "anthropic/claude-sonet-4-5"}, "did you mean 'anthropic/claude-"),
        (
            {"revision_model": "GPT-4"},
            "is not allowed; the current API (pydataframer 0.19.2) offers: "
            "anthropic/claude-fable-5-1-thinking, anthropic/claude-opus-5-5-thinking,",
        ),
        ({"seed_shuffling_level": "Field"}, "did you mean 'field'?"),
        ({"seed_shuffling_level": "random"}, "allowed: none, sample, field, prompt"),
        ({"genration_model": "x"}, "unknown key 'genration_model' in spec; did you mean"),
        ({"zzz": 1}, "unknown key 'zzz' in spec (allowed: spec_id, number_of_samples,"),
    ],
)
def test_spec_wording(spec: dict[str, Any], expected: str) -> None:
    found = messages(manifest(**spec))
    assert len(found) == 1, found
    assert expected in found[0]


def test_long_string_values_are_shortened_in_messages() -> None:
    (message,) = messages(manifest(seed_shuffling_level="x" * 500))
    assert "..." in message and len(message) < 200


def test_missing_keys_each_named_at_their_mapping() -> None:
    doc = manifest()
    del doc["spec"]["spec_id"], doc["spec"]["number_of_samples"], doc["kind"]
    problems = list(schema.problems(doc))
    assert [(p.path, p.message) for p in problems] == [
        ((), "the document is missing the required key 'kind'"),
        (("spec",), "spec is missing the required key 'spec_id'"),
        (("spec",), "spec is missing the required key 'number_of_samples'"),
    ]


def test_header_near_misses() -> None:
    doc = manifest()
    doc["apiVersion"], doc["kind"] = "dataframer.ai/v2", "generationrun"
    assert messages(doc) == [
        "apiVersion: string 'dataframer.ai/v2' is not allowed; did you mean 'dataframer.ai/v1'?",
        "kind: string 'generationrun' is not allowed; did you mean 'GenerationRun'?",
    ]
    doc["apiVersion"], doc["kind"] = "v1", "Job"
    assert messages(doc) == [
        "apiVersion: string 'v1' is not allowed; it must be 'dataframer.ai/v1'",
        "kind: string 'Job' is not allowed; it must be 'GenerationRun'",
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Upper", "metadata.name 'Upper' is not a valid name: use 1 to 63 lowercase"),
        ("-lead", "is not a valid name"),
        ("trail-", "is not a valid name"),
        ("under_score", "is not a valid name"),
        ("a" * 64, "metadata.name must be at most 63 characters long"),
        (5, "metadata.name must be a string, not integer 5"),
    ],
)
def test_name_wording(name: Any, expected: str) -> None:
    doc = manifest()
    doc["metadata"]["name"] = name
    assert expected in " | ".join(messages(doc))


def test_empty_name_says_one_character() -> None:
    doc = manifest()
    doc["metadata"]["name"] = ""
    assert "metadata.name must be at least 1 character long" in messages(doc)


@pytest.mark.parametrize(
    ("labels", "path", "expected"),
    [
        ({"-x": "a"}, ("metadata", "labels", "-x"), "metadata.labels key '-x' is not valid"),
        ({"a": 1}, ("metadata", "labels", "a"), "metadata.labels.a must be a string, not integer"),
        ({"a": "x" * 257}, ("metadata", "labels", "a"), "must be at most 256 characters long"),
        (["a"], ("metadata", "labels"), "metadata.labels must be a mapping, not a list"),
    ],
)
def test_label_wording(labels: Any, path: tuple[str, ...], expected: str) -> None:
    doc = manifest()
    doc["metadata"]["labels"] = labels
    (problem,) = schema.problems(doc)
    assert problem.path == path
    assert expected in problem.message


def test_unknown_keys_at_every_level_suggest() -> None:
    doc = manifest()
    doc["metdata"] = {}
    doc["metadata"]["lables"] = {}
    doc["spec"]["numbr_of_samples"] = 1
    found = messages(doc)
    assert "unknown key 'metdata' at the top level; did you mean 'metadata'?" in found
    assert "unknown key 'lables' in metadata; did you mean 'labels'?" in found
    assert "unknown key 'numbr_of_samples' in spec; did you mean 'number_of_samples'?" in found


def test_not_a_mapping() -> None:
    assert messages(manifest() | {"spec": []}) == ["spec must be a mapping, not a list"]
    assert messages(manifest() | {"metadata": None}) == [
        "metadata must be a mapping, not null (an empty value)"
    ]


def test_suggest() -> None:
    assert schema.suggest("Sample", ["none", "sample"]) == "; did you mean 'sample'?"
    assert schema.suggest("smaple", ["none", "sample"]) == "; did you mean 'sample'?"
    assert schema.suggest("zzz", ["none", "sample"]) == ""


# -- placement in the file -------------------------------------------------------------


def test_value_errors_point_at_the_value_and_key_errors_at_the_key(tmp_path: Path) -> None:
    text = BODY + "  max_revision_cycles: 9\n  enable_revisons: true\n"
    assert check(tmp_path, text) == [
        "8:24: error: spec.max_revision_cycles must be at most 5, not 9",
        "9:3: error: unknown key 'enable_revisons' in spec; did you mean 'enable_revisions'?",
    ]


def test_missing_key_points_at_the_mapping_key(tmp_path: Path) -> None:
    text = HEAD + f"spec:\n  spec_id: {SPEC_ID}\n"
    assert check(tmp_path, text) == [
        "5:1: error: spec is missing the required key 'number_of_samples'"
    ]


def test_yaml11_explanations(tmp_path: Path) -> None:
    text = BODY + "  enable_revisions: no\n  spec_version: 1_000\n  max_examples_in_prompt: 1:30\n"
    assert check(tmp_path, text) == [
        "8:21: error: spec.enable_revisions must be true or false, not string 'no' (dfr reads "
        "YAML 1.2, where 'no' is a string; YAML 1.1 tools read it as false: write it as false)",
        "9:17: error: spec.spec_version must be an integer, not string '1_000' (dfr reads YAML "
        "1.2, where '1_000' is a string; YAML 1.1 tools read it as a number: write it as digits)",
        "10:27: error: spec.max_examples_in_prompt must be an integer, not string '1:30' (dfr "
        "reads YAML 1.2, where '1:30' is a string; YAML 1.1 tools read it as a number: write it "
        "as digits)",
    ]


def test_quoted_yaml11_lookalike_gets_no_explanation(tmp_path: Path) -> None:
    (line,) = check(tmp_path, BODY + "  enable_revisions: 'no'\n")
    assert line.endswith("not string 'no'")


def test_float_written_for_an_integer(tmp_path: Path) -> None:
    lines = check(tmp_path, BODY.replace("number_of_samples: 10", "number_of_samples: 1e4"))
    assert lines == ["7:22: error: spec.number_of_samples must be an integer, not number 10000.0"]


def test_an_unknown_model_lists_the_current_ones_and_names_extra_models() -> None:
    (message,) = messages(manifest(generation_model="acme/new-model-9"))
    for model in schema.current_models():
        assert model in message
    assert "anthropic/claude-sonnet-4-5," not in message  # the old page's are not advertised
    assert message.endswith(
        "; to use a model newer than this dfr release, add it to extra_models: in dfr.yaml"
    )


def test_no_effect_warnings_point_at_the_value(tmp_path: Path) -> None:
    lines = check(tmp_path, BODY + "  revision_model: anthropic/claude-haiku-4-5\n")
    assert lines == [
        "8:19: warning: spec.revision_model has no effect: no revision or filtering runs (spec "
        "sets neither revision_types nor filtering_types); add one of them, or remove "
        "revision_model"
    ]
    assert (
        check(tmp_path, BODY + "  revision_types: [consistency]\n  max_revision_cycles: 3\n") == []
    )


def test_all_errors_of_all_documents(tmp_path: Path) -> None:
    bad = BODY.replace("number_of_samples: 10", "number_of_samples: 0")
    text = bad + "---\n" + bad.replace("name: run", "name: other").replace(SPEC_ID, "x")
    assert check(tmp_path, text) == [
        "7:22: error: spec.number_of_samples must be at least 1, not 0",
        "14:12: error: spec.spec_id must be a UUID like 3c90c3cc-0d44-4b50-8888-8dd25736052a, "
        "not 'x'",
        "15:22: error: spec.number_of_samples must be at least 1, not 0",
    ]


# -- properties ---------------------------------------------------------------------------


class Dumper12(yaml.SafeDumper):
    """safe_dump, taught the YAML 1.2 core schema's number forms.

    PyYAML writes YAML 1.1, so it leaves strings such as `1e4` or `0o17` plain:
    a YAML 1.1 reader keeps them strings, but YAML 1.2 (dfr) reads numbers. A
    YAML 1.2-aware writer quotes them; so does this one.
    """


Dumper12.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)
Dumper12.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:0o[0-7]+|0x[0-9a-fA-F]+)$"), ["0"]
)

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]{0,61}[A-Za-z0-9])?"

names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
models = st.sampled_from(schema.current_models())
optional: dict[str, st.SearchStrategy[Any]] = {
    "spec_version": st.integers(1, 10**9),
    "generation_model": models,
    "outline_model": models,
    "seed_shuffling_level": st.sampled_from(["none", "sample", "field", "prompt"]),
    "max_examples_in_prompt": st.integers(1, 10**6),
    "unified_multifield": st.booleans(),
}


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "spec_id": str(draw(st.uuids())),
        "number_of_samples": draw(st.integers(1, 20000)),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    if draw(st.booleans()):
        # Revision settings only with revisions on: otherwise they warn.
        spec["revision_types"] = draw(
            st.lists(st.sampled_from(["coherence_flow", "consistency"]), unique=True, min_size=1)
        )
        if draw(st.booleans()):
            spec["revision_model"] = draw(models)
        if draw(st.booleans()):
            spec["max_revision_cycles"] = draw(st.integers(1, 5))
    for budget, model_field in schema.THINKING_BUDGETS.items():
        # A budget only with a -thinking model: otherwise it warns.
        model = spec.get(model_field)
        if isinstance(model, str) and schema.is_thinking(model) and draw(st.booleans()):
            spec[budget] = draw(st.integers(1, 10**6))
    metadata: dict[str, Any] = {"name": draw(names)}
    if draw(st.booleans()):
        metadata["labels"] = draw(
            st.dictionaries(
                st.from_regex(LABEL_KEY, fullmatch=True),
                st.text(max_size=256),
                max_size=4,
            )
        )
    return {
        "apiVersion": "dataframer.ai/v1",
        "kind": "GenerationRun",
        "metadata": metadata,
        "spec": spec,
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props")


def _dump(doc: Any) -> str:
    # Not allow_unicode=True: PyYAML then writes U+0085 (NEL) raw inside a quoted
    # scalar, where every YAML reader, PyYAML's own included, folds it to a space.
    return yaml.dump(doc, Dumper=Dumper12, sort_keys=False)


@settings(max_examples=PROPERTY_EXAMPLES)
@given(valid_manifests())
@example(manifest() | {"metadata": {"name": "1e4", "labels": {"a": "0o17", "b": "no"}}})
@example(manifest() | {"metadata": {"name": "0", "labels": {"0": "\x85"}}})
def test_generated_valid_manifests_validate_clean_and_round_trip(
    workdir: Path, doc: dict[str, Any]
) -> None:
    path = workdir / "valid.yaml"
    path.write_text(_dump(doc), encoding="utf-8")
    result = validate_paths([str(path)])
    assert result.diagnostics == []
    (m,) = result.manifests
    assert m.name == doc["metadata"]["name"]
    assert m.spec == doc["spec"]
    assert m.labels == doc["metadata"].get("labels", {})
    uuid.UUID(m.spec["spec_id"])


bad_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
paths = st.sampled_from(
    [
        ("apiVersion",),
        ("kind",),
        ("metadata",),
        ("metadata", "name"),
        ("metadata", "labels"),
        ("metadata", "surprise"),
        ("spec",),
        *[("spec", key) for key in schema.spec_schema()["properties"]],
        ("spec", "surprise"),
        ("surprise",),
    ]
)


def _within_file(text: str, d: Diagnostic) -> bool:
    lines = text.splitlines() or [""]
    if not 1 <= d.line <= len(lines):
        return False
    return 1 <= d.column <= len(lines[d.line - 1]) + 1


@settings(max_examples=PROPERTY_EXAMPLES)
@given(valid_manifests(), st.lists(st.tuples(paths, bad_values), min_size=1, max_size=4))
@example(manifest(), [(("spec", "number_of_samples"), None)])
@example(manifest(), [(("metadata",), None)])
def test_every_schema_error_lies_within_the_file(
    workdir: Path, doc: dict[str, Any], changes: list[tuple[tuple[str, ...], Any]]
) -> None:
    for path, value in changes:
        target = doc
        for step in path[:-1]:
            if not isinstance(target.get(step), dict):
                target[step] = {}
            target = target[step]
        target[path[-1]] = value
    text = _dump(doc)
    file = workdir / "mutated.yaml"
    file.write_text(text, encoding="utf-8")
    result = validate_paths([str(file)])
    for d in result.diagnostics:
        assert _within_file(text, d), (d, text)
    if schema.validator().is_valid(yaml.safe_load(text)):
        assert result.errors == 0
    else:
        assert result.errors >= 1
