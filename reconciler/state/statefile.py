"""The state file format: JSON document <-> `State`, with version checks and upgrades.

Only reading and writing the bytes lives here (persistence and locking are the
backends' job). The document, described by `schemas/state.schema.json`::

    {"format_version": 3, "serial": N, "lineage": "...", "dfr_version": "...",
     "runs": {"<name>": {<record>}, ...},
     "policy": {"settings": {...}, "sha256": "...", "at": "...", "by": ..., "source": ...}}

(`policy`, the spending policy in force, is optional: absent until one is recorded;
so is `specs`, `{"<spec name>": {<spec record>}}`, absent while there are none.)

`loads` accepts any byte string and either returns a valid `State` or raises
`StateCorruptError` / `StateVersionError` with one line saying what is wrong
and where (``dfr.state.json: runs.foo.run_id: expected a string or null, found
an integer``); it never lets another exception escape, whatever the input.
An older `format_version` is upgraded in memory, one step per version, by the
functions in `UPGRADES`; a newer one is refused, since guessing at a format we
do not know could drop run ids.

`dumps` is deterministic (sorted keys, indent 2, ASCII, trailing newline), so
equal states give equal bytes and diffs of a committed state file stay small.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from reconciler import __version__
from reconciler.errors import StateCorruptError, StateError, StateVersionError
from reconciler.state.docschema import SCHEMA_ID, format_path, json_type, schema, schema_problem
from reconciler.state.model import (
    FORMAT_VERSION,
    PolicyRecord,
    RunRecord,
    SpecRecord,
    State,
    policy_digest,
)
from reconciler.state.records import (
    policy_from_dict,
    policy_to_dict,
    record_from_dict,
    record_to_dict,
    spec_from_dict,
    spec_to_dict,
)

__all__ = [
    "FORMAT_VERSION",
    "SCHEMA_ID",
    "UPGRADES",
    "canonical_record",
    "canonical_spec",
    "check_spec",
    "decode_json",
    "dumps",
    "format_path",
    "loads",
    "policy_from_dict",
    "policy_to_dict",
    "record_from_dict",
    "record_to_dict",
    "schema",
    "spec_from_dict",
    "spec_to_dict",
    "state_to_dict",
]


Document = dict[str, Any]
Upgrade = Callable[[Document], Document]


def _upgrade_v1_to_v2(doc: Document) -> Document:
    """Format 2 adds each record's `used` (what the API ran with); unknown before: empty."""
    runs = doc.get("runs")
    if isinstance(runs, dict):
        for record in runs.values():
            if isinstance(record, dict):
                record.setdefault("used", {})
    return doc


def _upgrade_v2_to_v3(doc: Document) -> Document:
    """Format 3 adds each record's optional `outputs` (the lock of the data a pull
    wrote); nothing was pulled by a format-2 dfr: null."""
    runs = doc.get("runs")
    if isinstance(runs, dict):
        for record in runs.values():
            if isinstance(record, dict):
                record.setdefault("outputs", None)
    return doc


#: Upgrade steps: `UPGRADES[v]` turns a format-`v` document into format `v + 1`.
UPGRADES: dict[int, Upgrade] = {1: _upgrade_v1_to_v2, 2: _upgrade_v2_to_v3}


