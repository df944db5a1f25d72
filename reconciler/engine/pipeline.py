"""The pipeline `dfr plan` and `dfr apply` share: load -> check -> plan -> budget -> preflight.

`load` reads and checks the manifests (every problem reported, then
ValidationFailed) and the `--replace` names; `prepare_plan` diffs them against a
state under the policy gate, checks the budget and, given a client, runs the
spec preflight. `apply` takes the preflight as a separate step
(`Prepared.preflighted`), after its refusals: nothing is sent over budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.engine.guard import Guard, PolicyGate, budget, with_preflight

if TYPE_CHECKING:
    from pathlib import Path

    from reconciler.diagnostics import Diagnostic
    from reconciler.manifests import Manifest, SpecManifest
    from reconciler.plan import Plan, PlanOptions, Scope
    from reconciler.policy import Policy
    from reconciler.preflight import SpecClient
    from reconciler.state.model import State


@dataclass(frozen=True, slots=True)
class Loaded:
    """Valid manifests, the plan's scope, and the warnings to show beside the plan."""

    manifests: list[Manifest]
    scope: Scope
    warnings: list[Diagnostic] = field(default_factory=list)
    specs: list[SpecManifest] = field(default_factory=list)  # kind: Spec (reconciler.specplan)

    @property
    def names(self) -> set[str]:
        return {m.name for m in self.manifests}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A plan, the policy gate it was made under and its guard (budget, preflight)."""

    plan: Plan
    gate: PolicyGate
    checked: Guard

    def preflighted(self, client: SpecClient) -> Prepared:
        """With the spec preflight of the runs to submit (none: unchanged)."""
        if not self.plan.to_submit:
            return self
        return Prepared(self.plan, self.gate, with_preflight(self.checked, self.plan, client))


def prepare_plan(
    loaded: Loaded,
    state: State,
    gate: PolicyGate,
    options: PlanOptions,
    *,
    policy: Policy | None = None,
    client: SpecClient | None = None,
    outputs_root: Path | None = None,
    outputs_cache: bool = True,
) -> Prepared:
    """Plan `loaded` against `state`, check the budget of `policy` (default: the gate's
    policy in force) and, with a `client`, run the preflight. With `outputs_root`
    (the project root), the output folders are read for the plan's `pull` changes
    (`outputs_cache`: reusing the digests of unchanged files)."""
    from reconciler.plan import make_plan

    plan = make_plan(loaded.manifests, state, options, loaded.scope, specs=loaded.specs)
    if outputs_root is not None:
        from reconciler.outputs.scan import with_pulls

        plan = with_pulls(plan, loaded.manifests, state, outputs_root, use_cache=outputs_cache)
    prepared = Prepared(plan, gate, budget(plan, gate.effective if policy is None else policy))
    return prepared if client is None else prepared.preflighted(client)


def check_replace_names(replace: Sequence[str], names: set[str]) -> None:
    from reconciler.errors import UsageError

    unknown = sorted(set(replace) - names)
    if unknown:
        raise UsageError(f"--replace names no manifest: {', '.join(unknown)}")


def prune_refusal(plan: Any) -> str | None:
    """Why --prune must not go ahead: orphans whose manifest file was skipped, not gone."""
    if not plan.prune_refused:
        return None
    return (
        "refusing to prune: " + ", ".join(plan.prune_refused) + " came from manifest files "
        "that still exist but were skipped as not manifests (see the warnings); fix them, "
        "or forget a run on purpose with `dfr state rm NAME`"
    )
