"""The state document's JSON Schema and how its violations are worded.

`schema_problem(instance, part, where)` answers the first violation as one line a
person can act on (`runs.foo.run_id: expected a string or null, found an integer`),
or None. A hand-written fast path that is *sound* against the schema (it never
accepts what the schema rejects; tests fuzz that) answers first, since jsonschema
is ~30x slower on a 5,000-run state; the schema stays the one authority.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from reconciler.state.model import FORMAT_VERSION, RunRecord

SCHEMA_ID = "https://dataframer.ai/schemas/reconciler/v1/state.schema.json"

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def schema() -> dict[str, Any]:
    """The state JSON Schema (draft 2020-12), as shipped in the package."""
    return _schema()


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    text = (resources.files("reconciler") / "schemas" / "state.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=4)
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


#: JSON's type names, in the order a Python value is tested against them (bool
#: before int: True is an int to Python, a boolean to JSON).
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)
_TYPE_WORDS = {name: f"{'an' if name[0] in 'aeiou' else 'a'} {name}" for _, name in _JSON_TYPES}
_TYPE_WORDS["null"] = "null"


def json_type(value: Any) -> str:
    """`value`'s JSON type as a message says it: "an integer", "null", ..."""
    if value is None:
        return "null"
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return _TYPE_WORDS[name]
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
        return path, f"expected {words}, found {json_type(instance)}"
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


def schema_problem(instance: Any, part: str, where: list[str | int]) -> str | None:
    """The first schema violation as `path: problem` (plus a count of others), or None.

    `part` is "" for a whole document or "/$defs/run" for one record; `where`
    is the location of `instance` in the document, prefixed to the path.
    """
    # Fast path: a hand-written check that is *sound* against the schema (it
    # never accepts what the schema rejects; tests fuzz that), ~30x faster than
    # jsonschema on a 5,000-run state. Only when it says no do we ask the schema,
    # which stays the one authority and words the error.
    fast = _FAST_PATHS.get(part)
    if fast is not None and fast(instance):
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
# required by the schema: the fast path takes records that have them all, with or
# without the optional keys of format 3 (absent from a format-2 journal line).
_RUN_KEYS = frozenset(field.name for field in dataclasses.fields(RunRecord))
#: Format 3's optional record keys: each is checked by its own `_fast_*_ok` below.
_OPTIONAL_RUN_KEYS = frozenset(("outputs", "evaluation"))
_RUN_REQUIRED_KEYS = _RUN_KEYS - _OPTIONAL_RUN_KEYS
_OUTPUTS_KEYS = frozenset(("path", "files", "pulled_at", "run_id", "patterns"))
_OUTPUTS_REQUIRED = frozenset(("path", "files", "pulled_at"))
_OUTPUT_FILE_KEYS = frozenset(("path", "size", "sha256", "file_id"))
_INTENT_KEYS = frozenset(("id", "body", "at"))
_INTENT_KEYS_V2 = frozenset(("id", "body", "at", "replaces"))
_ERROR_KEYS = frozenset(("message", "status_code", "at"))
_DOC_KEYS = frozenset(
    ("format_version", "serial", "lineage", "dfr_version", "runs", "policy", "specs")
)
_SPEC_REQUIRED = frozenset(
    ("name", "updated_at", "spec_id", "status", "error", "versions", "intent")
)
_SPEC_KEYS = _SPEC_REQUIRED | {"body", "source", "api", "drift"}
_SPEC_VERSION_KEYS = frozenset(("number", "sha256", "at", "by_dfr"))
_SPEC_INTENT_KEYS = frozenset(("id", "kind", "body", "at", "content_sha256"))
_POLICY_KEYS = frozenset(("settings", "sha256", "at", "by", "source"))
_POLICY_REQUIRED = frozenset(("settings", "sha256", "at"))
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_DOC_REQUIRED = frozenset(("format_version", "serial", "lineage", "runs"))


def _fast_run_ok(r: Any) -> bool:
    """True only if `r` is a valid record per `$defs/run` (may say False for valid ones)."""
    if not isinstance(r, dict) or not (_RUN_REQUIRED_KEYS <= r.keys() <= _RUN_KEYS):
        return False
    if not _fast_outputs_ok(r.get("outputs")):
        return False
    if not _fast_evaluation_ok(r.get("evaluation")):
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


def _fast_output_file_ok(f: Any) -> bool:
    return (
        isinstance(f, dict)
        and f.keys() == _OUTPUT_FILE_KEYS
        and isinstance(f["path"], str)
        and f["path"] != ""
        and _is_int(f["size"])
        and f["size"] >= 0
        and isinstance(f["sha256"], str)
        and _SHA256.fullmatch(f["sha256"]) is not None
        and isinstance(f["file_id"], str)
    )


