"""`dfr fmt [PATH...] [--check]`: manifests in a canonical key order, comments kept.

Canonical order: `apiVersion`, `kind`, `metadata` (`name`, `labels`, then any
other key), `spec` (`spec_id` and `spec_version`, which name the spec, then the
schema's property order: `number_of_samples`, `generation_model`, ...), `outputs`
(`path`, `files`), `evaluate`, then any other top-level key in its original order.

Comments survive because the file is edited with ruamel.yaml's round-trip mode,
which keeps comments, quotes and flow style. ruamel attaches a comment on its
own line to the key *before* it; fmt re-attaches each such comment to the key
that follows it, so that a comment above `spec_id:` stays above `spec_id:` when
keys move. The first comments of a file (a schema modeline, a header) stay at
the top.

Only manifest documents are reordered, and a file is rewritten only when its
key order changes: an already canonical file is never touched, whatever its
indentation. Files that dfr's own strict reader refuses (YAML errors, traps)
are reported and left alone: `dfr validate` explains them.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_OK
from reconciler.textsafe import line_start, one_line

if TYPE_CHECKING:
    from reconciler.invocation import Invocation

TOP = ("apiVersion", "kind", "metadata", "spec", "outputs", "evaluate")
METADATA = ("name", "labels")
OUTPUTS = ("path", "files")


def _rank(order: Sequence[str]) -> dict[str, int]:
    return {key: i for i, key in enumerate(order)}


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


def _wanted(keys: list[Any], order: Sequence[str]) -> list[Any]:
    rank = _rank(order)
    # Known keys in canonical order, then the others in their original order.
    return sorted(keys, key=lambda k: rank.get(k, len(rank)) if isinstance(k, str) else len(rank))


# -- comments ------------------------------------------------------------------------
#
# ruamel keeps the text after a key's value (the end-of-line comment and every
# comment line up to the next key) in one token: `map.ca.items[key][2]`. Its value
# is "# eol\n  # line\n" or, without an end-of-line comment, "\n  # line\n". The
# lines after the first belong to the *next* key (or, after a block mapping's last
# key, to whatever follows the mapping). Splitting and re-joining those tokens
# around the reordering keeps every comment next to the key it describes.


def _split(text: str) -> tuple[str, str]:
    """Token text -> (end-of-line part including its newline, the comment lines after)."""
    eol, sep, rest = text.partition("\n")
    return eol + sep, rest


def _token(m: Any, key: Any) -> Any:
    entry = m.ca.items.get(key)
    return entry[2] if entry and len(entry) > 2 else None


def _set_token(m: Any, key: Any, text: str, column: int = 0) -> None:
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    entry = m.ca.items.get(key)
    if text.strip() == "":
        if entry and len(entry) > 2:
            entry[2] = None
            if not any(entry):
                del m.ca.items[key]
        return
    token = CommentToken(text if text.endswith("\n") else text + "\n", CommentMark(column), None)
    if entry is None:
        m.ca.items[key] = [None, None, token, None]
    else:
        while len(entry) < 4:
            entry.append(None)
        entry[2] = token


def _is_block_map(value: Any) -> bool:
    from ruamel.yaml.comments import CommentedMap

    return isinstance(value, CommentedMap) and not value.fa.flow_style() and len(value) > 0


def _append_after(m: Any, last: Any, text: str) -> None:
    """Comment lines that follow the last key of block mapping `m`."""
    if not text:
        return
    value = m[last]
    if _is_block_map(value):
        _append_after(value, list(value.keys())[-1], text)
        return
    token = _token(m, last)
    current = token.value if token is not None else "\n"
    _set_token(m, last, current + text, token.column if token is not None else 0)


def _reorder_top(doc: Any, nested: dict[str, Sequence[str]]) -> None:
    trailing = _reorder_map(doc, TOP, nested)
    if trailing:
        last = list(doc.keys())[-1]
        _append_after(doc, last, trailing)


def _reorder_map(m: Any, order: Sequence[str], nested: dict[str, Sequence[str]]) -> str:
    """Like `_reorder`, where the lead of nested mappings is stored for `_take_lead`."""
    keys = list(m.keys())
    eol: dict[Any, str] = {}
    before: dict[Any, str] = {}
    column: dict[Any, int] = {}
    pending = ""  # the top mapping's lead is the file header: it stays where it is
    for key in keys:
        before[key] = pending
        token = _token(m, key)
        text = token.value if token is not None else ""
        column[key] = token.column if token is not None else 0
        value = m[key]
        if _is_block_map(value):
            head, inner_lead = _split(text) if text else ("", "")
            eol[key] = head
            inner = nested.get(key) if isinstance(key, str) else None
            pending = _reorder_inner(value, inner or list(value.keys()), inner_lead)
        else:
            eol[key], pending = _split(text) if text else ("", "")
    wanted = _wanted(keys, order)
    for key in wanted:
        m.move_to_end(key)
    for i, key in enumerate(wanted):
        after = before[wanted[i + 1]] if i + 1 < len(wanted) else ""
        value = m[key]
        if _is_block_map(value):
            inner_keys = list(value.keys())
            lead = value.__dict__.pop("_dfr_lead", "")
            _set_token(m, key, (eol[key] or "\n") + lead, column[key])
            _append_after(value, inner_keys[-1], after)
        else:
            _set_token(m, key, (eol[key] or "\n") + after, column[key])
    return pending


def _reorder_inner(m: Any, order: Sequence[str], lead: str) -> str:
    """Reorder a nested block mapping; its new first key's lead is left in `_dfr_lead`."""
    keys = list(m.keys())
    eol: dict[Any, str] = {}
    before: dict[Any, str] = {}
    column: dict[Any, int] = {}
    pending = lead
    for key in keys:
        before[key] = pending
        token = _token(m, key)
        text = token.value if token is not None else ""
        column[key] = token.column if token is not None else 0
        eol[key], pending = _split(text) if text else ("", "")
    wanted = _wanted(keys, order)
    for key in wanted:
        m.move_to_end(key)
    m.__dict__["_dfr_lead"] = before[wanted[0]]
    for i, key in enumerate(wanted):
        after = before[wanted[i + 1]] if i + 1 < len(wanted) else ""
        _set_token(m, key, (eol[key] or "\n") + after, column[key])
    # A nested mapping's own comment (a copy of its parent key's token) would print twice.
    if getattr(m.ca, "comment", None):
        m.ca.comment = None
    return pending


