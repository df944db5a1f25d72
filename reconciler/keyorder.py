"""Manifests in a canonical key order, by moving whole lines: the core of `dfr fmt`.

Canonical order: `apiVersion`, `kind`, `metadata` (`name`, `labels`, then any
other key), `spec` (`spec_id` and `spec_version`, which name the spec, then the
schema's property order: `number_of_samples`, `generation_model`, ...), `outputs`
(`path`, `files`), `evaluate`, then any other top-level key in its original order.

fmt moves whole lines and never writes YAML itself: each key of a block mapping
owns its line, the lines of its value, and the comment lines right above it
(those indented no deeper than the key; blank lines stay where they were, as
separators between positions). Reordering permutes those groups, so everything
else is kept byte for byte: comments anywhere (end of line, inside flow
mappings, between documents), quotes, flow style, anchors, indentation, long
lines, line endings (CRLF stays CRLF), a byte order mark and a missing final
newline. A file's first comments (a schema modeline, a header) stay on top.
Flow mappings (`{b: 1, a: 2}`) and documents that are not manifests are left as
they are. The result is read back and must hold the same values as the file did
(an alias moved above its anchor would not): otherwise the file is left alone.

Pure: text in, text out (`format_text`); `reconciler.commands.fmt` reads and writes
the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yaml.nodes import MappingNode, Node

    from reconciler.yamlsafe import Document

__all__ = ["BOM", "NotFormatted", "bare", "format_text", "is_manifest", "split_lines"]

TOP = ("apiVersion", "kind", "metadata", "spec", "outputs", "evaluate")
METADATA = ("name", "labels")
OUTPUTS = ("path", "files")
BOM = b"\xef\xbb\xbf"

#: One line and its ending, as the YAML parser counts lines (CRLF, CR, LF, NEL, LS, PS).
_LINE = re.compile("[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|\\Z)")
_ENDINGS = "\r\n\x85\u2028\u2029"


class NotFormatted(Exception):
    """Why a file was left as it is (one line, after `FILE: not formatted: `)."""


def _spec_order(doc: Any = None) -> tuple[str, ...]:
    """`spec_id`, `spec_ref`, `spec_version` (which spec), then the schema's property order;
    for a `kind: Spec` document, its own schema's order (reconciler.specs_check)."""
    from reconciler.schema import spec_schema

    if isinstance(doc, dict) and doc.get("kind") == "Spec":
        from reconciler.specs_check import spec_manifest_schema

        return tuple(spec_manifest_schema()["$defs"]["spec"]["properties"])
    first = ("spec_id", "spec_ref", "spec_version")
    return first + tuple(k for k in spec_schema()["properties"] if k not in first)


def is_manifest(doc: Any) -> bool:
    from reconciler.manifests import claims_manifest

    return isinstance(doc, dict) and claims_manifest(doc)


def _wanted(keys: Sequence[str], order: Sequence[str]) -> list[int]:
    """Positions of `keys` in canonical order: known keys first, the others as they were."""
    rank = {key: i for i, key in enumerate(order)}
    return sorted(range(len(keys)), key=lambda i: rank.get(keys[i], len(rank)))


