"""The state file format: JSON document <-> `State`, with version checks and upgrades.

Only reading and writing the bytes lives here (persistence and locking are the
backends' job). The document, described by `schemas/state.schema.json`::

    {"format_version": 2, "serial": N, "lineage": "...", "dfr_version": "...",
     "runs": {"<name>": {<record>}, ...},
     "policy": {"settings": {...}, "sha256": "...", "at": "...", "by": ..., "source": ...}}

(`policy`, the spending policy in force, is optional: absent until one is recorded.)

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

import dataclasses
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

from reconciler import __version__
from reconciler.errors import StateCorruptError, StateError, StateVersionError
from reconciler.state.model import (
    FORMAT_VERSION,
    Intent,
    PolicyRecord,
    RunRecord,
    State,
    policy_digest,
)

__all__ = [
    "FORMAT_VERSION",
    "SCHEMA_ID",
    "UPGRADES",
    "canonical_record",
    "decode_json",
    "dumps",
    "format_path",
    "loads",
    "policy_from_dict",
    "policy_to_dict",
    "record_from_dict",
    "record_to_dict",
    "schema",
    "state_to_dict",
]

SCHEMA_ID = "https://dataframer.ai/schemas/reconciler/v1/state.schema.json"

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


#: Upgrade steps: `UPGRADES[v]` turns a format-`v` document into format `v + 1`.
UPGRADES: dict[int, Upgrade] = {1: _upgrade_v1_to_v2}

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- schema


def schema() -> dict[str, Any]:
    """The state JSON Schema (draft 2020-12), as shipped in the package."""
    return _schema()


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = (resources.files("reconciler") / "schemas" / "state.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=2)
def _validator(part: str) -> Any:
    # Imported lazily: jsonschema is slow to import and `dfr --version` must be fast.
    # Through import_module, so typing does not depend on whether stubs are installed.
    jsonschema = importlib.import_module("jsonschema")
    from referencing import Registry, Resource

    root = _schema()
    registry: Registry[Any] = Registry().with_resource(SCHEMA_ID, Resource.from_contents(root))
    sub = root if part == "" else {"$ref": f"{SCHEMA_ID}#{part}"}
    return jsonschema.Draft202012Validator(sub, registry=registry)


# --------------------------------------------------------------------------- messages


def format_path(path: Iterable[str | int]) -> str:
    """`runs.foo.previous_run_ids[0]`; odd keys are quoted so the message stays one line."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(top level)"


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "object": "an object",
    "array": "an array",
    "boolean": "a boolean",
    "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _fields(names: list[str]) -> str:
    """ "field 'a'" / "fields 'a', 'b'" / "fields 'a', 'b', 'c' and 9 more"."""
    shown = ", ".join(repr(n) for n in names[:3])
    rest = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"field{'s' if len(names) > 1 else ''} {shown}{rest}"


def _describe_error(error: Any) -> tuple[list[str | int], str]:
    """(path, problem) for one schema error, worded for a person."""
    path: list[str | int] = list(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "type":
        wanted = [value] if isinstance(value, str) else list(value)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
        return path, f"expected {words}, found {_json_type(instance)}"
    if kind == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        return path, f"missing {_fields(missing)}"
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set(error.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in known)
        return path, f"unknown {_fields(extra)}"
    if kind == "minLength":
        return path, "must not be empty"
    if kind == "minimum":
        return path, f"must be at least {value}, found {instance!r}"
    if kind == "const":
        return path, f"must be {value!r}, found {instance!r}"
    if kind == "propertyNames":
        return path, f"invalid key {instance!r}"
    message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
    return path, message.replace("\n", " ")


def _schema_problem(instance: Any, part: str, where: list[str | int]) -> str | None:
    """The first schema violation as `path: problem` (plus a count of others), or None.

    `part` is "" for a whole document or "/$defs/run" for one record; `where`
    is the location of `instance` in the document, prefixed to the path.
    """
    # Fast path: a hand-written check that is *sound* against the schema (it
    # never accepts what the schema rejects; tests fuzz that), ~30x faster than
    # jsonschema on a 5,000-run state. Only when it says no do we ask the schema,
    # which stays the one authority and words the error.
    if _fast_run_ok(instance) if part else _fast_doc_ok(instance):
        return None
    errors = list(_validator(part).iter_errors(instance))
    if not errors:
        return None
    # Report the first problem in document order so the message is stable;
    # `required` yields one error per missing key, so count distinct places.
    errors.sort(key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator)))
    path, problem = _describe_error(errors[0])
    places = {(tuple(str(p) for p in e.absolute_path), str(e.validator)) for e in errors}
    more = len(places) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    full = [*where, *path]
    return f"{format_path(full)}: {problem}{suffix}" if full else f"{problem}{suffix}"