def _needs_reorder(doc: Any) -> bool:
    def differs(m: Any, order: Sequence[str]) -> bool:
        keys = list(m.keys())
        return keys != _wanted(keys, order)

    if differs(doc, TOP):
        return True
    for key, order in (("metadata", METADATA), ("spec", _spec_order(doc)), ("outputs", OUTPUTS)):
        value = doc.get(key)
        if isinstance(value, dict) and differs(value, order):
            return True
    return False


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap long values
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def format_text(text: str) -> str | None:
    """The canonical text, or None when `text` is already in canonical order."""
    yaml = _yaml()
    docs = list(yaml.load_all(text))
    if not any(_is_manifest(d) and _needs_reorder(d) for d in docs):
        return None
    for doc in docs:
        if _is_manifest(doc) and _needs_reorder(doc):
            nested: dict[str, Sequence[str]] = {
                "metadata": METADATA,
                "spec": _spec_order(doc),
                "outputs": OUTPUTS,
            }
            _reorder_top(doc, nested)
    buffer = io.StringIO()
    yaml.explicit_start = text.lstrip().startswith("---")
    yaml.dump_all(docs, buffer)
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class FmtArgs:
    paths: tuple[str, ...] = ()
    check: bool = False  # change nothing; exit 1 listing the files that would change


def run_fmt(inv: Invocation, args: FmtArgs, out: TextIO, err: TextIO) -> int:
    from reconciler import diagnostics as diag
    from reconciler.manifests import discover, read_documents

    paths, check = args.paths, args.check
    sources, problems = discover(paths or (".",))
    diag.write_text(problems, err)
    failed = bool(diag.count_errors(problems))
    changed: list[str] = []
    for source in sources:
        shown = line_start(source.display)
        docs, bad = read_documents(source)
        if bad:
            diag.write_text(bad, err)
            if diag.count_errors(bad):
                err.write(f"{shown}: not formatted; `dfr validate` explains the problem\n")
                failed = True
            continue
        if not any(_is_manifest(d.value) for d in docs):
            continue
        with open(source.path, encoding="utf-8-sig") as handle:
            text = handle.read()
        try:
            new = format_text(text)
        except Exception as exc:  # noqa: BLE001 - ruamel's errors have no common base we can name
            err.write(f"{shown}: not formatted: {type(exc).__name__}: {one_line(exc)}\n")
            failed = True
            continue
        if new is None or new == text:
            continue
        changed.append(source.display)
        if check:
            out.write(f"would reformat {shown}\n")
            continue
        try:
            target = _write(source.path, new)
        except OSError as exc:
            reason = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
            err.write(f"{shown}: not formatted: cannot write ({one_line(reason)})\n")
            failed = True
            continue
        note = ""
        if os.path.islink(source.path):
            note = f" (the file it links to: {one_line(_shown(target))})"
        out.write(f"reformatted {shown}{note}\n")
    if check and changed:
        err.write(
            f"{len(changed)} file{'s' if len(changed) != 1 else ''} not in canonical key order; "
            "run `dfr fmt` to fix\n"
        )
        return EXIT_ERROR
    return EXIT_ERROR if failed else EXIT_OK


def _write(path: Any, text: str) -> str:
    """Replace the file atomically, keeping its mode; return the path written.

    A symbolic link is followed: the file it points to is replaced, and the
    link stays a link (replacing the link itself with a formatted copy would
    leave the target unformatted and the manifest twice in the folder).
    """
    target: str = os.path.realpath(os.fspath(path))
    mode = os.stat(target).st_mode & 0o7777
    temporary = f"{target}.dfr-fmt.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        if os.path.isfile(temporary) and not os.path.islink(temporary):
            os.unlink(temporary)
        raise
    return target


def _shown(path: str) -> str:
    """`path` relative to the current directory when it is below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
