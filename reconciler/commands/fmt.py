"""`dfr fmt [PATH...] [--check] [--diff]`: manifests in a canonical key order, comments kept.

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

A file is rewritten only when its order changes, through a new file beside it
that replaces it once complete (its mode and owner kept; a link stays a link and
the file it points to is formatted), and only if it still holds what was read.
A read-only file is reported, not changed. Files that dfr's own strict reader
refuses (YAML errors, traps) are reported and left alone: `dfr validate`
explains them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_OK
from reconciler.textsafe import line_start, one_line

if TYPE_CHECKING:
    from yaml.nodes import MappingNode, Node

    from reconciler.invocation import Invocation
    from reconciler.manifests import SourceFile
    from reconciler.yamlsafe import Document

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


def _is_manifest(doc: Any) -> bool:
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


def _bare(line: str) -> str:
    return line.rstrip(_ENDINGS)


def _blank(line: str) -> bool:
    return _bare(line).strip(" \t") == ""


def _comment_at_most(line: str, column: int) -> bool:
    """A comment line indented no deeper than `column`."""
    bare = _bare(line)
    stripped = bare.lstrip(" \t")
    return stripped.startswith("#") and len(bare) - len(stripped) <= column


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
    while at < len(lines) and not _MARKER.match(_bare(lines[at])):
        at += 1
    return at


def _permutation(lines: list[str], docs: Sequence[Document]) -> list[int]:
    from yaml.nodes import MappingNode

    order = list(range(len(lines)))
    for doc in docs:
        node = doc.node
        if not _is_manifest(doc.value) or not isinstance(node, MappingNode) or not node.value:
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
    unended = _bare(lines[-1]) == lines[-1]
    if unended:
        first = lines[0][len(_bare(lines[0])) :]
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


# -- the command -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FmtArgs:
    paths: tuple[str, ...] = ()
    check: bool = False  # change nothing; exit 1 listing the files that would change
    diff: bool = False  # print what would change as a unified diff


def run_fmt(inv: Invocation, args: FmtArgs, out: TextIO, err: TextIO) -> int:
    from reconciler import diagnostics as diag
    from reconciler.manifests import discover

    sources, problems = discover(args.paths or (".",))
    diag.write_text(problems, err)
    failed = bool(diag.count_errors(problems))
    changed = 0
    for source in sources:
        outcome = _format_one(source, args, out, err)
        failed = failed or outcome is None
        changed += outcome is True
    if args.check and changed:
        err.write(
            f"{changed} file{'s' if changed != 1 else ''} not in canonical key order; "
            "run `dfr fmt` to fix\n"
        )
        return EXIT_ERROR
    return EXIT_ERROR if failed else EXIT_OK


def _format_one(source: SourceFile, args: FmtArgs, out: TextIO, err: TextIO) -> bool | None:
    """True when the file changed (or would), False when not, None when it failed."""
    from reconciler import diagnostics as diag
    from reconciler.manifests import parse_bytes, read_bytes
    from reconciler.yamlsafe import YAMLProblem

    shown = line_start(source.display)
    data, problem = read_bytes(source)
    docs, bad = (
        parse_bytes(source, data) if data is not None else ([], [problem] if problem else [])
    )
    if bad:
        diag.write_text(bad, err)
        if diag.count_errors(bad):
            err.write(f"{shown}: not formatted; `dfr validate` explains the problem\n")
            return None
    if data is None or not any(_is_manifest(d.value) for d in docs):
        return False
    bom = data.startswith(BOM)
    try:
        text = format_text(data[len(BOM) if bom else 0 :].decode("utf-8"))
    except (NotFormatted, YAMLProblem) as exc:
        err.write(f"{shown}: not formatted: {one_line(exc)}\n")
        return None
    if text is None:
        return False
    new = (BOM if bom else b"") + text.encode("utf-8")
    if args.diff:
        _write_diff(source.display, data, new, out)
    if args.check:
        out.write(f"would reformat {shown}\n")
        return True
    return _replace(source, data, new, out, err)


def _replace(source: SourceFile, old: bytes, new: bytes, out: TextIO, err: TextIO) -> bool | None:
    shown = line_start(source.display)
    try:
        target = write_if_unchanged(source.path, old, new)
    except NotFormatted as exc:
        err.write(f"{shown}: not formatted: {one_line(exc)}\n")
        return None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc.filename, str):
            reason += f": {_shown(exc.filename)}"
        err.write(f"{shown}: not formatted: cannot write ({one_line(reason)})\n")
        return None
    note = ""
    if os.path.islink(source.path):
        note = f" (the file it links to: {one_line(_shown(target))})"
    out.write(f"reformatted {shown}{note}\n")
    return True


def _write_diff(display: str, old: bytes, new: bytes, out: TextIO) -> None:
    """A unified diff of the change, each line made printable."""
    import difflib

    before = split_lines(old.decode("utf-8-sig"))
    after = split_lines(new.decode("utf-8-sig"))
    for line in difflib.unified_diff(
        [_bare(x) for x in before],
        [_bare(x) for x in after],
        f"{display} (now)",
        f"{display} (formatted)",
        lineterm="",
    ):
        out.write(one_line(line) + "\n")


def write_if_unchanged(path: Any, old: bytes, new: bytes) -> str:
    """Replace the file at `path` (a link: the file it points to) with `new`, if it still
    holds `old`; keep its mode and owner; return the path written.

    The new text goes to `FILE.dfr-fmt.tmp` beside it (created, never reused: a file
    of that name is in the way), synced, then renamed over the file, so a crash or a
    full disk leaves the old file or the new one, never a part.
    """
    target: str = os.path.realpath(os.fspath(path))
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):  # a pipe: read once, nothing to write back to
        raise NotFormatted("not a regular file; nothing to write the formatted text to")
    if not info.st_mode & stat.S_IWUSR or not os.access(target, os.W_OK):
        raise NotFormatted("the file is read-only; make it writable to let dfr fmt change it")
    temporary = f"{target}.dfr-fmt.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temporary, flags, 0o600)
    except FileExistsError:
        raise NotFormatted(
            f"cannot write ({one_line(_shown(temporary))} is in the way: left by an interrupted "
            "dfr fmt? remove it)"
        ) from None
    try:
        with open(fd, "wb") as handle:
            handle.write(new)
            handle.flush()
            _keep_owner(handle.fileno(), info)
            os.fsync(handle.fileno())
        if _read_all(target) != old:
            raise NotFormatted("the file changed while dfr fmt ran; run dfr fmt again")
        os.replace(temporary, target)
    except BaseException:
        if os.path.lexists(temporary) and not os.path.isdir(temporary):
            os.unlink(temporary)
        raise
    _sync_folder(os.path.dirname(target))
    return target


def _keep_owner(fd: int, info: os.stat_result) -> None:
    os.fchmod(fd, stat.S_IMODE(info.st_mode))
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give a file away
            os.fchown(fd, info.st_uid, info.st_gid)
        os.fchmod(fd, stat.S_IMODE(info.st_mode))  # chown clears set-id bits


def _read_all(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _sync_folder(folder: str) -> None:
    try:
        fd = os.open(folder or ".", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is done
    finally:
        os.close(fd)


def _shown(path: str) -> str:
    """`path` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
