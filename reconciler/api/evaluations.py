"""Evaluations: an LLM judge's look at a SUCCEEDED run, and how far it is from the spec.

`DataframerClient` delegates here (`list_evaluations`, `get_evaluation`,
`create_evaluation`). The shapes are the official SDK's (pydataframer 0.19.2:
`EvaluationCreateParams`, `EvaluationRetrieveResponse`,
`runs.EvaluationListResponse`), parsed as tolerantly as `api.models` parses
runs: a field of the wrong type becomes None, never an error.

- `GET /api/dataframer/runs/{run_id}/evaluations/`: a run's evaluations, status
  only (`id`, `run_id`, `status`, `created_at`, `completed_at`);
- `GET /api/dataframer/evaluations/{id}/`: one, with `distribution_analysis`:
  per property the `requested_distributions` (the spec's targets),
  `expected_distributions` and `evaluated_distributions` (what the judge
  found), as percentages per value;
- `POST /api/dataframer/evaluations/` (`run_id`, optional `evaluation_model`):
  starts one. It costs money like a run and carries no idempotency key, so it
  goes through the client's retry rule as a non-idempotent request: sent again
  only when the server surely did not act. Anything else is `OutcomeUnknown`,
  and the caller lists the run's evaluations before it sends again.

`PropertyGap.gap` is the largest difference, in percentage points, between a
property's requested and evaluated share of any value (a value missing on one
side counts as 0%); `Evaluation.worst` the property with the largest one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.api.models import as_float, as_int, as_str, str_fields

if TYPE_CHECKING:
    from reconciler.api.client import DataframerClient

__all__ = [
    "EVALUATIONS_PATH",
    "EVALUATION_STATUSES",
    "Evaluation",
    "PropertyGap",
    "create_evaluation",
    "get_evaluation",
    "list_evaluations",
]

EVALUATIONS_PATH = "/api/dataframer/evaluations/"
RUNS_PATH = "/api/dataframer/runs/"
EVALUATION_STATUSES = frozenset({"PENDING", "PROCESSING", "SUCCEEDED", "FAILED"})
#: Statuses after which an evaluation never changes again.
FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED"})


def _status(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    upper = value.strip().upper()
    upper = "PROCESSING" if upper == "IN_PROGRESS" else upper
    return upper if upper in EVALUATION_STATUSES else value


def _shares(value: object) -> dict[str, float] | None:
    """A `{value: percentage}` mapping; entries that are not numbers are dropped."""
    if not isinstance(value, Mapping):
        return None
    out: dict[str, float] = {}
    for key, share in value.items():
        number = as_float(share)
        if isinstance(key, str) and number is not None:
            out[key] = number
    return out


@dataclass(frozen=True)
class PropertyGap:
    """One property of `distribution_analysis` and its largest requested-vs-evaluated gap."""

    property_name: str
    requested: Mapping[str, float] | None = None
    expected: Mapping[str, float] | None = None
    evaluated: Mapping[str, float] | None = None
    total_samples: int | None = None
    total_samples_analyzed: int | None = None

    @property
    def gap(self) -> float | None:
        """Percentage points between requested and evaluated, at the value where they
        differ most; None when either side is missing."""
        if not self.requested or self.evaluated is None:
            return None
        values = set(self.requested) | set(self.evaluated)
        return max(
            abs(self.requested.get(v, 0.0) - self.evaluated.get(v, 0.0)) for v in sorted(values)
        )

    @property
    def worst_value(self) -> str | None:
        """The value whose requested and evaluated shares differ most."""
        if not self.requested or self.evaluated is None:
            return None
        requested, evaluated = self.requested, self.evaluated
        return max(
            sorted(set(requested) | set(evaluated)),
            key=lambda v: abs(requested.get(v, 0.0) - evaluated.get(v, 0.0)),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any], index: int) -> PropertyGap:
        return cls(
            property_name=as_str(data.get("property_name")) or f"property #{index + 1}",
            requested=_shares(data.get("requested_distributions")),
            expected=_shares(data.get("expected_distributions")),
            evaluated=_shares(data.get("evaluated_distributions")),
            total_samples=as_int(data.get("total_samples")),
            total_samples_analyzed=as_int(data.get("total_samples_analyzed")),
        )


@dataclass(frozen=True)
class Evaluation:
    """An evaluation as the API reports it (a list item has no analysis: None)."""

    id: str
    run_id: str | None = None
    status: str | None = None  # PENDING, PROCESSING, SUCCEEDED, FAILED (unknown kept)
    created_at: str | None = None
    completed_at: str | None = None
    error_message: str | None = None
    content_unavailable_reason: str | None = None
    distribution: tuple[PropertyGap, ...] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    def gaps(self) -> dict[str, float]:
        """Each property's largest gap in points (properties without both sides left out).

        Two properties of the same name (which the API should not send) keep the larger.
        """
        out: dict[str, float] = {}
        for prop in self.distribution or ():
            gap = prop.gap
            if gap is not None:
                out[prop.property_name] = max(gap, out.get(prop.property_name, 0.0))
        return out

    @property
    def worst(self) -> tuple[str, float] | None:
        """The property with the largest gap and that gap (first by name on a tie)."""
        gaps = self.gaps()
        if not gaps:
            return None
        name = max(sorted(gaps), key=lambda p: gaps[p])
        return name, gaps[name]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, fallback_id: str = "") -> Evaluation:
        analysis = data.get("distribution_analysis")
        distribution = None
        if isinstance(analysis, list):
            distribution = tuple(
                PropertyGap.from_json(item, i)
                for i, item in enumerate(analysis)
                if isinstance(item, Mapping)
            )
        return cls(
            id=as_str(data.get("id")) or fallback_id,
            status=_status(data.get("status")),
            **str_fields(data, "run_id", "created_at", "completed_at"),
            **str_fields(data, "error_message", "content_unavailable_reason"),
            distribution=distribution,
            raw=dict(data),
        )


def list_evaluations(client: DataframerClient, run_id: str) -> list[Evaluation]:
    """A run's evaluations, status only, as the API lists them (ids missing are dropped)."""
    path = client._item_path(RUNS_PATH, run_id, "run") + "evaluations/"
    items = client._get_list(path)
    found = [Evaluation.from_json(item) for item in items]
    # Never another run's: an item that names a different run is not this run's.
    wanted = run_id.strip().lower()
    return [e for e in found if e.id and (e.run_id is None or e.run_id.lower() == wanted)]


def get_evaluation(client: DataframerClient, evaluation_id: str) -> Evaluation:
    """One evaluation with its `distribution_analysis` (None until it SUCCEEDED)."""
    path = client._item_path(EVALUATIONS_PATH, evaluation_id, "evaluation")
    data = client._get_object(path, what=f"evaluation {evaluation_id}")
    return Evaluation.from_json(data, fallback_id=evaluation_id)


def create_evaluation(client: DataframerClient, run_id: str, model: str | None) -> Evaluation:
    """POST a new evaluation of `run_id`; never sent twice unless surely refused.

    OutcomeUnknown when it may exist unseen: list the run's evaluations first.
    """
    body: dict[str, Any] = {"run_id": run_id}
    if model is not None:
        body["evaluation_model"] = model
    # A 404 is about the body (the run), not the URL.
    evaluation_id, data = client._create(EVALUATIONS_PATH, body, noun="evaluation")
    return Evaluation.from_json(data, fallback_id=evaluation_id)