# -- lines -----------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """`text` as lines with their endings, numbered as the parser's marks number them."""
    lines = _LINE.findall(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def bare(line: str) -> str:
    """The line without its line ending."""
    return line.rstrip(_ENDINGS)


def _blank(line: str) -> bool:
    return bare(line).strip(" \t") == ""


def _comment_at_most(line: str, column: int) -> bool:
    """A comment line indented no deeper than `column`."""
    text = bare(line)
    stripped = text.lstrip(" \t")
    return stripped.startswith("#") and len(text) - len(stripped) <= column


def _end_line(node: Node) -> int:
    """The line after the last one `node` is written on (an alias: where its anchor is)."""
    from yaml.nodes import MappingNode, SequenceNode

    if isinstance(node, (MappingNode, SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        if isinstance(last, tuple):
            return max(_end_line(last[0]), _end_line(last[1]))
        return _end_line(last)
    mark = node.end_mark
    return int(mark.line) + (1 if mark.column > 0 else 0)


# -- the permutation -------------------------------------------------------------------


def _movable(lines: list[str], node: MappingNode, start: int) -> bool:
    """Is `node` a block mapping whose keys each start a line, one column, from `start` on?"""
    from yaml.nodes import ScalarNode

    if node.flow_style or not node.value:
        return False
    first = node.value[0][0].start_mark
    if (node.start_mark.line, node.start_mark.column) != (first.line, first.column):
        return False  # an anchor or a tag before the first key: it belongs to the mapping
    previous = start - 1
    for key, _ in node.value:
        mark = key.start_mark
        if not isinstance(key, ScalarNode) or mark.column != first.column:
            return False
        if mark.line <= previous or key.end_mark.line != mark.line:
            return False
        if lines[mark.line][: mark.column].strip(" ") != "":
            return False
        previous = mark.line
    return True


def _tail_start(
    lines: list[str], entry: tuple[Node, Node], head: int, end: int, column: int
) -> int:
    """Where the lines above the next key begin: blank lines and comments no deeper than
    `column` after the last line of this entry's value (the entry spans [head, end))."""
    key, value = entry
    body = max(head + 1, _end_line(key), _end_line(value))
    for at in range(body, end):  # content the marks do not show (an alias's line)
        if not _blank(lines[at]) and not _comment_at_most(lines[at], 10**9):
            body = at + 1
    at = end
    while at > body and (_blank(lines[at - 1]) or _comment_at_most(lines[at - 1], column)):
        at -= 1
    return max(min(body, end), at)


def _blank_prefix(lines: list[str], span: range) -> int:
    count = 0
    for at in span:
        if not _blank(lines[at]):
            break
        count += 1
    return count


def _arrange(
    lines: list[str], node: MappingNode, span: range, order: Sequence[str], nested: dict[str, Any]
) -> list[int]:
    """The line numbers of `span` (which holds `node`) with its keys in canonical order."""
    if not _movable(lines, node, span.start):
        return list(span)
    entries = node.value
    column = entries[0][0].start_mark.column
    heads = [key.start_mark.line for key, _ in entries]
    leads: list[range] = []
    owns: list[list[int]] = []
    lead_start = span.start
    for i, entry in enumerate(entries):
        end = heads[i + 1] if i + 1 < len(entries) else span.stop
        tail = _tail_start(lines, entry, heads[i], end, column)
        leads.append(range(lead_start, heads[i]))
        owns.append(_own(lines, entry, range(heads[i], tail), nested))
        lead_start = tail
    result: list[int] = []
    for position, i in enumerate(_wanted([key.value for key, _ in entries], order)):
        blanks = _blank_prefix(lines, leads[position])  # blank lines stay where they are
        result += leads[position][:blanks]
        result += leads[i][_blank_prefix(lines, leads[i]) :]
        result += owns[i]
    return result + list(range(lead_start, span.stop))


def _own(
    lines: list[str], entry: tuple[Node, Node], span: range, nested: dict[str, Any]
) -> list[int]:
    """An entry's lines: its key's line, then its value's (a nested mapping reordered)."""
    from yaml.nodes import MappingNode

    key, value = entry
    inner = nested.get(key.value)
    if inner is None or not isinstance(value, MappingNode) or len(span) < 2:
        return list(span)
    return [span.start, *_arrange(lines, value, range(span.start + 1, span.stop), inner, {})]


_MARKER = re.compile(r"(---|\.\.\.)([ \t]|$)")


def _document_end(lines: list[str], at: int) -> int:
    """The line of the next `---` or `...` from `at` on (they end a document), or EOF.

    Not the node's end mark: an alias's node is its anchor's, written further up.
    """
    while at < len(lines) and not _MARKER.match(bare(lines[at])):
        at += 1
    return at


def _permutation(lines: list[str], docs: Sequence[Document]) -> list[int]:
    from yaml.nodes import MappingNode

    order = list(range(len(lines)))
    for doc in docs:
        node = doc.node
        if not is_manifest(doc.value) or not isinstance(node, MappingNode) or not node.value:
            continue
        start = node.value[0][0].start_mark.line
        span = range(start, _document_end(lines, start + 1))
        nested = {"metadata": METADATA, "spec": _spec_order(doc.value), "outputs": OUTPUTS}
        order[span.start : span.stop] = _arrange(lines, node, span, TOP, nested)
    return order


def _meaning(docs: Sequence[Document]) -> list[str]:
    return [json.dumps(d.value, sort_keys=True, default=repr) for d in docs]


def format_text(text: str) -> str | None:
    """The canonical text, or None when `text` is already in canonical order.

    `text` is a file's text without its byte order mark. Raises YAMLProblem when
    it does not parse, NotFormatted when reordering would change its values.
    """
    from reconciler.yamlsafe import YAMLProblem, parse_documents

    docs = list(parse_documents(text))
    lines = split_lines(text)
    if not lines:
        return None
    unended = bare(lines[-1]) == lines[-1]
    if unended:
        first = lines[0][len(bare(lines[0])) :]
        lines[-1] += first or "\n"
    order = _permutation(lines, docs)
    if order == list(range(len(lines))):
        return None
    if sorted(order) != list(range(len(lines))):  # never written: a bug, not the file's
        raise RuntimeError("dfr fmt would drop or repeat a line")
    new = "".join(lines[at] for at in order)
    if unended:  # as it was: no line ending after the last line
        new = new[: -2 if new.endswith("\r\n") else -1]
    try:
        same = _meaning(list(parse_documents(new))) == _meaning(docs)
    except YAMLProblem:
        same = False
    if not same:
        raise NotFormatted(
            "its keys cannot be reordered without changing its values (an alias above "
            "its anchor?); left as it is"
        )
    return new
