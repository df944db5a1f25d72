"""One run record, one spec record and the recorded policy <-> their JSON objects.

The dicts given to the `*_from_dict` functions already passed the schema
(`docschema.schema_problem`); the `*_to_dict` functions write every field,
nulls included, so a record's JSON always has the same keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
        outputs=outputs_from_dict(obj.get("outputs")),
        evaluation=evaluation_from_dict(obj.get("evaluation")),
    )


def _intent_from_dict(obj: Mapping[str, Any] | None) -> Intent | None:
    if obj is None:
        return None
    return Intent(id=obj["id"], body=obj["body"], at=obj["at"], replaces=obj.get("replaces"))


def evaluation_from_dict(obj: Mapping[str, Any] | None) -> EvaluationRecord | None:
    """Build an EvaluationRecord from a dict that already passed the schema (None: none)."""
    if obj is None:
        return None
    gap = obj.get("max_gap")
    return EvaluationRecord(
        at=obj["at"],
        run_id=obj.get("run_id"),
        id=obj.get("id"),
        status=obj.get("status"),
        model=obj.get("model"),
        intent=_intent_from_dict(obj.get("intent")),
        max_gap=None if gap is None else float(gap),
        worst_property=obj.get("worst_property"),
        gaps={k: float(v) for k, v in (obj.get("gaps") or {}).items()},
        error=obj.get("error"),
    )


def evaluation_to_dict(evaluation: EvaluationRecord | None) -> dict[str, Any] | None:
    """The JSON object of a run's evaluation record (every key written), or None."""
    if evaluation is None:
        return None
    intent = evaluation.intent
    return {
        "at": evaluation.at,
        "run_id": evaluation.run_id,
        "id": evaluation.id,
        "status": evaluation.status,
        "model": evaluation.model,
        "intent": None
        if intent is None
        else {"id": intent.id, "body": intent.body, "at": intent.at},
        "max_gap": evaluation.max_gap,
        "worst_property": evaluation.worst_property,
        "gaps": dict(sorted(evaluation.gaps.items())),
        "error": evaluation.error,
    }


def outputs_from_dict(obj: Mapping[str, Any] | None) -> OutputsRecord | None:
    """Build an OutputsRecord from a dict that already passed the schema (None: none)."""
    if obj is None:
        return None
    return OutputsRecord(
        path=obj["path"],
        files=tuple(
            OutputFile(
                path=f["path"], size=int(f["size"]), sha256=f["sha256"], file_id=f["file_id"]
            )
            for f in obj["files"]
        ),
        pulled_at=obj["pulled_at"],
        run_id=obj.get("run_id"),
        patterns=tuple(obj.get("patterns") or ()),
    )


def outputs_to_dict(outputs: OutputsRecord | None) -> dict[str, Any] | None:
    """The JSON object of a run's outputs record (files sorted by path), or None."""
    if outputs is None:
        return None
    return {
        "path": outputs.path,
        "files": [
            {"path": f.path, "size": f.size, "sha256": f.sha256, "file_id": f.file_id}
            for f in sorted(outputs.files, key=lambda f: f.path)
        ],
        "pulled_at": outputs.pulled_at,
        "run_id": outputs.run_id,
        "patterns": list(outputs.patterns),
    }


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
        "outputs": outputs_to_dict(record.outputs),
        "evaluation": evaluation_to_dict(record.evaluation),
    }


def spec_from_dict(obj: Mapping[str, Any]) -> SpecRecord:
    """Build a SpecRecord from a spec dict that already passed the schema."""
    intent_obj = obj.get("intent")
    intent = None
    if intent_obj is not None:
        intent = SpecIntent(
            id=intent_obj["id"],
            kind=intent_obj["kind"],
            body=intent_obj["body"],
            at=intent_obj["at"],
            content_sha256=intent_obj.get("content_sha256"),
        )
    versions = tuple(
        SpecVersionRecord(
            number=int(v["number"]), sha256=v.get("sha256"), at=v.get("at"), by_dfr=v["by_dfr"]
        )
        for v in obj["versions"]
    )
    return SpecRecord(
        name=obj["name"],
        updated_at=obj["updated_at"],
        spec_id=obj["spec_id"],
        status=obj["status"],
        error=obj["error"],
        versions=versions,
        intent=intent,
        body=dict(obj.get("body") or {}),
        source=obj.get("source"),
        api=obj.get("api"),
        drift=obj.get("drift"),
    )


def spec_to_dict(record: SpecRecord) -> dict[str, Any]:
    """The JSON object of one spec record (every field, nulls included)."""
    intent = record.intent
    return {
        "name": record.name,
        "updated_at": record.updated_at,
        "spec_id": record.spec_id,
        "status": record.status,
        "error": record.error,
        "versions": [
            {"number": v.number, "sha256": v.sha256, "at": v.at, "by_dfr": v.by_dfr}
            for v in record.versions
        ],
        "intent": None
        if intent is None
        else {
            "id": intent.id,
            "kind": intent.kind,
            "body": intent.body,
            "at": intent.at,
            "content_sha256": intent.content_sha256,
        },
        "body": record.body,
        "source": record.source,
        "api": record.api,
        "drift": record.drift,
    }
