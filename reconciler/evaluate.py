"""Evaluations, the pure part: what a plan asks for, and what the policy says about gaps.

No I/O, no clock. `plan_evaluations` turns the manifests that carry an
`evaluate:` section (`reconciler.manifests.Evaluate`) and the state into one
`EvaluateChange` per such manifest, which `reconciler.plan.make_plan` puts on
`Plan.evaluations`; `reconciler.evaluations_apply` executes them and
`reconciler.views.evaluate_plan` renders them. `gap_problems` is the policy
`max_distribution_gap` over the recorded evaluations.

A change's action is `evaluate` when the run has no evaluation of its own yet
(none recorded, or the recorded one is of an earlier run, or the last POST was
refused), or when an earlier POST's answer was lost (`resolve_intent`: apply
lists the run's evaluations and adopts the one created after the intent
before it sends anything); else `noop`. An evaluation of a run this plan
submits, or of one still running, `depends_on` that run ("run/NAME"): apply
starts it once the run SUCCEEDED, never before (the API refuses it). A run that
ended FAILED or CANCELED has nothing to evaluate: noop, with the reason. An
evaluation that ended FAILED (a judge's failure, not the data's) is asked for
again, as Terraform replaces a tainted resource: the manifest wants one that
finished.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reconciler.manifests import Manifest
from reconciler.specplan import PlanChange
from reconciler.state.model import (
    CANCELED,
    FAILED,
    SUCCEEDED,
    EvaluationRecord,
    RunRecord,
    State,
)

KNOWN_AFTER_APPLY = "(known after apply)"


class EvaluateAction(str, Enum):
    EVALUATE = "evaluate"
    NOOP = "noop"


@dataclass(frozen=True, slots=True)
class EvaluateChange(PlanChange):
    """What apply does about one manifest's `evaluate:` section."""

    KIND = "evaluate"
    action: EvaluateAction
    model: str | None = None  # the evaluation model asked for (None: the API's default)
    run_id: str | None = None  # the recorded run it evaluates (None: made by this apply)
    depends_on: tuple[str, ...] = ()  # "run/NAME" when the run is not SUCCEEDED yet
    resolve_intent: bool = False  # an earlier POST's answer was lost: look first
    reasons: tuple[str, ...] = ()
    where: str | None = None  # the manifest's FILE:LINE:COL

    @property
    def acts(self) -> bool:
        return self.action is EvaluateAction.EVALUATE

    @property
    def body(self) -> dict[str, Any]:
        """The POST body (`run_id` known after apply when the run is made by it)."""
        out: dict[str, Any] = {"run_id": self.run_id or KNOWN_AFTER_APPLY}
        if self.model is not None:
            out["evaluation_model"] = self.model
        return out

    def to_json(self) -> dict[str, Any]:
        return self.json_of(
            *("key", "name", "action", "model", "run_id", "body", "depends_on"),
            *("resolve_intent", "reasons", "manifest"),
        )


def own_evaluation(record: RunRecord | None) -> EvaluationRecord | None:
    """The recorded evaluation of the record's current run (one of an earlier run: None)."""
    if record is None or record.evaluation is None or not record.run_id:
        return None
    evaluation = record.evaluation
    if evaluation.run_id is not None and evaluation.run_id.lower() != record.run_id.lower():
        return None
    return evaluation


def plan_evaluations(
    manifests: Sequence[Manifest], state: State, submitting: Iterable[str] = ()
) -> tuple[EvaluateChange, ...]:
    """One change per manifest with `evaluate:`, sorted by name; `submitting` are the
    names whose run this plan creates or replaces."""
    fresh = set(submitting)
    out = [
        _change(m, state.runs.get(m.name), m.name in fresh)
        for m in sorted(manifests, key=lambda m: m.name)
        if m.evaluate is not None
    ]
    return tuple(out)