def _fast_outputs_ok(o: Any) -> bool:
    """True only if `o` is a valid record `outputs` (null, or `$defs/outputs`)."""
    if o is None:
        return True
    if not isinstance(o, dict) or not (_OUTPUTS_REQUIRED <= o.keys() <= _OUTPUTS_KEYS):
        return False
    files = o["files"]
    return (
        isinstance(o["path"], str)
        and o["path"] != ""
        and isinstance(o["pulled_at"], str)
        and _opt_str(o.get("run_id"))
        and isinstance(o.get("patterns", []), list)
        and all(isinstance(p, str) for p in o.get("patterns", []))
        and isinstance(files, list)
        and all(_fast_output_file_ok(f) for f in files)
    )


_EVALUATION_KEYS = frozenset(
    (
        "at",
        "run_id",
        "id",
        "status",
        "model",
        "intent",
        "max_gap",
        "worst_property",
        "gaps",
        "error",
    )
)


def _fast_evaluation_ok(e: Any) -> bool:
    """True only if `e` is a valid record `evaluation` (null, or `$defs/evaluation`)."""
    if e is None:
        return True
    if not isinstance(e, dict) or e.keys() != _EVALUATION_KEYS:
        return False
    intent, gaps, gap = e["intent"], e["gaps"], e["max_gap"]
    return (
        isinstance(e["at"], str)
        and all(_opt_str(e[k]) for k in ("run_id", "status", "model", "worst_property", "error"))
        and (e["id"] is None or (isinstance(e["id"], str) and e["id"] != ""))
        and (gap is None or (_is_number(gap) and gap >= 0))
        and isinstance(gaps, dict)
        and all(_is_number(v) and v >= 0 for v in gaps.values())
        and (
            intent is None
            or (
                isinstance(intent, dict)
                and intent.keys() == _INTENT_KEYS
                and isinstance(intent["id"], str)
                and intent["id"] != ""
                and isinstance(intent["body"], dict)
                and isinstance(intent["at"], str)
            )
        )
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
        and _SHA256.fullmatch(p["sha256"]) is not None
        and isinstance(p["at"], str)
        and _opt_str(p.get("by"))
        and _opt_str(p.get("source"))
    )


def _opt_sha(v: Any) -> bool:
    return v is None or (isinstance(v, str) and _SHA256.fullmatch(v) is not None)


def _fast_spec_version_ok(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and {"number", "by_dfr"} <= v.keys() <= _SPEC_VERSION_KEYS
        and _is_int(v["number"])
        and v["number"] >= 1
        and isinstance(v["by_dfr"], bool)
        and _opt_sha(v.get("sha256"))
        and _opt_str(v.get("at"))
    )


def _fast_spec_intent_ok(i: Any) -> bool:
    return i is None or (
        isinstance(i, dict)
        and {"id", "kind", "body", "at"} <= i.keys() <= _SPEC_INTENT_KEYS
        and isinstance(i["id"], str)
        and i["id"] != ""
        and i["kind"] in ("create", "update")
        and isinstance(i["body"], dict)
        and isinstance(i["at"], str)
        and _opt_sha(i.get("content_sha256"))
    )


def _fast_spec_ok(r: Any) -> bool:
    """True only if `r` is a valid `$defs/spec` (may say False for valid ones)."""
    if not isinstance(r, dict) or not (_SPEC_REQUIRED <= r.keys() <= _SPEC_KEYS):
        return False
    versions = r["versions"]
    spec_id = r["spec_id"]
    return (
        isinstance(r["name"], str)
        and r["name"] != ""
        and isinstance(r["updated_at"], str)
        and (spec_id is None or (isinstance(spec_id, str) and spec_id != ""))
        and _opt_str(r["status"])
        and _opt_str(r["error"])
        and isinstance(versions, list)
        and all(_fast_spec_version_ok(v) for v in versions)
        and _fast_spec_intent_ok(r["intent"])
        and isinstance(r.get("body", {}), dict)
        and _opt_str(r.get("source"))
        and _opt_str(r.get("api"))
        and _opt_str(r.get("drift"))
    )


def _fast_specs_ok(specs: Any) -> bool:
    return isinstance(specs, dict) and all(k != "" and _fast_spec_ok(v) for k, v in specs.items())


def _fast_doc_ok(d: Any) -> bool:
    """True only if `d` is a valid document per the schema (may say False for valid ones)."""
    if not isinstance(d, dict) or not (_DOC_REQUIRED <= d.keys() <= _DOC_KEYS):
        return False
    # A policy with limits is checked alone by the schema, so that a state with a
    # policy keeps the fast path for its runs.
    if (
        "policy" in d
        and not _fast_policy_ok(d["policy"])
        and schema_problem(d["policy"], "/$defs/policy", ["policy"]) is not None
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
        and ("specs" not in d or _fast_specs_ok(d["specs"]))
    )


#: The hand-written checks, by the part of the schema each is sound against.
_FAST_PATHS: dict[str, Callable[[Any], bool]] = {
    "": _fast_doc_ok,
    "/$defs/run": _fast_run_ok,
    "/$defs/spec": _fast_spec_ok,
}
