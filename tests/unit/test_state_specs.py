"""Spec records in the state document: round trips, the schema, and the sound fast path.

`specs` is optional in format 3 (absent: none); a state without specs keeps the
bytes it had. The hand-written fast path may only accept what the schema
accepts (fuzzed here as the run records' is in test_state_statefile.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_records import sample, spec_intent, spec_sample

from reconciler.errors import StateCorruptError, StateVersionError
from reconciler.state import docschema, statefile
from reconciler.state.journal import journal_line, replay
from reconciler.state.model import FORMAT_VERSION, State

SRC = "dfr.state.json"
FUZZ = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def state(*specs: Any) -> State:
    return State(FORMAT_VERSION, 3, "L-1", {"a": sample("a")}, specs={s.name: s for s in specs})


def test_a_state_with_specs_round_trips_through_the_document() -> None:
    full = state(spec_sample("t"), spec_sample("u", None, intent=spec_intent("create")))
    doc = json.loads(statefile.dumps(full))
    assert statefile.loads(statefile.dumps(full), SRC) == full
    assert docschema._fast_doc_ok(doc)  # what dfr writes takes the fast path
    assert not list(docschema._validator("").iter_errors(doc))
    assert doc["specs"]["t"]["versions"][1] == {
        "number": 2,
        "sha256": None,
        "at": "2026-01-02T00:00:00Z",
        "by_dfr": False,
    }


def test_no_specs_means_no_key_and_an_absent_key_means_none() -> None:
    plain = state()
    assert "specs" not in json.loads(statefile.dumps(plain))
    assert statefile.loads(statefile.dumps(plain), SRC).specs == {}


def test_a_format_2_state_reads_with_no_specs() -> None:
    doc = json.loads(statefile.dumps(state()))
    doc["format_version"] = 2
    for record in doc["runs"].values():
        record.pop("outputs", None)
    assert statefile.loads(json.dumps(doc), SRC).specs == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["specs"]["t"].update(name="other"), r"specs\.t\.name: 'other' does not match"),
        (lambda d: d["specs"]["t"].update(spec_id=3), r"specs\.t\.spec_id: expected"),
        (lambda d: d["specs"]["t"]["versions"][0].update(number=0), r"number: must be at least 1"),
        (lambda d: d["specs"]["t"].update(intent={"id": "x"}), r"specs\.t\.intent: missing"),
        (lambda d: d["specs"]["t"].update(extra=1), r"specs\.t: unknown field 'extra'"),
        (lambda d: d.update(specs=[]), r"specs: expected an object"),
    ],
)
def test_a_bad_spec_record_is_corruption_named_by_its_path(change: Any, message: str) -> None:
    doc = json.loads(statefile.dumps(state(spec_sample("t"))))
    change(doc)
    with pytest.raises(StateCorruptError, match=message):
        statefile.loads(json.dumps(doc), SRC)


def test_journal_spec_lines_replay_onto_the_snapshot() -> None:
    base = state()
    made = spec_sample("t")
    lines = journal_line("L-1", 4, "spec", "t", statefile.canonical_spec(made)[0])
    lines += journal_line("L-1", 5, "spec", "u", statefile.canonical_spec(spec_sample("u"))[0])
    lines += journal_line("L-1", 6, "spec", "u", None)
    after = replay(base, lines, "j")
    assert after.serial == 6 and after.specs == {"t": made} and after.runs == base.runs
    wrong = journal_line("L-1", 4, "spec", "x", statefile.canonical_spec(made)[0])
    with pytest.raises(StateCorruptError, match=r"j:1: spec\.name: 't' does not match name 'x'"):
        replay(base, wrong, "j")


def test_a_newer_format_with_specs_is_refused() -> None:
    doc = json.loads(statefile.dumps(state(spec_sample("t"))))
    doc["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(StateVersionError):
        statefile.loads(json.dumps(doc), SRC)


# --------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
BASE = json.loads(statefile.dumps(state(spec_sample("t", intent=spec_intent()))))["specs"]["t"]
SPEC_KEYS = [*BASE, "extra"]


def _mutate(draw: st.DrawFn, target: dict[str, Any], keys: list[str]) -> None:
    key = draw(st.sampled_from(keys))
    action = draw(st.sampled_from(["replace", "drop", "null", "sha", "int"]))
    if action == "drop":
        target.pop(key, None)
    elif action == "null":
        target[key] = None
    elif action == "sha":
        target[key] = draw(st.sampled_from(["a" * 64, "A" * 64, "a" * 63, "a" * 64 + "\n"]))
    elif action == "int":
        target[key] = draw(st.sampled_from([0, 1, 2.0, True, -1]))
    else:
        target[key] = draw(json_values)


@st.composite
def near_specs(draw: st.DrawFn) -> Any:
    """A valid spec record with a few fields (of it, a version or its intent) changed."""
    record = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(["record", "version", "intent"]))
        if where == "version" and isinstance(record.get("versions"), list) and record["versions"]:
            _mutate(draw, record["versions"][0], ["number", "sha256", "at", "by_dfr", "x"])
        elif where == "intent" and isinstance(record.get("intent"), dict):
            keys = ["id", "kind", "body", "at", "content_sha256", "x"]
            _mutate(draw, record["intent"], keys)
        else:
            _mutate(draw, record, SPEC_KEYS)
    return record


@FUZZ
@given(near_specs())
def test_the_fast_spec_check_accepts_only_what_the_schema_accepts(record: Any) -> None:
    if docschema._fast_spec_ok(record):
        assert not list(docschema._validator("/$defs/spec").iter_errors(record))
    assert docschema._fast_spec_ok(BASE)
    doc = {**json.loads(statefile.dumps(state())), "specs": {"t": record}}
    if docschema._fast_doc_ok(doc):
        assert not list(docschema._validator("").iter_errors(doc))
    try:
        loaded = statefile.loads(json.dumps(doc), SRC)
    except StateCorruptError as exc:
        assert "\n" not in exc.message
    else:
        assert statefile.loads(statefile.dumps(loaded), SRC) == loaded
