"""Guardrails around a plan, for `dfr plan` and `dfr apply`: the budget and the preflight.

- the budget (`policy.max_samples_per_apply` in dfr.yaml) is checked on the
  samples of every run the plan would submit: `plan` shows it beside the total
  and fails when it is exceeded; `apply` refuses before anything is sent;
- the spec preflight (`reconciler.preflight`) runs in `plan --refresh` and in
  `apply`: one specs GET per distinct spec id among the runs to submit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from reconciler.plan import Plan
from reconciler.policy import Policy, PolicyViolation, annotate_plan, budget_json, budget_problem
from reconciler.preflight import Preflight, SpecClient, check_specs


@dataclass(frozen=True, slots=True)
class Guard:
    policy: Policy
    samples: int
    budget_error: str | None = None
    preflight: Preflight | None = None

    @property
    def ok(self) -> bool:
        return self.budget_error is None and (self.preflight is None or self.preflight.ok)

    @property
    def blocked(self) -> dict[str, str]:
        return self.preflight.blocked if self.preflight is not None else {}

    def annotate(self, text: str) -> str:
        """The rendered plan with the budget beside the samples to request."""
        return annotate_plan(text, self.policy, self.samples)

    def json_fields(self) -> dict[str, Any]:
        """Keys added to `plan --json`: `budget` with a budget, `preflight` after one."""
        out: dict[str, Any] = {}
        budget = budget_json(self.policy, self.samples)
        if budget is not None:
            out["budget"] = budget
        if self.preflight is not None:
            out["preflight"] = self.preflight.to_json()
        return out

    def report(self, err: TextIO) -> None:
        """Every finding on `err`: preflight lines by manifest, then the budget."""
        if self.preflight is not None:
            for finding in self.preflight.findings:
                err.write(finding.line() + "\n")
        if self.budget_error is not None:
            err.write(f"error: {self.budget_error}\n")
        err.flush()


def budget(plan: Plan, policy: Policy) -> Guard:
    """The budget check alone (no network)."""
    # The worst case: an unconfirmed submission that is not found is submitted again.
    return Guard(policy, plan.samples_at_most, budget_problem(policy, plan.samples_at_most))


def with_preflight(guard: Guard, plan: Plan, client: SpecClient) -> Guard:
    return Guard(
        guard.policy, guard.samples, guard.budget_error, check_specs(client, plan.to_submit)
    )


def refuse_over_budget(guard: Guard) -> None:
    """`dfr apply`: stop before the first POST when the plan is over budget."""
    if guard.budget_error is not None:
        raise PolicyViolation(f"refusing to apply: {guard.budget_error}; nothing was submitted")
