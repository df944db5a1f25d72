"""Reading YAML safely, as YAML 1.2, with the place of every value.

PyYAML composes the node graph (with its C parser when available); this module
builds plain Python values from the nodes itself, so that:

- nothing is ever constructed from a tag: only the core tags (str, int, float,
  bool, null, map, seq) are accepted, any other tag is an error;
- plain scalars are resolved with the YAML 1.2 core schema, not YAML 1.1:
  `no`, `yes`, `on`, `off` stay strings, `1_000` and `1:30` stay strings. When
  the schema then wants a boolean or a number, the error says why (see
  `yaml11_reading`). An integer written with a leading zero (`010`: octal 8 in
  YAML 1.1, decimal 10 in YAML 1.2) is ambiguous and rejected outright;
- a key given twice in one mapping is an error, as are non-string keys and
  merge keys (`<<`), which YAML 1.2 does not have;
- alias expansion is bounded (a "billion laughs" document is an error, not an
  out-of-memory), and so are file size and nesting;
- bytes that are not UTF-8 are an error that points at the first bad byte.

Nodes are kept beside the values so that a diagnostic found later (by the
schema) can be placed on the exact key or value with `locate`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # The C parser is several times faster; the pure one gives the same nodes.
    _BaseLoader: type = yaml.CBaseLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _BaseLoader = yaml.BaseLoader

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES_PER_DOCUMENT = 10_000
MAX_ALIASES_PER_DOCUMENT = 100
MAX_DEPTH = 64
# Python refuses to convert decimal strings of more than 4,300 digits, and no
# manifest value needs more than a handful: longer integers are refused.
MAX_INTEGER_CHARS = 100

PLAIN_TAG = "tag:dataframer-reconciler,2025:plain"
_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _CORE + "map", _CORE + "seq"

_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE = re.compile(r"^[-+]?[0-9]+$")
_OCT_RE = re.compile(r"^0o[0-7]+$")
_HEX_RE = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT_RE = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF_RE = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN_RE = re.compile(r"^\.(?:nan|NaN|NAN)$")
_LEADING_ZERO_RE = re.compile(r"^[-+]?0[0-9]+$")
_YAML11_BOOL_RE = re.compile(r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_YAML11_TRUE = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"}
_YAML11_NUMBER_RE = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])*(?:\.[0-9_]*)?$")


class YAMLProblem(Exception):
    """A problem at a place in a YAML file (0-based line and column internally)."""

    def __init__(self, message: str, line: int, column: int, code: str = "yaml") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.code = code


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Composes nodes; tags plain scalars so we resolve them ourselves (YAML 1.2)."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return PLAIN_TAG
        result: str = super().resolve(kind, value, implicit)
        return result


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document: its value and the node graph it was built from."""

    value: Any
    node: Node
    index: int

    @property
    def line(self) -> int:
        return int(self.node.start_mark.line) + 1

    @property
    def column(self) -> int:
        return int(self.node.start_mark.column) + 1


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) or a YAMLProblem at the first bad byte."""
    if len(data) > MAX_FILE_BYTES:
        # Readers pass at most MAX_FILE_BYTES + 1 bytes, so len(data) is not the file's size.
        raise YAMLProblem(
            f"file is larger than {MAX_FILE_BYTES:,} bytes, the limit for manifest files",
            0,
            0,
            code="file-too-large",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n")
        column = exc.start - (before.rfind(b"\n") + 1)
        raise YAMLProblem(
            f"file is not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
            line,
            column,
            code="encoding",
        ) from None
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset)
        raise YAMLProblem(
            "file contains a NUL character; it is binary, not YAML",
            line,
            offset - (text.rfind("\n", 0, offset) + 1),
            code="encoding",
        )
    return text


def parse_documents(text: str) -> Iterator[Document]:
    """Yield each non-empty document; raise YAMLProblem at the first problem.

    Documents before the problem have been yielded already, so a caller can
    keep them and report the problem.
    """
    loader = _Loader(text)
    try:
        index = 0
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                problem = exc.problem or exc.context or "invalid YAML"
                if exc.context and exc.problem:
                    problem = f"{exc.problem} ({exc.context})"
                line = mark.line if mark else 0
                column = mark.column if mark else 0
                raise YAMLProblem(f"invalid YAML: {problem}", line, column) from None
            except yaml.YAMLError as exc:  # reader errors carry no mark
                raise YAMLProblem(f"invalid YAML: {exc}", 0, 0) from None
            except RecursionError:
                raise YAMLProblem("invalid YAML: nesting is too deep", 0, 0) from None
            if node is None:
                return
            value = _Builder().build(node)
            yield Document(value, node, index)
            index += 1
    finally:
        loader.dispose()


class _Builder:
    """Builds plain values from nodes with the budgets and traps above."""

    def __init__(self) -> None:
        self.nodes = 0
        self.aliases = 0
        self.seen: set[int] = set()
        self.open: set[int] = set()  # collections being built: a revisit is a cycle

    def build(self, node: Node, depth: int = 0) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES_PER_DOCUMENT:
            raise _problem(node, f"document has more than {MAX_NODES_PER_DOCUMENT:,} values")
        if depth > MAX_DEPTH:
            raise _problem(node, f"document is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, ScalarNode):
            if id(node) in self.open:
                raise _problem(
                    node,
                    "recursive alias: this anchored value contains an alias to itself",
                    code="yaml-alias",
                )
            # The composer hands back the same node object for every alias of
            # an anchor; counting revisits bounds alias expansion.
            if id(node) in self.seen:
                self.aliases += 1
                if self.aliases > MAX_ALIASES_PER_DOCUMENT:
                    raise _problem(
                        node,
                        f"document expands more than {MAX_ALIASES_PER_DOCUMENT} aliases",
                        code="yaml-alias",
                    )
            self.seen.add(id(node))
        if isinstance(node, ScalarNode):
            return scalar_value(node)
        self.open.add(id(node))
        try:
            return self._build_collection(node, depth)
        finally:
            self.open.discard(id(node))

    def _build_collection(self, node: Node, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            _check_tag(node, _SEQ)
            return [self.build(child, depth + 1) for child in node.value]
        if isinstance(node, MappingNode):
            _check_tag(node, _MAP)
            result: dict[str, Any] = {}
            key_nodes: dict[str, Node] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    raise _problem(key_node, "mapping keys must be plain strings", code="yaml-key")
                if key_node.tag == PLAIN_TAG and key_node.value == "<<":
                    raise _problem(
                        key_node,
                        "merge keys ('<<') are not supported: write the keys out",
                        code="yaml-key",
                    )
                key = scalar_value(key_node)
                if not isinstance(key, str):
                    raise _problem(
                        key_node,
                        f"mapping key {key_node.value!r} must be a string; quote it",
                        code="yaml-key",
                    )
                if key in key_nodes:
                    first = key_nodes[key].start_mark
                    raise _problem(
                        key_node,
                        f"key {key!r} is given twice in this mapping "
                        f"(first at line {first.line + 1}, column {first.column + 1})",
                        code="duplicate-key",
                    )
                key_nodes[key] = key_node
                result[key] = self.build(value_node, depth + 1)
            return result
        raise _problem(node, "unsupported YAML node")  # pragma: no cover


def _problem(node: Node, message: str, code: str = "yaml") -> YAMLProblem:
    return YAMLProblem(message, node.start_mark.line, node.start_mark.column, code)


def _check_tag(node: Node, expected: str) -> None:
    if node.tag != expected:
        raise _problem(
            node,
            f"tag {node.tag!r} is not allowed: manifests use plain YAML values only",
            code="yaml-tag",
        )


def scalar_value(node: ScalarNode) -> Any:
    tag, text = node.tag, node.value
    if tag == PLAIN_TAG:
        return _resolve_plain(node)
    if tag == _STR:
        return text
    if tag in (_INT, _FLOAT, _BOOL, _NULL):
        value = _resolve_core(text, node)
        ok = {
            _INT: isinstance(value, int) and not isinstance(value, bool),
            _FLOAT: isinstance(value, (int, float)) and not isinstance(value, bool),
            _BOOL: isinstance(value, bool),
            _NULL: value is None,
        }[tag]
        if not ok:
            raise _problem(node, f"{text!r} is not a valid {tag.rsplit(':', 1)[1]}", "yaml-tag")
        return float(value) if tag == _FLOAT else value
    raise _problem(
        node, f"tag {tag!r} is not allowed: manifests use plain YAML values only", "yaml-tag"
    )


# A plain scalar that starts with none of these is a string in the core schema:
# nulls, booleans and numbers all do (`~`, `null`, `true`, `false`, digits,
# signs, `.5`, `.inf`, `.nan`). Most scalars (keys, names, models) take this
# fast path past the regular expressions.
_NOT_ONLY_STRING_STARTS = frozenset("~nNtTfF0123456789+-.")


def _resolve_plain(node: ScalarNode) -> Any:
    text = node.value
    if text and text[0] not in _NOT_ONLY_STRING_STARTS:
        return text
    if _LEADING_ZERO_RE.match(text):
        raise _problem(
            node,
            f"{text!r} is ambiguous: YAML 1.1 reads a leading zero as octal, YAML 1.2 as "
            "decimal; drop the leading zero for a number, or quote it for a string",
            code="yaml-ambiguous",
        )
    return _resolve_core(text, node)


def _resolve_core(text: str, node: Node) -> Any:
    """The YAML 1.2 core schema."""
    if _NULL_RE.match(text):
        return None
    if _BOOL_RE.match(text):
        return text[0] in "tT"
    if len(text) > MAX_INTEGER_CHARS and (
        _INT_RE.match(text) or _OCT_RE.match(text) or _HEX_RE.match(text)
    ):
        raise _problem(
            node,
            f"integer {text[:20]}... is {len(text):,} characters long; integers are "
            f"limited to {MAX_INTEGER_CHARS} digits",
            code="yaml-number",
        )
    if _INT_RE.match(text):
        return int(text, 10)
    if _OCT_RE.match(text):
        return int(text[2:], 8)
    if _HEX_RE.match(text):
        return int(text[2:], 16)
    if _FLOAT_RE.match(text):
        return float(text)
    if _INF_RE.match(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN_RE.match(text):
        return math.nan
    return text


def yaml11_reading(node: Node | None) -> str | None:
    """How YAML 1.1 would have read a plain scalar that YAML 1.2 keeps as a string.

    Used to explain a type error: `enable_revisions: no` is the string "no".
    """
    if not isinstance(node, ScalarNode) or node.tag != PLAIN_TAG:
        return None
    text = node.value
    if _YAML11_BOOL_RE.match(text):
        return "true" if text in _YAML11_TRUE else "false"
    if _YAML11_NUMBER_RE.match(text) and ("_" in text or ":" in text):
        return "a number"
    return None


def locate(node: Node, path: tuple[str | int, ...], *, key: bool = False) -> Node:
    """The node at `path` (or, with key=True, the key node naming its last step).

    Walks as far as the path exists and returns the deepest node found, so a
    diagnostic always has a place even when the path ends in a missing key.
    """
    current = node
    for depth, step in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                if isinstance(key_node, ScalarNode) and key_node.value == step:
                    if last and key:
                        return key_node
                    current = value_node
                    break
            else:
                return current
        elif isinstance(current, SequenceNode) and isinstance(step, int):
            if 0 <= step < len(current.value):
                current = current.value[step]
            else:
                return current
        else:
            return current
    return current


def key_node_of(node: Node, path: tuple[str | int, ...]) -> Node:
    """The key node that introduces the value at `path` (the document for ())."""
    if not path:
        return node
    return locate(node, path, key=True)


def position(node: Node) -> tuple[int, int]:
    """1-based (line, column) of a node."""
    return int(node.start_mark.line) + 1, int(node.start_mark.column) + 1
