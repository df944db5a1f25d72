"""Evaluations: an LLM judge's look at a SUCCEEDED run, as the SDK's models describe it.

`POST /api/dataframer/evaluations/` (`run_id`, optional `evaluation_model`)
starts one (it costs money, like a run); it is PENDING for
`evaluation_pending_seconds`, PROCESSING for `evaluation_processing_seconds`,
then SUCCEEDED, or FAILED with an `error_message` (`evaluation_fail_rate`,
`evaluation_fail_next`). Like runs, the status is computed from the
lifecycle clock each time it is read.

A SUCCEEDED evaluation has `distribution_analysis`, one entry per property
of the run's spec: `requested_distributions` (uniform over the property's
values, as the spec asks), `expected_distributions` (the shares the run's
files really have) and `evaluated_distributions`: the requested shares with
a known gap. For the spec's first property, its first value is evaluated
`gap` points above what was requested (the mass is taken from the other
values in proportion), so the largest gap of the evaluation is exactly
`gap`, on that property; every other property gets half of it. `gap` is the
`evaluation_gap` setting when the evaluation is created, or one derived
from the run id (0.5 to 8 points). `sample_classifications` has one entry
per sample, with the values the sample was generated with.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dfr_emulator.files import RunOutput, sample_id
from dfr_emulator.seeds import DATA_PLANE_COMPANY, data_plane_location

PENDING = "PENDING"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"

#: The SDK's EvaluationCreateParams.evaluation_model Literal, in its order.
EVALUATION_MODELS = (
    "anthropic/claude-fable-5-1-thinking",
    "anthropic/claude-opus-5-5-thinking",
    "anthropic/claude-sonnet-5-5-thinking",
    "openai/gpt-6-astra",
    "openai/gpt-6-astra-thinking",
    "openai/gpt-6.1-sol",
    "openai/gpt-6.1-sol-thinking",
    "openai/gpt-5.6-terra",
    "openai/gpt-5.6-terra-thinking",
    "databricks/system.ai.claude-sonnet-5",
    "databricks/system.ai.claude-sonnet-5-thinking",
    "databricks/system.ai.claude-opus-5",
    "databricks/system.ai.claude-opus-5-thinking",
    "databricks/system.ai.gpt-6-astra",
    "databricks/system.ai.gpt-6-astra-thinking",
    "databricks/system.ai.gpt-6-1-sol",
    "databricks/system.ai.gpt-6-1-sol-thinking",
    "databricks/system.ai.gpt-5-6-terra",
    "databricks/system.ai.gpt-5-6-terra-thinking",
)
#: What an evaluation without `evaluation_model` uses (made up, among the list).
DEFAULT_EVALUATION_MODEL = "anthropic/claude-sonnet-5-5-thinking"
#: `content_unavailable_reason` of a customer-hosted evaluation's results.
IN_DATA_PLANE = "result_content_in_data_plane"
#: Keys of a list item (the SDK's EvaluationListResponseItem).
LIST_FIELDS = ("id", "run_id", "status", "created_at", "completed_at", "created_by_email")

ERROR_MESSAGES = (
    "Evaluation model returned malformed classifications for 12 samples",
    "Upstream model provider rate limit exceeded; evaluation aborted",
    "Worker lost while classifying samples",
)


@dataclass
class Evaluation:
    """What is stored about one evaluation; `render` computes the rest."""

    id: str
    output: RunOutput
    model: str
    user_email: str
    created_t: float
    pending_s: float
    processing_s: float
    outcome: str
    error: str | None
    gap: float
    #: Made for a customer-hosted company: its results live in the data plane.
    hosted: bool = False

    @property
    def end_t(self) -> float:
        return self.created_t + self.pending_s + self.processing_s

    def status(self, now: float) -> str:
        if now < self.created_t + self.pending_s:
            return PENDING
        if now < self.end_t:
            return PROCESSING
        return self.outcome


def default_gap(run_id: str) -> float:
    """The gap of a run's evaluations when `evaluation_gap` is not set: 0.5 to 7.99 points."""
    digest = hashlib.blake2b(run_id.lower().encode(), digest_size=4).digest()
    return 0.5 + (int.from_bytes(digest, "big") % 750) / 100


