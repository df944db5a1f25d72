"""Guardrails around a plan, for `dfr plan` and `dfr apply`: the policy, the budget and
the preflight.

- the policy in force (`PolicyGate`): the one recorded in state, whatever dfr.yaml
  this command found (another `--config`, `DFR_CONFIG`, another folder), so a policy
  cannot be dropped by running elsewhere. A different one is shown by `plan` and
  refused by `apply` unless `--policy-change`, which records it; a state with none
  adopts dfr.yaml's at its first apply;
- the budget (`policy.max_samples_per_apply`) is checked on the samples of every
  run the plan would submit: `plan` shows it beside the total and fails when it is
  exceeded; `apply` refuses before anything is sent;
- the spec preflight (`reconciler.preflight`) runs in `plan --refresh` and in
  `apply`: one specs GET per distinct spec id among the runs to submit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.plan import Plan
from reconciler.policy import (
    Policy,
    PolicyViolation,
    annotate_plan,
    budget_json,
    budget_problem,
    policy_changes,
)
from reconciler.preflight import Preflight, SpecClient, check_specs
from reconciler.state.model import PolicyRecord, policy_digest

if TYPE_CHECKING:
    from reconciler.project import Project


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


# -- the policy in force -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyGate:
    """The policy a plan or an apply is checked against, and what apply records.

    `action`: "none" (the state's policy is this command's, or neither has one),
    "record" (the state has none yet and dfr.yaml has one: apply adopts it),
    "change" (they differ and `--policy-change` was given: checked against
    dfr.yaml's, which apply records), "refused" (they differ: plan checks against
    the state's and shows the difference, apply refuses).
    """

    file: Policy  # this command's project file's policy (empty without one)
    file_name: str | None  # the project file as shown; None: none was found
    stored: PolicyRecord | None  # the policy in force recorded in state
    state_name: str
    change: bool = False  # --policy-change

    @property
    def file_settings(self) -> dict[str, Any]:
        return self.file.settings()

    @property
    def file_sha256(self) -> str:
        return policy_digest(self.file_settings)

    @property
    def action(self) -> str:
        if self.stored is None:
            return "record" if self.file_settings else "none"
        if self.stored.sha256 == self.file_sha256:
            return "none"
        return "change" if self.change else "refused"

    @property
    def effective(self) -> Policy:
        """The policy to check the plan against."""
        if self.action != "refused" or self.stored is None:
            return self.file
        return Policy.from_settings(self.stored.settings, source=self.in_force_name)

    @property
    def in_force_name(self) -> str:
        return f"the policy in force for state {self.state_name}"

    @property
    def shown_file(self) -> str:
        return self.file_name or "no dfr.yaml found"

    @property
    def changes(self) -> list[str]:
        return policy_changes(self.stored.settings if self.stored else {}, self.file_settings)

    def line(self) -> str | None:
        """What `plan` and `apply` show about the policy, or None when nothing changes."""
        action = self.action
        if action == "record":
            return (
                f"Policy: {self.shown_file}'s policy will be recorded in state as the policy in "
                "force (the first apply under a policy); every later plan and apply of this "
                "state enforces it, whatever dfr.yaml it finds."
            )
        if action in ("change", "refused"):
            tail = (
                "apply --policy-change records it in state"
                if action == "change"
                else "apply needs --policy-change"
            )
            return f"Policy change: {'; '.join(self.changes)} ({self.shown_file}); {tail}"
        return None

    def refusal(self) -> PolicyViolation | None:
        """Why apply must not go ahead under this command's policy, or None."""
        if self.action != "refused" or self.stored is None:
            return None
        stored = self.stored
        origin = f" from {stored.source}" if stored.source else ""
        by = f" by {stored.by}" if stored.by else ""
        goal = (
            f"make {self.file_name}'s policy the one in force"
            if self.file_name
            else "drop the policy (no dfr.yaml found)"
        )
        return PolicyViolation(
            f"refusing to apply: {self.in_force_name} (recorded {stored.at}{by}{origin}) "
            f"differs from this command's: {'; '.join(self.changes)} ({self.shown_file}); "
            "nothing was submitted",
            hint="the policy is kept with the state, so that another --config, DFR_CONFIG "
            f"or folder cannot drop or loosen it: run with the project's own dfr.yaml, or, to "
            f"{goal}, review `dfr plan --policy-change`, then run `dfr apply --policy-change`",
        )

    def to_record(self, by: str) -> PolicyRecord | None:
        """The record apply stores for this command's policy (None: no policy)."""
        settings = self.file_settings
        if not settings:
            return None
        return PolicyRecord.new(settings, by=by, source=self.file_name)

    def recorded_message(self, record: PolicyRecord | None) -> str:
        if record is None:
            return (
                f"Recorded no policy ({self.shown_file}) in state {self.state_name}: no "
                "limits are in force for it now."
            )
        return (
            f"Recorded the policy of {self.shown_file} in state {self.state_name} (sha256 "
            f"{record.sha256[:12]}): every later plan and apply of this state enforces it."
        )

    def json_fields(self) -> dict[str, Any]:
        """`policy` for `plan --json` when there is something to say about it."""
        action = self.action
        if action == "none":
            return {}
        stored = self.stored
        return {
            "policy": {
                "action": action,
                "changes": self.changes if stored is not None else [],
                "in_force": stored.settings if stored is not None else None,
                "in_force_sha256": stored.sha256 if stored is not None else None,
                "file": self.file_name,
                "file_policy": self.file_settings,
                "file_sha256": self.file_sha256,
            }
        }


def policy_gate(
    project: Project, stored: PolicyRecord | None, state_name: str, *, change: bool
) -> PolicyGate:
    """The gate of a command run with `project` on a state whose policy is `stored`."""
    return PolicyGate(project.policy, project.file, stored, state_name, change)