def _change(manifest: Manifest, record: RunRecord | None, fresh: bool) -> EvaluateChange:
    assert manifest.evaluate is not None
    common: dict[str, Any] = {"model": manifest.evaluate.model, "where": manifest.where}
    after_run = (f"run/{manifest.name}",)
    if fresh or record is None or not record.run_id:
        return EvaluateChange(
            manifest.name,
            EvaluateAction.EVALUATE,
            depends_on=after_run,
            reasons=("started once the run this apply submits has SUCCEEDED",),
            **common,
        )
    common["run_id"] = record.run_id
    if record.status in (FAILED, CANCELED):
        reason = f"run {record.run_id} ended {record.status}: nothing to evaluate"
        return EvaluateChange(manifest.name, EvaluateAction.NOOP, reasons=(reason,), **common)
    evaluation = own_evaluation(record)
    waits = after_run if record.status != SUCCEEDED else ()
    if evaluation is not None and evaluation.intent is not None and evaluation.id is None:
        return EvaluateChange(
            manifest.name,
            EvaluateAction.EVALUATE,
            depends_on=waits,
            resolve_intent=True,
            reasons=(
                f"an earlier apply asked for this evaluation ({evaluation.intent.at}) and never "
                "learned its id; apply looks for it first and starts one only if none was made",
            ),
            **common,
        )
    if evaluation is not None and evaluation.id is not None and evaluation.status != FAILED:
        return EvaluateChange(
            manifest.name, EvaluateAction.NOOP, reasons=(_recorded(evaluation),), **common
        )
    reason = f"run {record.run_id} has no evaluation"
    if evaluation is not None and evaluation.id is not None:  # it ended FAILED
        reason = (
            f"evaluation {evaluation.id} ended FAILED ({evaluation.error or 'no reason given'}); "
            "a new one is started"
        )
    elif evaluation is not None and evaluation.error:
        reason = f"the last request for an evaluation did not succeed: {evaluation.error}"
    if waits:
        reason += f"; started once the run ({record.status or 'status unknown'}) has SUCCEEDED"
    return EvaluateChange(
        manifest.name, EvaluateAction.EVALUATE, depends_on=waits, reasons=(reason,), **common
    )


def _recorded(evaluation: EvaluationRecord) -> str:
    line = f"evaluation {evaluation.id} {evaluation.status or 'status unknown'}"
    if evaluation.max_gap is not None:
        line += f", largest gap {evaluation.max_gap:.1f} points ({evaluation.worst_property})"
    return line


# -- the policy -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GapProblem:
    """A run whose evaluation is further from the spec than `max_distribution_gap`,
    or (`gap` None) whose finished evaluation gives no distribution to check."""

    name: str
    run_id: str | None
    property_name: str | None
    gap: float | None
    limit: float

    @property
    def message(self) -> str:
        if self.gap is None:
            return (
                f"run {self.run_id}: its SUCCEEDED evaluation gives no property with both a"
                " requested and an evaluated distribution (its distribution_analysis is"
                " empty, unreadable or kept in your own cloud), so policy"
                f" max_distribution_gap ({self.limit:g}) cannot pass it; see it in the web app"
            )
        return (
            f"run {self.run_id}: property {self.property_name!r} is evaluated {self.gap:.1f} "
            f"percentage points away from the requested distribution (policy "
            f"max_distribution_gap is {self.limit:g})"
        )


def gap_problems(
    limit: float | None, records: Mapping[str, RunRecord], names: Iterable[str]
) -> tuple[list[GapProblem], list[str]]:
    """The runs of `names` whose evaluation breaks the limit (each property over it,
    the worst first, or one problem when a SUCCEEDED evaluation has no gap to check:
    never passed unchecked), and the names with no finished evaluation to check."""
    if limit is None:
        return [], []
    problems: list[GapProblem] = []
    unchecked: list[str] = []
    for name in sorted(set(names)):
        record = records.get(name)
        if record is None or record.status != SUCCEEDED:
            continue
        evaluation = own_evaluation(record)
        if evaluation is None or evaluation.status != SUCCEEDED:
            unchecked.append(name)
            continue
        if not evaluation.gaps:
            problems.append(GapProblem(name, record.run_id, None, None, limit))
            continue
        over = sorted(
            ((gap, prop) for prop, gap in evaluation.gaps.items() if gap > limit),
            key=lambda item: (-item[0], item[1]),
        )
        problems += [GapProblem(name, record.run_id, prop, gap, limit) for gap, prop in over]
    return problems, unchecked