def validate(raw: bytes) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The create body, or FastAPI's 422 items for it (pydantic v2's types and messages)."""
    if not raw.strip():
        return None, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        error = exc.msg if isinstance(exc, json.JSONDecodeError) else "Invalid UTF-8"
        position = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
        item = {"type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error"}
        return None, [{**item, "input": {}, "ctx": {"error": error}}]
    if not isinstance(body, dict):
        msg = "Input should be a valid dictionary or object to extract fields from"
        return None, [{"type": "model_attributes_type", "loc": ["body"], "msg": msg, "input": body}]
    errors: list[dict[str, Any]] = []
    run_id = body.get("run_id")
    if "run_id" not in body:
        errors.append({"type": "missing", "loc": ["body", "run_id"], "msg": "Field required"})
        errors[-1]["input"] = body
    elif not isinstance(run_id, str):
        msg = "Input should be a valid string"
        errors.append({"type": "string_type", "loc": ["body", "run_id"], "msg": msg})
        errors[-1]["input"] = run_id
    model = body.get("evaluation_model", DEFAULT_EVALUATION_MODEL)
    if model not in EVALUATION_MODELS:
        expected = _choices(EVALUATION_MODELS)
        errors.append(
            {
                "type": "literal_error",
                "loc": ["body", "evaluation_model"],
                "msg": f"Input should be {expected}",
                "input": model,
                "ctx": {"expected": expected},
            }
        )
    for name in sorted(set(body) - {"run_id", "evaluation_model"}):
        item = {
            "type": "extra_forbidden",
            "loc": ["body", name],
            "msg": "Extra inputs are not permitted",
        }
        errors.append({**item, "input": body[name]})
    return (None, errors) if errors else (body, [])


def _choices(values: tuple[str, ...]) -> str:
    shown = [repr(v) for v in values]
    return f"{', '.join(shown[:-1])} or {shown[-1]}"


class Evaluations:
    """Every evaluation, in creation order. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Evaluation] = {}

    def add(self, evaluation: Evaluation) -> None:
        with self._lock:
            self._items[evaluation.id] = evaluation

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, evaluation_id: str) -> Evaluation | None:
        with self._lock:
            return self._items.get(evaluation_id.lower())

    def of_run(self, run_id: str) -> list[Evaluation]:
        """A run's evaluations, newest first."""
        wanted = run_id.lower()
        with self._lock:
            found = [e for e in self._items.values() if e.output.run_id.lower() == wanted]
        return found[::-1]

    def all(self) -> list[Evaluation]:
        with self._lock:
            return list(self._items.values())[::-1]


def new_evaluation(
    output: RunOutput,
    *,
    model: str,
    user_email: str,
    now: float,
    pending_s: float,
    processing_s: float,
    error: str | None,
    gap: float | None,
    hosted: bool = False,
) -> Evaluation:
    return Evaluation(
        id=str(uuid.uuid4()),
        output=output,
        model=model,
        user_email=user_email,
        created_t=now,
        pending_s=pending_s,
        processing_s=processing_s,
        outcome=FAILED if error else SUCCEEDED,
        error=error,
        gap=round(default_gap(output.run_id) if gap is None else gap, 2),
        hosted=hosted,
    )


def render(
    evaluation: Evaluation, now: float, iso: Callable[[float], str], *, full: bool = False
) -> dict[str, Any]:
    """The evaluation as `GET /evaluations/{id}/` answers it; `iso(t)`: a time's text.

    A customer-hosted evaluation's results are a pointer into the data plane
    (`content_location`), unless `full` (what the emulator itself knows).
    """
    status = evaluation.status(now)
    done = status in (SUCCEEDED, FAILED)
    completed_at = iso(evaluation.end_t) if done else None
    out: dict[str, Any] = {
        "id": evaluation.id,
        "run_id": evaluation.output.run_id,
        "status": status,
        "created_at": iso(evaluation.created_t),
        "completed_at": completed_at,
        "created_by_email": evaluation.user_email,
        "error_message": evaluation.error if status == FAILED else None,
        "distribution_analysis": None,
        "sample_classifications": [],
        "content_location": None,
        "content_unavailable_reason": None,
    }
    if status == SUCCEEDED and evaluation.hosted and not full:
        out["distribution_analysis"] = []
        out["content_location"] = result_pointer(evaluation)
        out["content_unavailable_reason"] = IN_DATA_PLANE
    elif status == SUCCEEDED:
        out["distribution_analysis"] = analysis(evaluation.output, evaluation.gap)
        out["sample_classifications"] = classifications(evaluation, completed_at)
    return out