# --------------------------------------------------------------------------- schema
# --------------------------------------------------------------------------- decoding


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python's json keeps the last of duplicate keys; for a state file that
    # would silently drop a run, so duplicates are corruption.
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode_json(data: bytes | str, source_name: str, *, line: int | None = None) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, no duplicate keys; errors -> StateCorruptError.

    `line` is the line number of `data` in `source_name` when it is one line of
    a JSON Lines file (the journal); messages then read `FILE:LINE: ...`.
    """
    if line is not None:
        source_name = f"{source_name}:{line}"
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            byte, offset = data[exc.start], exc.start
            raise StateCorruptError(
                f"{source_name}: not UTF-8 text (byte 0x{byte:02x} at offset {offset})"
            ) from None
    else:
        text = data
    if not text.strip():
        raise StateCorruptError(f"{source_name}: the file is empty")
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_finite_float,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        where = (
            f"{source_name}:{exc.colno}"
            if line is not None
            else (f"{source_name}:{exc.lineno}:{exc.colno}")
        )
        raise StateCorruptError(f"{where}: not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise StateCorruptError(f"{source_name}: not valid state: nested too deeply") from None
    except ValueError as exc:
        # Duplicate keys, NaN/Infinity, integers beyond Python's digit limit.
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StateCorruptError(f"{source_name}: not valid JSON: {message}") from None


def check_record(obj: Any, source_name: str, where: list[str | int]) -> RunRecord:
    """Validate one record dict (at path `where` in `source_name`) and build it.

    Used for the `runs` of a snapshot and for each journal line.
    """
    problem = schema_problem(obj, "/$defs/run", where)
    if problem is not None:
        raise StateCorruptError(f"{source_name}: {problem}")
    return record_from_dict(obj)


def _upgrade(doc: Document, version: int, source_name: str) -> Document:
    """Apply upgrade steps from `version` up to FORMAT_VERSION."""
    while version < FORMAT_VERSION:
        step = UPGRADES.get(version)
        if step is None:
            raise StateCorruptError(
                f"{source_name}: format_version {version} is not a format any dfr wrote"
            )
        try:
            doc = step(doc)
        except (LookupError, TypeError, ValueError, AttributeError) as exc:
            raise StateCorruptError(
                f"{source_name}: cannot upgrade from format {version}: {type(exc).__name__}: {exc}"
            ) from None
        version += 1
        doc["format_version"] = version
    return doc


def loads(data: bytes | str, source_name: str = "state") -> State:
    """Parse and validate a state document; StateCorruptError/StateVersionError on any problem."""
    doc = decode_json(data, source_name)
    if not isinstance(doc, dict):
        raise StateCorruptError(
            f"{source_name}: expected a JSON object at the top level, found {json_type(doc)}"
        )
    version = doc.get("format_version")
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        what = "missing" if "format_version" not in doc else f"found {json_type(version)}"
        raise StateCorruptError(f"{source_name}: format_version: expected an integer, {what}")
    if version > FORMAT_VERSION:
        raise StateVersionError(
            f"{source_name} was written by a newer dfr (format {version}); "
            f"this dfr reads format {FORMAT_VERSION}: upgrade dfr"
        )
    if version < FORMAT_VERSION:
        doc = _upgrade(doc, version, source_name)
    else:
        doc["format_version"] = version
    problem = schema_problem(doc, "", [])
    if problem is not None:
        raise StateCorruptError(f"{source_name}: {problem}")
    runs: dict[str, RunRecord] = {}
    for key, obj in doc["runs"].items():
        if obj["name"] != key:
            raise StateCorruptError(
                f"{source_name}: {format_path(['runs', key, 'name'])}: "
                f"{obj['name']!r} does not match its key {key!r}"
            )
        runs[key] = record_from_dict(obj)
    specs = _specs_of(doc.get("specs", {}), source_name)
    policy = None
    if "policy" in doc:
        policy = policy_from_dict(doc["policy"])
        if policy.sha256 != policy_digest(policy.settings):
            raise StateCorruptError(
                f"{source_name}: policy.sha256: does not match policy.settings (edited by hand?)"
            )
    return State(
        format_version=FORMAT_VERSION,
        serial=int(doc["serial"]),
        lineage=doc["lineage"],
        runs=runs,
        policy=policy,
        specs=specs,
    )


def _specs_of(objs: dict[str, Any], source_name: str) -> dict[str, SpecRecord]:
    """The spec records of a document that passed the schema (each keyed by its name)."""
    specs: dict[str, SpecRecord] = {}
    for key, obj in objs.items():
        if obj["name"] != key:
            raise StateCorruptError(
                f"{source_name}: {format_path(['specs', key, 'name'])}: "
                f"{obj['name']!r} does not match its key {key!r}"
            )
        specs[key] = spec_from_dict(obj)
    return specs


def check_spec(obj: Any, source_name: str, where: list[str | int]) -> SpecRecord:
    """Validate one spec record dict (a journal line's, at `where`) and build it."""
    problem = schema_problem(obj, "/$defs/spec", where)
    if problem is not None:
        raise StateCorruptError(f"{source_name}: {problem}")
    return spec_from_dict(obj)


def canonical_spec(record: SpecRecord) -> tuple[str, SpecRecord]:
    """Check a spec record about to be stored; its JSON text and its re-read value
    (as `canonical_record` for runs)."""
    return _canonical(record, f"spec {record.name!r}", "spec", spec_to_dict, check_spec)


def check_policy(obj: Any, source_name: str, where: list[str | int]) -> PolicyRecord:
    """Validate one policy dict (a journal line's, at `where`) and build it."""
    problem = schema_problem(obj, "/$defs/policy", where)
    if problem is not None:
        raise StateCorruptError(f"{source_name}: {problem}")
    policy = policy_from_dict(obj)
    if policy.sha256 != policy_digest(policy.settings):
        raise StateCorruptError(
            f"{source_name}: {format_path([*where, 'sha256'])}: does not match the settings"
        )
    return policy


# --------------------------------------------------------------------------- encoding


def state_to_dict(state: State) -> dict[str, Any]:
    """The JSON object of a whole state (always in the current format)."""
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "serial": state.serial,
        "lineage": state.lineage,
        "dfr_version": __version__,
        "runs": {name: record_to_dict(rec) for name, rec in state.runs.items()},
    }
    if state.policy is not None:
        doc["policy"] = policy_to_dict(state.policy)
    if state.specs:  # optional: a state without specs keeps the bytes it had
        doc["specs"] = {name: spec_to_dict(rec) for name, rec in state.specs.items()}
    return doc