def _is_int(v: Any) -> bool:
    # JSON Schema's "integer" includes 1.0 but not booleans.
    return (isinstance(v, int) and not isinstance(v, bool)) or (
        isinstance(v, float) and v.is_integer()
    )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _opt_count(v: Any) -> bool:
    return v is None or (_is_int(v) and v >= 0)


# Every record field but `used` (format 2; a journal line of format 1 lacks it) is
# required by the schema: the fast path takes records that have them all.
_RUN_KEYS = frozenset(field.name for field in dataclasses.fields(RunRecord))
_INTENT_KEYS = frozenset(("id", "body", "at"))
_INTENT_KEYS_V2 = frozenset(("id", "body", "at", "replaces"))
_ERROR_KEYS = frozenset(("message", "status_code", "at"))
_DOC_KEYS = frozenset(("format_version", "serial", "lineage", "dfr_version", "runs", "policy"))
_POLICY_KEYS = frozenset(("settings", "sha256", "at", "by", "source"))
_POLICY_REQUIRED = frozenset(("settings", "sha256", "at"))
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOC_REQUIRED = frozenset(("format_version", "serial", "lineage", "runs"))


def _fast_run_ok(r: Any) -> bool:
    """True only if `r` is a valid record per `$defs/run` (may say False for valid ones)."""
    if not isinstance(r, dict) or r.keys() != _RUN_KEYS:
        return False
    intent = r["intent"]
    if intent is not None and not (
        isinstance(intent, dict)
        and intent.keys() in (_INTENT_KEYS, _INTENT_KEYS_V2)
        and _opt_str(intent.get("replaces"))
        and isinstance(intent["id"], str)
        and intent["id"] != ""
        and isinstance(intent["body"], dict)
        and isinstance(intent["at"], str)
    ):
        return False
    err = r["last_error"]
    if err is not None and not (
        isinstance(err, dict)
        and "message" in err
        and err.keys() <= _ERROR_KEYS
        and isinstance(err["message"], str)
        and (err.get("status_code") is None or _is_int(err["status_code"]))
        and _opt_str(err.get("at"))
    ):
        return False
    labels = r["labels"]
    ids = r["previous_run_ids"]
    cost = r["total_cost"]
    return (
        isinstance(r["name"], str)
        and r["name"] != ""
        and (r["run_id"] is None or (isinstance(r["run_id"], str) and r["run_id"] != ""))
        and _opt_str(r["status"])
        and isinstance(r["spec"], dict)
        and isinstance(labels, dict)
        and all(isinstance(v, str) for v in labels.values())
        and _opt_str(r["submitted_at"])
        and _opt_str(r["created_at"])
        and _opt_str(r["completed_at"])
        and isinstance(r["updated_at"], str)
        and _is_int(r["attempts"])
        and r["attempts"] >= 0
        and _opt_str(r["failure_reason"])
        and _opt_count(r["samples_completed"])
        and _opt_count(r["samples_failed"])
        and (cost is None or _is_number(cost))
        and _opt_str(r["drift"])
        and isinstance(ids, list)
        and all(isinstance(v, str) for v in ids)
        and isinstance(r["used"], dict)
        and _opt_str(r["source"])
        and _opt_str(r["api"])
    )


def _fast_policy_ok(p: Any) -> bool:
    """True only if `p` is a valid `$defs/policy` (limits are few: the schema words the rest)."""
    if not isinstance(p, dict) or not (_POLICY_REQUIRED <= p.keys() <= _POLICY_KEYS):
        return False
    settings = p["settings"]
    return (
        isinstance(settings, dict)
        and not settings  # a policy with limits is checked by the schema (rare, small)
        and isinstance(p["sha256"], str)
        and _SHA256.match(p["sha256"]) is not None
        and isinstance(p["at"], str)
        and _opt_str(p.get("by"))
        and _opt_str(p.get("source"))
    )