def result_key(evaluation_id: str) -> str:
    """Where a customer-hosted evaluation's results live in the customer's bucket."""
    return f"dataframer/{DATA_PLANE_COMPANY}/Results/EVALUATION/{evaluation_id}.json"


def envelope_text(evaluation: Evaluation) -> str:
    """The result object the worker wrote to the data plane, under the worker's names."""
    samples = evaluation.output.values()
    envelope = {
        "distribution_analysis": [
            {
                "property_name": entry["property_name"],
                "expected_distributions": entry["requested_distributions"],
                "generation_distributions": entry["expected_distributions"],
                "classification_distributions": entry["evaluated_distributions"],
                "total_samples": entry["total_samples"],
                "total_samples_analyzed": entry["total_samples_analyzed"],
            }
            for entry in analysis(evaluation.output, evaluation.gap)
        ],
        "classifications": {
            sample_id(n): {"classifications": dict(values)}
            for n, values in enumerate(samples, start=1)
        },
        "generation_tags": {},
        "sampled_identifiers": [sample_id(n) for n in range(1, len(samples) + 1)],
    }
    return json.dumps(envelope)


def result_pointer(evaluation: Evaluation) -> dict[str, Any]:
    """`content_location` of a customer-hosted evaluation (the SDK's DataPlaneContentLocation)."""
    return data_plane_location(result_key(evaluation.id), envelope_text(evaluation).encode())


def list_item(evaluation: Evaluation, now: float, iso: Callable[[float], str]) -> dict[str, Any]:
    full = render(evaluation, now, iso)
    return {name: full[name] for name in LIST_FIELDS}


def analysis(output: RunOutput, gap: float) -> list[dict[str, Any]]:
    """`distribution_analysis`: per property, requested, expected and evaluated shares."""
    samples = output.values()
    n = len(samples)
    out = []
    for index, (name, values) in enumerate(output.props):
        if not values:
            continue
        requested = {v: round(100.0 / len(values), 2) for v in values}
        counts = {v: sum(1 for s in samples if s.get(name) == v) for v in values}
        expected = {v: round(100.0 * counts[v] / n, 2) if n else 0.0 for v in values}
        shift = gap if index == 0 else round(gap / 2, 2)
        out.append(
            {
                "property_name": name,
                "requested_distributions": requested,
                "expected_distributions": expected,
                "evaluated_distributions": _shifted(requested, shift),
                "total_samples": n,
                "total_samples_analyzed": n,
            }
        )
    return out


def _shifted(requested: dict[str, float], gap: float) -> dict[str, float]:
    """`requested` with its first value `gap` points higher, the others lower in proportion."""
    names = list(requested)
    first, others = names[0], names[1:]
    if not others:
        return {first: round(max(0.0, requested[first] - gap), 2)}
    rest = sum(requested[v] for v in others)
    gap = min(gap, rest)
    shifted = {first: round(requested[first] + gap, 2)}
    for v in others:
        shifted[v] = round(requested[v] - gap * requested[v] / rest, 2)
    return shifted


def classifications(evaluation: Evaluation, at: str | None) -> list[dict[str, Any]]:
    """One entry per sample: the values it was generated with."""
    return [
        {
            "id": str(uuid.uuid5(uuid.UUID(evaluation.id), str(number))),
            "evaluation_id": evaluation.id,
            "sample_identifier": sample_id(number),
            "classifications": dict(values),
            "created_at": at,
        }
        for number, values in enumerate(evaluation.output.values(), start=1)
    ]


def largest_gap(distribution_analysis: list[dict[str, Any]]) -> tuple[str, float]:
    """(property, points) of the largest requested-vs-evaluated gap (for tests and docs)."""
    worst = ("", 0.0)
    for entry in distribution_analysis:
        requested, evaluated = entry["requested_distributions"], entry["evaluated_distributions"]
        gap = max(abs(evaluated.get(v, 0.0) - share) for v, share in requested.items())
        if gap > worst[1]:
            worst = (entry["property_name"], gap)
    return worst
