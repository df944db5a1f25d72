"""The state file format: round trip, precise errors, versions, schema, fuzzing."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import StateCorruptError, StateError, StateVersionError
from reconciler.state import docschema, statefile
from reconciler.state.model import (
    Intent,
    OutputFile,
    OutputsRecord,
    PolicyRecord,
    RunRecord,
    State,
    policy_digest,
)

SRC = "dfr.state.json"

# Deterministic (derandomized) and quick by default so CI never flakes; explore
# with e.g. DFR_FUZZ_EXAMPLES=20000 (random seeds then) and keep what it finds
# in REGRESSIONS below.
_EXPLORE = int(os.environ.get("DFR_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_EXPLORE or 250,
    derandomize=not _EXPLORE,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def full_record(name: str = "a") -> RunRecord:
    return RunRecord(
        name=name,
        run_id="run-1",
        status="SUCCEEDED",
        spec={"spec_id": "s", "number_of_samples": 10, "nested": {"x": [1, 2.5, None]}},
        labels={"team": "support"},
        intent=Intent(id="i-1", body={"spec_id": "s"}, at="2026-01-01T00:00:00Z", replaces="r-0"),
        submitted_at="2026-01-01T00:00:01Z",
        created_at="2026-01-01T00:00:02Z",
        completed_at="2026-01-01T00:10:00Z",
        updated_at="2026-01-01T00:10:01Z",
        attempts=2,
        last_error={"message": "boom", "status_code": 503, "at": "2026-01-01T00:00:00Z"},
        failure_reason=None,
        samples_completed=10,
        samples_failed=0,
        total_cost=1.25,
        drift=None,
        previous_run_ids=["run-0"],
        used={"spec_version": 3, "generation_model": "m", "revision_model": None},
        source="dataframer/runs.yaml",
        api="https://df-api.dataframer.ai",
        outputs=OutputsRecord(
            path="data/support",
            files=(
                OutputFile("train/part-0.jsonl", 12, "a" * 64, "f-1"),
                OutputFile("README.md", 0, "e3" * 32, "f-2"),
            ),
            pulled_at="2026-01-01T00:11:00Z",
            run_id="run-1",
            patterns=("train/**", "*.md"),
        ),
    )


def state_with(*records: RunRecord, serial: int = 7) -> State:
    return State(
        format_version=statefile.FORMAT_VERSION,
        serial=serial,
        lineage="L-1",
        runs={r.name: r for r in records},
    )


def doc_of(state: State) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(statefile.dumps(state))
    return loaded


def corrupt_message(data: bytes | str) -> str:
    with pytest.raises(StateCorruptError) as info:
        statefile.loads(data if isinstance(data, bytes) else data.encode(), SRC)
    return info.value.message


# --------------------------------------------------------------------------- round trip


def test_round_trip_every_field() -> None:
    state = state_with(full_record("a"), RunRecord.new("b", now="t"))
    assert statefile.loads(statefile.dumps(state), SRC) == state


def test_dumps_is_deterministic_sorted_indented_with_newline() -> None:
    a = state_with(full_record("b"), full_record("a"))
    b = state_with(full_record("a"), full_record("b"))
    data = statefile.dumps(a)
    assert data == statefile.dumps(b)
    assert data.endswith(b"}\n") and data.startswith(b'{\n  "dfr_version"')
    doc = json.loads(data)
    assert list(doc) == sorted(doc)
    assert (
        doc["format_version"] == statefile.FORMAT_VERSION
        and doc["serial"] == 7
        and doc["lineage"] == "L-1"
    )


def test_dumps_is_ascii_even_for_unicode_and_lone_surrogates() -> None:
    rec = RunRecord.new("a", spec={"prompt": "héllo \U0001f600 \ud800"}, now="t")
    data = statefile.dumps(state_with(rec))
    data.decode("ascii")
    assert statefile.loads(data, SRC).runs["a"].spec == rec.spec


def test_integral_floats_are_read_as_ints() -> None:
    doc = doc_of(state_with(full_record()))
    doc["serial"] = 3.0
    doc["runs"]["a"]["attempts"] = 2.0
    doc["runs"]["a"]["total_cost"] = 2
    state = statefile.loads(json.dumps(doc), SRC)
    assert state.serial == 3 and isinstance(state.serial, int)
    rec = state.runs["a"]
    assert rec.attempts == 2 and isinstance(rec.attempts, int)
    assert rec.total_cost == 2.0 and isinstance(rec.total_cost, float)


def test_in_progress_in_file_reads_as_processing() -> None:
    doc = doc_of(state_with(full_record()))
    doc["runs"]["a"]["status"] = "IN_PROGRESS"
    assert statefile.loads(json.dumps(doc), SRC).runs["a"].status == "PROCESSING"


# --------------------------------------------------------------------------- errors


def _mutated(mutate: Any) -> str:
    doc = doc_of(state_with(full_record("foo")))
    mutate(doc)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["runs"]["foo"].__setitem__("run_id", 5),
            "dfr.state.json: runs.foo.run_id: expected a string or null, found an integer",
        ),
        (
            lambda d: d["runs"]["foo"].pop("spec"),
            "dfr.state.json: runs.foo: missing field 'spec'",
        ),
        (
            lambda d: d["runs"]["foo"].__setitem__("api_key", "sk-1"),
            "dfr.state.json: runs.foo: unknown field 'api_key'",
        ),
        (
            lambda d: d["runs"]["foo"]["previous_run_ids"].append(3),
            "dfr.state.json: runs.foo.previous_run_ids[1]: expected a string, found an integer",
        ),
        (
            lambda d: d["runs"]["foo"]["labels"].__setitem__("team", None),
            "dfr.state.json: runs.foo.labels.team: expected a string, found null",
        ),
        (
            lambda d: d["runs"]["foo"].__setitem__("attempts", -1),
            "dfr.state.json: runs.foo.attempts: must be at least 0, found -1",
        ),
        (
            lambda d: d["runs"]["foo"].__setitem__("attempts", True),
            "dfr.state.json: runs.foo.attempts: expected an integer, found a boolean",
        ),
        (
            lambda d: d["runs"]["foo"]["intent"].pop("id"),
            "dfr.state.json: runs.foo.intent: missing field 'id'",
        ),
        (
            lambda d: d.__setitem__("lineage", ""),
            "dfr.state.json: lineage: must not be empty",
        ),
        (
            lambda d: d.__setitem__("serial", "7"),
            "dfr.state.json: serial: expected an integer, found a string",
        ),
        (
            lambda d: d.__setitem__("runs", []),
            "dfr.state.json: runs: expected an object, found an array",
        ),
        (
            lambda d: d["runs"]["foo"].__setitem__("name", "bar"),
            "dfr.state.json: runs.foo.name: 'bar' does not match its key 'foo'",
        ),
        (
            lambda d: d["runs"].__setitem__("we ird\n", d["runs"].pop("foo")),
            "dfr.state.json: runs['we ird\\n'].name: 'foo' does not match its key 'we ird\\n'",
        ),
    ],
)
def test_schema_errors_name_the_place(mutate: Any, expected: str) -> None:
    assert corrupt_message(_mutated(mutate)) == expected


def test_long_field_lists_are_shortened() -> None:
    message = corrupt_message(_mutated(lambda d: d["runs"].__setitem__("foo", {"name": "foo"})))
    assert message == (
        "dfr.state.json: runs.foo: missing fields 'run_id', 'status', 'spec' and 14 more"
    )


def test_several_problems_are_counted() -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["runs"]["foo"]["run_id"] = 5
        d["runs"]["foo"]["status"] = 5

    message = corrupt_message(_mutated(mutate))
    assert message.endswith("(and 1 more problem)")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "dfr.state.json: the file is empty"),
        (b"  \n", "dfr.state.json: the file is empty"),
        (b"\xff\xfe", "dfr.state.json: not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"a": }', "dfr.state.json:1:7: not valid JSON: Expecting value"),
        (b'{\n  "format_version": 1,\n  "serial": 1', "dfr.state.json:3:14:"),
        (b"[1]", "dfr.state.json: expected a JSON object at the top level, found an array"),
        (b"null", "found null"),
        (b'{"a": 1, "a": 2}', "dfr.state.json: not valid JSON: duplicate key 'a'"),
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"a": 1e999}', "number 1e999 is out of range"),
        (b"[" * 100_000, "nested too deeply"),
        (b"1" * 5000, "dfr.state.json: not valid JSON: Exceeds the limit"),
        (b"{}", "dfr.state.json: format_version: expected an integer, missing"),
        (b'{"format_version": "1"}', "format_version: expected an integer, found a string"),
        (b'{"format_version": true}', "format_version: expected an integer, found a boolean"),
        (b'{"format_version": 0}', "format_version 0 is not a format any dfr wrote"),
        (b'{"format_version": -3}', "format_version -3 is not a format any dfr wrote"),
        (
            b'{"format_version": 1}',
            "dfr.state.json: missing fields 'serial', 'lineage', 'runs'",
        ),
    ],
)
def test_bad_documents(data: bytes, expected: str) -> None:
    message = corrupt_message(data)
    assert message.startswith(expected) or expected in message
    assert "\n" not in message


def test_utf8_bom_is_accepted() -> None:
    data = statefile.dumps(state_with(full_record()))
    assert statefile.loads(b"\xef\xbb\xbf" + data, SRC) == state_with(full_record())


def test_newer_format_is_refused_with_upgrade_advice() -> None:
    doc = doc_of(state_with(full_record()))
    doc["format_version"] = 4
    doc["runs"] = "whatever format 4 looks like"
    with pytest.raises(StateVersionError) as info:
        statefile.loads(json.dumps(doc), SRC)
    assert info.value.message == (
        "dfr.state.json was written by a newer dfr (format 4); this dfr reads format 3: upgrade dfr"
    )


def test_format_1_state_upgrades_with_nothing_known_of_what_runs_used() -> None:
    doc = doc_of(state_with(full_record("a")))
    doc["format_version"] = 1
    record = doc["runs"]["a"]
    del record["used"], record["source"], record["api"], record["intent"]["replaces"]
    del record["outputs"]
    loaded = statefile.loads(json.dumps(doc), SRC)
    assert loaded.format_version == statefile.FORMAT_VERSION == 3
    old = full_record("a")
    assert old.intent is not None
    assert loaded.runs["a"] == dataclasses.replace(
        old,
        used={},
        source=None,
        api=None,
        intent=dataclasses.replace(old.intent, replaces=None),
        outputs=None,
    )


def test_format_2_state_upgrades_with_nothing_pulled() -> None:
    doc = doc_of(state_with(full_record("a")))
    doc["format_version"] = 2
    del doc["runs"]["a"]["outputs"]
    loaded = statefile.loads(json.dumps(doc), SRC)
    assert loaded.format_version == 3
    assert loaded.runs["a"] == dataclasses.replace(full_record("a"), outputs=None)


def test_format_2_journal_line_without_outputs_reads() -> None:
    # A record as a format-2 dfr journaled it: no `outputs` key at all.
    obj = doc_of(state_with(full_record("a")))["runs"]["a"]
    del obj["outputs"]
    assert docschema._fast_run_ok(obj)
    record = statefile.check_record(obj, SRC, ["record"])
    assert record.outputs is None


def test_outputs_files_are_kept_sorted_by_path() -> None:
    record = full_record("a")
    assert record.outputs is not None
    assert [f.path for f in record.outputs.files] == ["README.md", "train/part-0.jsonl"]
    doc = doc_of(state_with(record))
    assert [f["path"] for f in doc["runs"]["a"]["outputs"]["files"]] == [
        "README.md",
        "train/part-0.jsonl",
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda o: o.update(files="x"), "runs.a.outputs"),
        (lambda o: o["files"][0].update(sha256="A" * 64), "runs.a.outputs"),
        (lambda o: o["files"][0].update(sha256="a" * 64 + "\n"), "runs.a.outputs"),
        (lambda o: o["files"][0].update(size=-1), "runs.a.outputs"),
        (lambda o: o.pop("pulled_at"), "runs.a.outputs"),
        (lambda o: o.update(extra=1), "runs.a.outputs"),
        (lambda o: o.update(patterns=[1]), "runs.a.outputs"),
    ],
)
def test_bad_outputs_records_are_corruption(mutate: Any, expected: str) -> None:
    doc = doc_of(state_with(full_record("a")))
    mutate(doc["runs"]["a"]["outputs"])
    assert docschema._fast_run_ok(doc["runs"]["a"]) is False
    assert corrupt_message(json.dumps(doc)).startswith(f"{SRC}: {expected}")


def test_older_format_goes_through_the_upgrade_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pretend format 0 existed, with runs as a list: one upgrade step makes it format 1.
    def upgrade_v0(doc: dict[str, Any]) -> dict[str, Any]:
        doc["runs"] = {r["name"]: r for r in doc.pop("run_list")}
        return doc

    monkeypatch.setitem(statefile.UPGRADES, 0, upgrade_v0)
    current = doc_of(state_with(full_record("a")))
    old = dict(current, format_version=0, run_list=list(current["runs"].values()))
    del old["runs"]
    assert statefile.loads(json.dumps(old), SRC) == state_with(full_record("a"))

    broken = {"format_version": 0}
    message = corrupt_message(json.dumps(broken))
    assert message == "dfr.state.json: cannot upgrade from format 0: KeyError: 'run_list'"


def test_upgrade_table_covers_every_older_version() -> None:
    # Format 1 is the first; from 2 on, every older version needs its step.
    assert all(v in statefile.UPGRADES for v in range(1, statefile.FORMAT_VERSION))


# --------------------------------------------------------------------------- canonical_record


def test_canonical_record_returns_what_a_read_would() -> None:
    spec: dict[str, Any] = {"tags": ("a", "b")}
    text, stored = statefile.canonical_record(RunRecord.new("a", spec=spec, now="t"))
    assert stored.spec == {"tags": ["a", "b"]}
    spec["tags"] = "changed"
    assert stored.spec == {"tags": ["a", "b"]}
    assert json.loads(text)["name"] == "a"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (RunRecord.new("a", spec={"s": {1}}), "cannot record run 'a': not JSON-serialisable"),
        (RunRecord.new("a", total_cost=float("nan")), "cannot record run 'a': not JSON"),
        (
            RunRecord.new("a", run_id=3),
            "cannot record run 'a': run_id: expected a string or null, found an integer",
        ),
        (RunRecord.new("a", run_id=""), "cannot record run 'a': run_id: must not be empty"),
        (RunRecord.new(""), "cannot record run '': name: must not be empty"),
        (
            RunRecord.new("a", last_error={"message": "m", "kind": "x"}),
            "cannot record run 'a': last_error: unknown field 'kind'",
        ),
        (
            RunRecord.new("a", labels={"k": 1}),  # type: ignore[dict-item]
            "cannot record run 'a': labels.k: expected a string, found an integer",
        ),
    ],
)
def test_canonical_record_refuses_unstorable_records(record: RunRecord, expected: str) -> None:
    with pytest.raises(StateError) as info:
        statefile.canonical_record(record)
    assert not isinstance(info.value, StateCorruptError)
    assert info.value.message.startswith(expected)


# --------------------------------------------------------------------------- the schema


def test_schema_is_valid_draft_2020_12_with_id() -> None:
    schema = statefile.schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://dataframer.ai/schemas/reconciler/v1/state.schema.json"


def _property_schemas(node: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
        for key, sub in node.items():
            found.extend(_property_schemas(sub, f"{path}/{key}"))
    return found


def test_schema_describes_every_field() -> None:
    props = _property_schemas(statefile.schema())
    assert len(props) > 25
    missing = [p for p, sub in props if not sub.get("description")]
    assert missing == []


def test_schema_record_fields_are_the_model_fields() -> None:
    run = statefile.schema()["$defs"]["run"]
    fields = {f.name for f in dataclasses.fields(RunRecord)}
    assert set(run["properties"]) == fields
    # Format 2's fields are optional so that a format-1 journal line still reads.
    # Format 3's `outputs` likewise, for a format-2 journal line.
    # Format 3's `evaluation` too (the run's evaluation, issue 16).
    assert set(run["required"]) == fields - {"used", "source", "api", "outputs", "evaluation"}


def test_dumped_state_validates_against_the_schema() -> None:
    doc = doc_of(state_with(full_record("a"), RunRecord.new("b", now="t")))
    jsonschema.Draft202012Validator(statefile.schema()).validate(doc)


# --------------------------------------------------------------------------- fuzzing

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)

RECORD_KEYS = [f.name for f in dataclasses.fields(RunRecord)]
BASE_RECORD = doc_of(state_with(full_record("foo")))["runs"]["foo"]


def _mutate(draw: st.DrawFn, target: dict[str, Any], key: str) -> None:
    """Replace `key` of `target` with any JSON value, drop it, or make it null."""
    action = draw(st.sampled_from(["replace", "drop", "null"]))
    if action == "drop":
        target.pop(key, None)
    elif action == "null":
        target[key] = None
    else:
        target[key] = draw(json_values)


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    """A valid record with a few fields replaced, dropped or added: near the boundary."""
    record = copy.deepcopy(BASE_RECORD)
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*RECORD_KEYS, "extra"]))
        _mutate(draw, record, key)
    return record


@st.composite
def near_documents(draw: st.DrawFn) -> Any:
    doc: dict[str, Any] = {
        "format_version": draw(st.sampled_from([1, 1, 1, 1.0, 0, 2, "1", True, None])),
        "serial": draw(st.sampled_from([0, 5, -1, 2.0, 2.5, "3", None])),
        "lineage": draw(st.sampled_from(["L", "", 3, None])),
        "runs": draw(
            st.dictionaries(st.sampled_from(["foo", "bar", ""]), mutated_records(), max_size=3)
        ),
    }
    if draw(st.booleans()):
        doc["dfr_version"] = draw(json_values)
    for key in draw(st.lists(st.sampled_from([*doc, "extra"]), max_size=2)):
        doc.pop(key, None) if key in doc else doc.setdefault(key, 1)
    return doc


def _check_total(data: bytes) -> None:
    """loads() returns a State or raises one of our two errors: never anything else."""
    try:
        state = statefile.loads(data, SRC)
    except (StateCorruptError, StateVersionError) as exc:
        assert exc.message and "\n" not in exc.message and "Traceback" not in exc.message
        return
    # Accepted: it must be schema-valid, and re-serialising it is a fixed point.
    again = statefile.loads(statefile.dumps(state), SRC)
    assert again == state


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check_total(data)


@FUZZ
@given(json_values)
def test_fuzz_random_json(value: Any) -> None:
    _check_total(json.dumps(value).encode())


@FUZZ
@given(near_documents())
def test_fuzz_near_valid_documents(doc: Any) -> None:
    _check_total(json.dumps(doc).encode())


@FUZZ
@given(near_documents(), st.integers(0, 400), st.binary(min_size=1, max_size=3))
def test_fuzz_byte_flips_of_documents(doc: Any, at: int, junk: bytes) -> None:
    data = json.dumps(doc).encode()
    at = at % (len(data) + 1)
    _check_total(data[:at] + junk + data[at + len(junk) :])


@FUZZ
@given(mutated_records())
def test_fast_check_agrees_with_the_schema(record: Any) -> None:
    # The hand-written fast path may only accept what the schema accepts.
    valid = not list(docschema._validator("/$defs/run").iter_errors(record))
    fast = docschema._fast_run_ok(record)
    if fast:
        assert valid
    # And for the records dfr writes it must say yes (or it is not a fast path).
    assert docschema._fast_run_ok(BASE_RECORD)


@FUZZ
@given(near_documents())
def test_fast_document_check_agrees_with_the_schema(doc: Any) -> None:
    if docschema._fast_doc_ok(doc):
        assert not list(docschema._validator("").iter_errors(doc))


# Edge cases picked by hand (15,000-example exploratory runs found no crash);
# add here any crashing example a fuzz run ever finds.
REGRESSIONS = [
    b"\xef\xbb\xbf",  # a BOM alone
    b'"\\ud800"',  # a lone surrogate at the top level
    b'{"format_version": 1e400}',
    b'{"format_version": 1.5}',
    b'{"format_version": 10000000000000000000000000000000}',
    b'{"format_version": 1, "serial": 0, "lineage": "L", "runs": {"": {}}}',
]


@pytest.mark.parametrize("data", REGRESSIONS)
def test_regressions(data: bytes) -> None:
    _check_total(data)


# --------------------------------------------------------------------------- the policy in force

POLICY_SETTINGS = {"max_samples_per_run": 1000, "allowed_models": ["a/m-1"]}
BASE_POLICY = statefile.policy_to_dict(PolicyRecord.new(POLICY_SETTINGS, by="u@h", source="x"))


@st.composite
def near_policies(draw: st.DrawFn) -> Any:
    """A valid recorded policy with a few fields (or limits) replaced, dropped or added."""
    policy = copy.deepcopy(BASE_POLICY)
    for _ in range(draw(st.integers(0, 3))):
        inside = draw(st.booleans()) and isinstance(policy.get("settings"), dict)
        target = policy["settings"] if inside else policy
        keys = (
            ["max_samples_per_run", "max_samples_per_apply", "allowed_models", "required_labels"]
            if inside
            else ["settings", "sha256", "at", "by", "source"]
        )
        key = draw(st.sampled_from([*keys, "extra"]))
        _mutate(draw, target, key)
    if draw(st.booleans()) and isinstance(policy.get("settings"), dict):
        policy["sha256"] = policy_digest(policy["settings"])  # a consistent hash, often
    return policy


@FUZZ
@given(near_policies())
def test_a_recorded_policy_is_read_whole_or_refused(policy: Any) -> None:
    doc = {**doc_of(state_with(full_record("a"))), "policy": policy}
    if docschema._fast_doc_ok(doc):
        assert not list(docschema._validator("").iter_errors(doc))
    _check_total(json.dumps(doc).encode())


def test_a_state_with_a_policy_round_trips_and_a_wrong_hash_is_corruption() -> None:
    record = PolicyRecord.new(POLICY_SETTINGS, by="u@h", source="dfr.yaml")
    state = dataclasses.replace(state_with(full_record("a")), policy=record)
    assert statefile.loads(statefile.dumps(state), SRC) == state
    doc = json.loads(statefile.dumps(state))
    assert doc["policy"]["sha256"] == policy_digest(POLICY_SETTINGS)
    jsonschema.Draft202012Validator(statefile.schema()).validate(doc)
    doc["policy"]["settings"]["max_samples_per_run"] = 100000
    with pytest.raises(StateCorruptError, match=r"policy\.sha256: does not match"):
        statefile.loads(json.dumps(doc), SRC)
    # No policy: no key (a state without one reads and writes as before).
    assert "policy" not in json.loads(statefile.dumps(state_with(full_record("a"))))
