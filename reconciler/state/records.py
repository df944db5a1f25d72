"""One run record, one spec record and the recorded policy <-> their JSON objects.

Each object's keys are the fields of its dataclass (`reconciler.state.model`), in
their order: `_to_dict` writes every field, nulls included, so a record's JSON
always has the same keys (nested records as objects, tuples as lists), and
`_from_dict` reads them back, through the converters `_READ` names for the
fields whose value is not the JSON itself. The dicts given to the `*_from_dict`
functions already passed the schema (`docschema.schema_problem`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from reconciler.state.model import (
    EvaluationRecord,
    Intent,
    OutputFile,
    OutputsRecord,
    PolicyRecord,
    RunRecord,
    SpecIntent,
    SpecRecord,
    SpecVersionRecord,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Convert = Callable[[Any], Any]
R = TypeVar("R", bound="DataclassInstance")


@cache
def _names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _same(value: Any) -> Any:
    return value


def _optional(convert: Convert) -> Convert:
    """`convert`, but None stays None."""
    return lambda value: None if value is None else convert(value)


def _each(cls: type[DataclassInstance]) -> Convert:
    """A JSON list of `cls` objects -> a tuple of `cls`."""
    return lambda objs: tuple(_from_dict(cls, obj) for obj in objs)


_INT_OR_NONE = _optional(int)
_FLOAT_OR_NONE = _optional(float)

#: How the fields whose value is not their JSON itself are read, per record type.
_READ: dict[type[Any], dict[str, Convert]] = {
    RunRecord: {
        "intent": _optional(lambda obj: _from_dict(Intent, obj)),
        "attempts": int,
        "samples_completed": _INT_OR_NONE,
        "samples_failed": _INT_OR_NONE,
        "total_cost": _FLOAT_OR_NONE,
        "previous_run_ids": list,
        "used": lambda used: dict(used or {}),
        "outputs": lambda obj: outputs_from_dict(obj),
        "evaluation": lambda obj: evaluation_from_dict(obj),
    },
    EvaluationRecord: {
        "intent": _optional(lambda obj: _from_dict(Intent, obj)),
        "max_gap": _FLOAT_OR_NONE,
        "gaps": lambda gaps: {k: float(v) for k, v in (gaps or {}).items()},
    },
    OutputsRecord: {"files": _each(OutputFile), "patterns": lambda p: tuple(p or ())},
    OutputFile: {"size": int},
    PolicyRecord: {"settings": dict},
    SpecRecord: {
        "versions": _each(SpecVersionRecord),
        "intent": _optional(lambda obj: _from_dict(SpecIntent, obj)),
        "body": lambda body: dict(body or {}),
    },
    SpecVersionRecord: {"number": int},
}


def _from_dict(cls: type[R], obj: Mapping[str, Any]) -> R:
    """A `cls` of the keys of `obj` that are its fields (an absent one keeps its default)."""
    convert = _READ.get(cls, {})
    return cls(**{k: convert.get(k, _same)(obj[k]) for k in _names(cls) if k in obj})


def _without_replaces(intent: Intent) -> dict[str, Any]:
    """An evaluation POST's intent: it never replaces anything, so it has no `replaces` key."""
    return {k: v for k, v in _to_dict(intent).items() if k != "replaces"}


#: The fields written otherwise than as themselves (records as objects, tuples as lists).
_WRITE: dict[type[Any], dict[str, Convert]] = {
    EvaluationRecord: {
        "intent": _optional(_without_replaces),
        "gaps": lambda gaps: dict(sorted(gaps.items())),
    },
}


def _json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return _to_dict(value) if hasattr(value, "__dataclass_fields__") else value


def _to_dict(value: DataclassInstance) -> dict[str, Any]:
    """Every field of `value` by name, in field order, as JSON."""
    convert = _WRITE.get(type(value), {})
    return {k: convert.get(k, _json)(getattr(value, k)) for k in _names(type(value))}


def evaluation_from_dict(obj: Mapping[str, Any] | None) -> EvaluationRecord | None:
    """Build an EvaluationRecord from a dict that already passed the schema (None: none)."""
    return None if obj is None else _from_dict(EvaluationRecord, obj)


def evaluation_to_dict(evaluation: EvaluationRecord | None) -> dict[str, Any] | None:
    """The JSON object of a run's evaluation record (every key written), or None."""
    return None if evaluation is None else _to_dict(evaluation)


def outputs_from_dict(obj: Mapping[str, Any] | None) -> OutputsRecord | None:
    """Build an OutputsRecord from a dict that already passed the schema (None: none)."""
    return None if obj is None else _from_dict(OutputsRecord, obj)


def outputs_to_dict(outputs: OutputsRecord | None) -> dict[str, Any] | None:
    """The JSON object of a run's outputs record (files sorted by path), or None."""
    return None if outputs is None else _to_dict(outputs)


def policy_from_dict(obj: Mapping[str, Any]) -> PolicyRecord:
    """Build a PolicyRecord from a dict that already passed the schema."""
    return _from_dict(PolicyRecord, obj)


def policy_to_dict(policy: PolicyRecord) -> dict[str, Any]:
    """The JSON object of a recorded policy."""
    return _to_dict(policy)


def record_from_dict(obj: Mapping[str, Any]) -> RunRecord:
    """Build a RunRecord from a record dict that already passed the schema."""
    return _from_dict(RunRecord, obj)


def record_to_dict(record: RunRecord) -> dict[str, Any]:
    """The JSON object of one record (every field, nulls included)."""
    return _to_dict(record)


def spec_from_dict(obj: Mapping[str, Any]) -> SpecRecord:
    """Build a SpecRecord from a spec dict that already passed the schema."""
    return _from_dict(SpecRecord, obj)


def spec_to_dict(record: SpecRecord) -> dict[str, Any]:
    """The JSON object of one spec record (every field, nulls included)."""
    return _to_dict(record)