def _fast_doc_ok(d: Any) -> bool:
    """True only if `d` is a valid document per the schema (may say False for valid ones)."""
    if not isinstance(d, dict) or not (_DOC_REQUIRED <= d.keys() <= _DOC_KEYS):
        return False
    # A policy with limits is checked alone by the schema, so that a state with a
    # policy keeps the fast path for its runs.
    if (
        "policy" in d
        and not _fast_policy_ok(d["policy"])
        and _schema_problem(d["policy"], "/$defs/policy", ["policy"]) is not None
    ):
        return False
    runs = d["runs"]
    return (
        d["format_version"] == FORMAT_VERSION
        and not isinstance(d["format_version"], bool)
        and _is_int(d["serial"])
        and d["serial"] >= 0
        and isinstance(d["lineage"], str)
        and d["lineage"] != ""
        and isinstance(d.get("dfr_version", ""), str)
        and isinstance(runs, dict)
        and all(k != "" and _fast_run_ok(v) for k, v in runs.items())
    )


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


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def record_from_dict(obj: Mapping[str, Any]) -> RunRecord:
    """Build a RunRecord from a record dict that already passed the schema."""
    intent_obj = obj["intent"]
    intent = (
        None
        if intent_obj is None
        else Intent(
            id=intent_obj["id"],
            body=intent_obj["body"],
            at=intent_obj["at"],
            replaces=intent_obj.get("replaces"),
        )
    )
    cost = obj["total_cost"]
    return RunRecord(
        name=obj["name"],
        run_id=obj["run_id"],
        status=obj["status"],
        spec=obj["spec"],
        labels=obj["labels"],
        intent=intent,
        submitted_at=obj["submitted_at"],
        created_at=obj["created_at"],
        completed_at=obj["completed_at"],
        updated_at=obj["updated_at"],
        attempts=int(obj["attempts"]),
        last_error=obj["last_error"],
        failure_reason=obj["failure_reason"],
        samples_completed=_int_or_none(obj["samples_completed"]),
        samples_failed=_int_or_none(obj["samples_failed"]),
        total_cost=None if cost is None else float(cost),
        drift=obj["drift"],
        previous_run_ids=list(obj["previous_run_ids"]),
        used=dict(obj.get("used") or {}),
        source=obj.get("source"),
        api=obj.get("api"),
    )


def check_record(obj: Any, source_name: str, where: list[str | int]) -> RunRecord:
    """Validate one record dict (at path `where` in `source_name`) and build it.

    Used for the `runs` of a snapshot and for each journal line.
    """
    problem = _schema_problem(obj, "/$defs/run", where)
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
            f"{source_name}: expected a JSON object at the top level, found {_json_type(doc)}"
        )
    version = doc.get("format_version")
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool):
        what = "missing" if "format_version" not in doc else f"found {_json_type(version)}"
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
    problem = _schema_problem(doc, "", [])
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
    )


def policy_from_dict(obj: Mapping[str, Any]) -> PolicyRecord:
    """Build a PolicyRecord from a dict that already passed the schema."""
    return PolicyRecord(
        settings=dict(obj["settings"]),
        sha256=obj["sha256"],
        at=obj["at"],
        by=obj.get("by"),
        source=obj.get("source"),
    )


def policy_to_dict(policy: PolicyRecord) -> dict[str, Any]:
    """The JSON object of a recorded policy."""
    return {
        "settings": policy.settings,
        "sha256": policy.sha256,
        "at": policy.at,
        "by": policy.by,
        "source": policy.source,
    }


def check_policy(obj: Any, source_name: str, where: list[str | int]) -> PolicyRecord:
    """Validate one policy dict (a journal line's, at `where`) and build it."""
    problem = _schema_problem(obj, "/$defs/policy", where)
    if problem is not None:
        raise StateCorruptError(f"{source_name}: {problem}")
    policy = policy_from_dict(obj)
    if policy.sha256 != policy_digest(policy.settings):
        raise StateCorruptError(
            f"{source_name}: {format_path([*where, 'sha256'])}: does not match the settings"
        )
    return policy


# --------------------------------------------------------------------------- encoding


def record_to_dict(record: RunRecord) -> dict[str, Any]:
    """The JSON object of one record (every field, nulls included)."""
    intent = record.intent
    return {
        "name": record.name,
        "run_id": record.run_id,
        "status": record.status,
        "spec": record.spec,
        "labels": record.labels,
        "intent": None
        if intent is None
        else {"id": intent.id, "body": intent.body, "at": intent.at, "replaces": intent.replaces},
        "submitted_at": record.submitted_at,
        "created_at": record.created_at,
        "completed_at": record.completed_at,
        "updated_at": record.updated_at,
        "attempts": record.attempts,
        "last_error": record.last_error,
        "failure_reason": record.failure_reason,
        "samples_completed": record.samples_completed,
        "samples_failed": record.samples_failed,
        "total_cost": record.total_cost,
        "drift": record.drift,
        "previous_run_ids": record.previous_run_ids,
        "used": record.used,
        "source": record.source,
        "api": record.api,
    }


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
    name = record.name
    try:
        text = encode(record_to_dict(record))
    except (TypeError, ValueError, RecursionError) as exc:
        raise StateError(f"cannot record run {name!r}: not JSON-serialisable: {exc}") from None
    try:
        obj = decode_json(text, "record")
        return text, check_record(obj, "record", [])
    except StateCorruptError as exc:
        detail = exc.message.removeprefix("record: ")
        raise StateError(f"cannot record run {name!r}: {detail}") from None
