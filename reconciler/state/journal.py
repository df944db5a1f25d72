"""The journal of the file backend: one line per change, and replaying it onto a snapshot.

`PATH.journal` is JSON Lines, one change per line, keys sorted like every JSON
dfr writes (see `local.py` for when lines are appended and folded away)::

    {"lineage": L, "name": N, "op": "put", "record": {...}, "serial": S}
    {"lineage": L, "name": N, "op": "remove", "serial": S}
    {"lineage": L, "name": OLD, "op": "move", "record": {... "name": NEW}, "serial": S}
    {"lineage": L, "op": "policy", "policy": {...} | null, "serial": S}
    {"lineage": L, "name": N, "op": "spec", "serial": S, "spec": {...} | null}

`replay` is pure (bytes in, State out): the snapshot, then the lines whose
serial is above the snapshot's, which must follow on without a gap. Lines at or
below it were already folded into the snapshot by a checkpoint that crashed
before removing the journal. A last line without its newline that is not valid
JSON is an append interrupted by a crash: that put never returned, so it is
dropped. Anything else that does not fit is StateCorruptError naming the line.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from reconciler.errors import StateCorruptError
from reconciler.state import statefile
from reconciler.state.model import PolicyRecord, RunRecord, SpecRecord, State

__all__ = ["journal_line", "replay"]

_JOURNAL_KEYS = frozenset(("lineage", "serial", "op", "name", "record", "policy", "spec"))


def journal_line(lineage: str, serial: int, op: str, name: str, record_text: str | None) -> bytes:
    # Keys in sorted order, like every JSON dfr writes; the record is already
    # canonical JSON, so it is spliced in rather than encoded twice.
    if op == "policy":  # a change of the state's policy names no run
        policy = record_text if record_text is not None else "null"
        head = f'{{"lineage": {json.dumps(lineage)}, "op": "policy", "policy": {policy}, '
        return (head + f'"serial": {serial}}}\n').encode("ascii")
    head = f'{{"lineage": {json.dumps(lineage)}, "name": {json.dumps(name)}, "op": "{op}", '
    if op == "spec":  # a spec record (null: the spec is forgotten)
        spec = record_text if record_text is not None else "null"
        return (head + f'"serial": {serial}, "spec": {spec}}}\n').encode("ascii")
    body = f'"record": {record_text}, ' if record_text is not None else ""
    return (head + body + f'"serial": {serial}}}\n').encode("ascii")


class _Entry(NamedTuple):
    """One parsed, validated journal line."""

    lineage: str
    serial: int
    op: str  # put, remove, move, policy, spec
    name: str  # "" for a policy change
    record: RunRecord | None  # put: the record; move: the record under its new name
    policy: PolicyRecord | None  # policy: the policy in force from then on (None: none)
    spec: SpecRecord | None = None  # spec: the spec's record from then on (None: forgotten)


def _journal_entry(raw: bytes, source: str, lineno: int) -> _Entry:
    where = f"{source}:{lineno}"
    obj = statefile.decode_json(raw, source, line=lineno)
    if not isinstance(obj, dict):
        raise StateCorruptError(f"{where}: expected a JSON object")
    extra = sorted(set(obj) - _JOURNAL_KEYS)
    if extra:
        raise StateCorruptError(f"{where}: unknown field {', '.join(map(repr, extra))}")
    lineage, serial, op, name = (obj.get(k) for k in ("lineage", "serial", "op", "name"))
    if not isinstance(lineage, str) or not lineage:
        raise StateCorruptError(f"{where}: lineage: expected a non-empty string")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 1:
        raise StateCorruptError(f"{where}: serial: expected a positive integer")
    if op == "policy":
        if "name" in obj or "record" in obj or "spec" in obj:
            raise StateCorruptError(f"{where}: name: a policy change names no run")
        if "policy" not in obj:
            raise StateCorruptError(f"{where}: policy: missing (null for no policy)")
        raw_policy = obj["policy"]
        policy = None
        if raw_policy is not None:
            policy = statefile.check_policy(raw_policy, where, ["policy"])
        return _Entry(lineage, serial, op, "", None, policy)
    if "policy" in obj:
        raise StateCorruptError(f"{where}: policy: only a policy change carries one")
    if op == "spec" or "spec" in obj:
        return _spec_entry(obj, lineage, serial, where)
    if not isinstance(name, str) or not name:
        raise StateCorruptError(f"{where}: name: expected a non-empty string")
    record: RunRecord | None = None
    if op in ("put", "move"):
        record = statefile.check_record(obj.get("record"), where, ["record"])
        if op == "put" and record.name != name:
            raise StateCorruptError(
                f"{where}: record.name: {record.name!r} does not match name {name!r}"
            )
    elif op == "remove":
        if obj.get("record") is not None:
            raise StateCorruptError(f"{where}: record: a remove carries no record")
    else:
        raise StateCorruptError(
            f"{where}: op: expected 'put', 'remove', 'move', 'policy' or 'spec', found {op!r}"
        )
    return _Entry(lineage, serial, op, name, record, None)


def _spec_entry(obj: dict[str, Any], lineage: str, serial: int, where: str) -> _Entry:
    name = obj.get("name")
    if obj.get("op") != "spec":
        raise StateCorruptError(f"{where}: spec: only a spec change carries one")
    if "record" in obj or "spec" not in obj:
        raise StateCorruptError(f"{where}: spec: missing (null to forget it), and no record")
    if not isinstance(name, str) or not name:
        raise StateCorruptError(f"{where}: name: expected a non-empty string")
    spec = None
    if obj["spec"] is not None:
        spec = statefile.check_spec(obj["spec"], where, ["spec"])
        if spec.name != name:
            raise StateCorruptError(
                f"{where}: spec.name: {spec.name!r} does not match name {name!r}"
            )
    return _Entry(lineage, serial, "spec", name, None, None, spec)


def _apply_entry(runs: dict[str, RunRecord], entry: _Entry, where: str) -> None:
    """One journal change of a run on `runs`. A move was checked under the lock before
    it was written, so one that does not fit the state means the files do not belong
    together."""
    op, name, record = entry.op, entry.name, entry.record
    if op == "move":
        assert record is not None
        if name not in runs:
            raise StateCorruptError(f"{where}: name: {name!r} is not in the state")
        if record.name in runs:
            raise StateCorruptError(
                f"{where}: record.name: {record.name!r} is already in the state"
            )
        del runs[name]
    if record is not None:
        runs[record.name] = record
    else:
        runs.pop(name, None)


def _apply_spec(specs: dict[str, SpecRecord], entry: _Entry) -> None:
    """One journal change of a spec on `specs` (None: the spec is forgotten)."""
    if entry.spec is None:
        specs.pop(entry.name, None)
    else:
        specs[entry.name] = entry.spec


def replay(base: State | None, journal: bytes, source: str) -> State:
    """`base` (None: no snapshot yet) with the journal's changes applied.

    Raises StateCorruptError for a journal of another lineage, a gap in the
    serials, or a bad line anywhere but a torn (unterminated) last line.
    """
    if not journal:
        return base if base is not None else State.empty()
    lines = journal.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    entries = [(i + 1, raw) for i, raw in enumerate(lines)]
    if tail:
        try:
            statefile.decode_json(tail, source, line=len(lines) + 1)
        except StateCorruptError:
            # An append cut short by a crash: its put() never returned, so
            # nothing acknowledged is lost by dropping it.
            pass
        else:
            entries.append((len(lines) + 1, tail))
    lineage = base.lineage if base is not None else None
    serial = base.serial if base is not None else 0
    runs = dict(base.runs) if base is not None else {}
    policy = base.policy if base is not None else None
    specs = dict(base.specs) if base is not None else {}
    expected = serial + 1
    for lineno, raw in entries:
        entry = _journal_entry(raw, source, lineno)
        if lineage is None:
            lineage = entry.lineage  # no snapshot yet: the journal founded this state
        elif entry.lineage != lineage:
            raise StateCorruptError(
                f"{source}:{lineno}: belongs to another state (lineage {entry.lineage}, "
                f"the state's is {lineage})"
            )
        if entry.serial <= serial:
            continue  # already folded into the snapshot by a checkpoint
        if entry.serial != expected:
            raise StateCorruptError(
                f"{source}:{lineno}: change {entry.serial} follows change {expected - 1}: "
                f"changes {expected}..{entry.serial - 1} are missing"
            )
        if entry.op == "policy":
            policy = entry.policy
        elif entry.op == "spec":
            _apply_spec(specs, entry)
        else:
            _apply_entry(runs, entry, f"{source}:{lineno}")
        expected += 1
    if lineage is None:  # only skipped lines, no snapshot: cannot happen, but be total
        return State.empty()
    return State(
        format_version=statefile.FORMAT_VERSION,
        serial=expected - 1,
        lineage=lineage,
        runs=runs,
        policy=policy,
        specs=specs,
    )
