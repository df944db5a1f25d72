"""The YAML loader: YAML 1.2 values, positions, traps and budgets; never a crash."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler import yamlsafe
from reconciler.yamlsafe import (
    MAX_FILE_BYTES,
    YAMLProblem,
    decode,
    key_node_of,
    locate,
    parse_documents,
    position,
    yaml11_reading,
)

# Examples per property test: 200, or more under HYPOTHESIS_PROFILE=thorough.
PROPERTY_EXAMPLES = max(200, settings().max_examples)


def values(text: str) -> list[object]:
    return [doc.value for doc in parse_documents(text)]


def problem(text: str) -> YAMLProblem:
    with pytest.raises(YAMLProblem) as info:
        values(text)
    return info.value


# -- decode ------------------------------------------------------------------------


def test_decode_plain_utf8_and_strips_bom() -> None:
    assert decode("a: é\n".encode()) == "a: é\n"
    assert decode(b"\xef\xbb\xbfa: 1\n") == "a: 1\n"


def test_decode_points_at_first_bad_byte() -> None:
    with pytest.raises(YAMLProblem) as info:
        decode(b"a: 1\nbb: \xff\xfe\n")
    p = info.value
    assert (p.line, p.column, p.code) == (1, 4, "encoding")
    assert "0xff" in p.message and "UTF-8" in p.message


def test_decode_refuses_nul_with_its_place() -> None:
    with pytest.raises(YAMLProblem) as info:
        decode(b"a: 1\nb: x\x00y\n")
    assert (info.value.line, info.value.column) == (1, 4)
    assert "NUL" in info.value.message


def test_decode_refuses_oversize_without_misstating_the_size() -> None:
    ok = b"#" * MAX_FILE_BYTES
    assert decode(ok) == ok.decode()
    with pytest.raises(YAMLProblem) as info:
        # A reader passes at most MAX_FILE_BYTES + 1 bytes: the message must not
        # claim that is the file's size.
        decode(b"#" * (MAX_FILE_BYTES + 1))
    assert info.value.code == "file-too-large"
    assert "1,048,576" in info.value.message
    assert "1,048,577" not in info.value.message


# -- YAML 1.2 values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: no", "no"),
        ("a: yes", "yes"),
        ("a: on", "on"),
        ("a: off", "off"),
        ("a: y", "y"),
        ("a: 1_000", "1_000"),
        ("a: 1:30", "1:30"),
        ("a: true", True),
        ("a: False", False),
        ("a: 10", 10),
        ("a: -3", -3),
        ("a: +3", 3),
        ("a: 0", 0),
        ("a: 0x1F", 31),
        ("a: 0o17", 15),
        ("a: 1e4", 10000.0),
        ("a: 100.0", 100.0),
        ("a: .5", 0.5),
        ("a: ~", None),
        ("a:", None),
        ("a: null", None),
        ("a: '010'", "010"),
        ("a: '1e4'", "1e4"),
        ("a: !!str 12", "12"),
        ("a: !!int '12'", 12),
        ("a: !!float 1", 1.0),
        ("a: 2001-12-14", "2001-12-14"),
    ],
)
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, value: object) -> None:
    got = values(text)[0]
    assert isinstance(got, dict)
    assert got["a"] == value
    assert type(got["a"]) is type(value)


def test_special_floats() -> None:
    (doc,) = values("a: .inf\nb: -.Inf\nc: .nan\n")
    assert isinstance(doc, dict)
    assert doc["a"] == math.inf and doc["b"] == -math.inf and math.isnan(doc["c"])


@pytest.mark.parametrize("text", ["010", "-010", "+007", "00"])
def test_leading_zero_integers_are_ambiguous(text: str) -> None:
    p = problem(f"a: {text}\n")
    assert p.code == "yaml-ambiguous"
    assert (p.line, p.column) == (0, 3)
    assert "leading zero" in p.message and "quote it" in p.message


def test_documents_empty_and_several() -> None:
    assert values("") == []
    assert values("# only a comment\n") == []
    assert values("---\n") == [None]
    assert values("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    docs = list(parse_documents("a: 1\n---\nb: 2\n"))
    assert [(d.index, d.line, d.column) for d in docs] == [(0, 1, 1), (1, 3, 1)]


def test_documents_before_a_problem_are_yielded_first() -> None:
    seen = []
    with pytest.raises(YAMLProblem) as info:
        for doc in parse_documents("a: 1\n---\nb: [\n"):
            seen.append(doc.value)
    assert seen == [{"a": 1}]
    assert info.value.line == 3


# -- traps and refusals --------------------------------------------------------------


def test_duplicate_key_names_both_places() -> None:
    p = problem("a: 1\nb: 2\na: 3\n")
    assert p.code == "duplicate-key"
    assert (p.line, p.column) == (2, 0)
    assert "'a' is given twice" in p.message and "first at line 1, column 1" in p.message


def test_duplicate_key_quoted_and_plain_are_the_same_key() -> None:
    assert problem("a: 1\n'a': 2\n").code == "duplicate-key"


def test_duplicate_key_nested() -> None:
    p = problem("spec:\n  x: 1\n  x: 2\n")
    assert (p.line, p.column, p.code) == (2, 2, "duplicate-key")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a: !!python/object:os.system x\n", "python/object"),
        ("a: !!python/object/apply:os.system [ls]\n", "python/object/apply"),
        ("a: !custom x\n", "!custom"),
        ("a: !!binary aGVsbG8=\n", "binary"),
        ("a: !!set {x, y}\n", "set"),
        ("a: !!omap [{x: 1}]\n", "omap"),
        ("a: !!timestamp 2001-12-14\n", "timestamp"),
        ("a: !!map [x]\n", "map"),
        ("a: !!seq {x: 1}\n", "seq"),
        ("!custom\na: 1\n", "!custom"),
        ("a: !<tag:example.com,2000:x> 1\n", "example.com"),
    ],
)
def test_tags_other_than_core_are_refused(text: str, shown: str) -> None:
    p = problem(text)
    assert p.code == "yaml-tag"
    assert shown in p.message and "not allowed" in p.message


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a: !!int x\n", "not a valid int"),
        ("a: !!bool yes\n", "not a valid bool"),
        ("a: !!null 0\n", "not a valid null"),
        ("a: !!float abc\n", "not a valid float"),
    ],
)
def test_core_tags_must_fit_their_value(text: str, why: str) -> None:
    p = problem(text)
    assert (p.code, p.line, p.column) == ("yaml-tag", 0, 3)
    assert why in p.message


def test_merge_keys_are_refused() -> None:
    p = problem("base: &b {x: 1}\nc:\n  <<: *b\n")
    assert (p.code, p.line, p.column) == ("yaml-key", 2, 2)
    assert "'<<'" in p.message


def test_quoted_merge_key_is_an_ordinary_string() -> None:
    assert values("'<<': 1\n") == [{"<<": 1}]


@pytest.mark.parametrize(
    "text", ["1: a\n", "true: a\n", "~: a\n", "1.5: a\n", "? [a]\n: b\n", "? {a: 1}\n: b\n"]
)
def test_keys_must_be_strings(text: str) -> None:
    p = problem(text)
    assert p.code == "yaml-key"
    assert "string" in p.message


def test_billion_laughs_is_bounded() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    p = problem("\n".join(lines) + "\n")
    assert p.code == "yaml-alias"
    assert "aliases" in p.message


def test_scalar_alias_fan_out_is_bounded_by_node_budget() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * (yamlsafe.MAX_NODES_PER_DOCUMENT + 5)) + "]\n"
    assert "more than" in problem(text).message


def test_a_few_aliases_are_fine() -> None:
    assert values("a: &x {k: 1}\nb: *x\nc: *x\n") == [{"a": {"k": 1}, "b": {"k": 1}, "c": {"k": 1}}]


def test_recursive_alias_is_named_as_such() -> None:
    p = problem("a: &a\n  b: *a\n")
    assert p.code == "yaml-alias"
    assert "recursive" in p.message or "refers to itself" in p.message


def test_deep_nesting_is_bounded() -> None:
    depth = yamlsafe.MAX_DEPTH + 10
    p = problem("a: " + "[" * depth + "]" * depth + "\n")
    assert "nested more than" in p.message


def test_very_deep_nesting_is_a_problem_not_a_crash() -> None:
    depth = 200_000
    p = problem("a: " + "[" * depth + "]" * depth + "\n")
    assert "nest" in p.message


def test_syntax_error_position() -> None:
    p = problem("a: b: c\n")
    assert (p.line, p.column, p.code) == (0, 4, "yaml")
    assert p.message.startswith("invalid YAML: ")


def test_huge_integer_is_a_problem_not_a_crash() -> None:
    p = problem("a: " + "9" * 5000 + "\n")
    assert (p.line, p.column) == (0, 3)
    assert "digits" in p.message


def test_huge_integer_with_core_tag_is_a_problem_not_a_crash() -> None:
    assert "digits" in problem("a: !!int " + "9" * 5000 + "\n").message


# -- positions -------------------------------------------------------------------------


def test_locate_and_key_node_of() -> None:
    (doc,) = parse_documents("spec:\n  items:\n    - x\n    - y: 1\n")
    assert position(locate(doc.node, ("spec", "items", 1, "y"))) == (4, 10)
    assert position(key_node_of(doc.node, ("spec", "items"))) == (2, 3)
    # A missing step stops at the deepest node found.
    assert position(locate(doc.node, ("spec", "nope", "deeper"))) == (2, 3)
    assert position(locate(doc.node, ("spec", "items", 9))) == (3, 5)
    assert key_node_of(doc.node, ()) is doc.node


def test_yaml11_reading_explains_only_plain_scalars() -> None:
    (doc,) = parse_documents("a: no\nb: 'no'\nc: 1_000\nd: 1:30\ne: hello\nf: ON\n")
    reading = {k: yaml11_reading(locate(doc.node, (k,))) for k in "abcdef"}
    assert reading == {
        "a": "false",
        "b": None,
        "c": "a number",
        "d": "a number",
        "e": None,
        "f": "true",
    }
    assert yaml11_reading(None) is None


# -- properties: any input is documents or a YAMLProblem, nothing else --------------


FRAGMENTS = [
    ":",
    ": ",
    "-",
    "- ",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!",
    "!!str ",
    "!!python/object ",
    "!x ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "?",
    "'",
    '"',
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    "#",
    "---\n",
    "...\n",
    "|",
    ">",
    "<<",
    "%YAML 1.1\n",
    "%TAG ! tag:x,2000:\n",
    "a",
    "key",
    "no",
    "010",
    "1_000",
    "1:30",
    "0x",
    "0o8",
    ".inf",
    "1e4",
    "~",
    "\\",
    "\ufeff",
    "\x85",
    "\u2028",
    "é",
    "9" * 4400,
]

yamlish = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)


def _documents_or_problem(text: str) -> None:
    try:
        for doc in parse_documents(text):
            assert doc.index >= 0
    except YAMLProblem as p:
        assert p.line >= 0 and p.column >= 0
        assert p.message


@settings(max_examples=PROPERTY_EXAMPLES)
@given(st.text())
@example("a: " + "1" * 5000)
@example("a: &a\n  b: *a\n")
def test_any_text_gives_documents_or_a_yaml_problem(text: str) -> None:
    _documents_or_problem(text)


@settings(max_examples=PROPERTY_EXAMPLES)
@given(yamlish)
@example("&a [*a]")
@example("? - a\n: b")
def test_yamlish_text_gives_documents_or_a_yaml_problem(text: str) -> None:
    _documents_or_problem(text)


@settings(max_examples=PROPERTY_EXAMPLES)
@given(st.binary())
@example(b"\xff")
@example(b"\xef\xbb\xbf\x00")
@example(b"a: \xc3")
def test_any_bytes_give_documents_or_a_yaml_problem(data: bytes) -> None:
    try:
        text = decode(data)
    except YAMLProblem as p:
        assert p.code == "encoding"
        assert p.line <= data.count(b"\n")
        return
    _documents_or_problem(text)