def encode(obj: Any) -> str:
    """Canonical JSON text: sorted keys, ASCII only (always encodable), no NaN."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=True, allow_nan=False)


def dumps(state: State) -> bytes:
    """The state document: deterministic bytes, indent 2, trailing newline."""
    try:
        text = json.dumps(
            state_to_dict(state), sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise StateError(f"cannot serialise state: {exc}") from None
    return (text + "\n").encode("ascii")


def canonical_record(record: RunRecord) -> tuple[str, RunRecord]:
    """Check a record about to be stored; return its JSON text and its re-read value.

    The returned record is the one a later `read()` will produce (tuples become
    lists, IN_PROGRESS becomes PROCESSING, a caller's later mutation of `spec`
    cannot leak in), so what a Store holds in memory is exactly what is on disk.
    A record that cannot be stored (a set in `spec`, a NaN cost, an int run id)
    raises StateError before anything is written.
    """
    return _canonical(record, f"run {record.name!r}", "record", record_to_dict, check_record)


_Stored = TypeVar("_Stored")


def _canonical(
    record: _Stored,
    label: str,
    kind: str,
    to_dict: Callable[[_Stored], dict[str, Any]],
    check: Callable[[Any, str, list[str | int]], _Stored],
) -> tuple[str, _Stored]:
    """`record`'s JSON text and the value read back from it through the same
    `check` as a journal line of `kind`; StateError naming `label` ("run 'x'")
    when it cannot be stored."""
    try:
        text = encode(to_dict(record))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateError(f"cannot record {label}: not JSON-serialisable: {exc}") from None
    try:
        return text, check(decode_json(text, kind), kind, [])
    except StateCorruptError as exc:
        detail = exc.message.removeprefix(f"{kind}: ")
        raise StateError(f"cannot record {label}: {detail}") from None
