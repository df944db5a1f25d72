"""Guardrails on manifests: the spending policy and reproducibility advice.

Pure functions over values: a `Policy` (from `dfr.yaml`, see `reconciler.project`)
and manifests go in, diagnostics or messages come out. No I/O, no printing.

- `check_manifest` turns one manifest's policy violations into errors placed on
  the offending value (`number_of_samples`, a model, the labels), for `dfr validate`
  and so for the pre-commit hook, and for the front end of plan and apply;
- `budget_problem` is the plan-level check of `max_samples_per_apply`;
- `unpinned_version` is the reproducibility warning for a manifest that follows
  its spec's latest version;
- `Policy.settings` is the canonical mapping state records as the policy in force
  (`reconciler.state.model.PolicyRecord`), `policy_changes` words two of them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.errors import DfrError
from reconciler.matching import revisions_on
from reconciler.yamlsafe import Document, key_node_of, locate, position

if TYPE_CHECKING:
    from reconciler.manifests import Manifest

#: The spec fields that name a model, in the order they are checked.
MODEL_FIELDS = ("generation_model", "outline_model", "revision_model")

DocumentCheck = Callable[[str, Document, "Manifest"], list[Diagnostic]]


class PolicyViolation(DfrError):
    """An apply that would break the policy; nothing was submitted."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The `policy` section of `dfr.yaml`; every limit is optional."""

    max_samples_per_run: int | None = None
    max_samples_per_apply: int | None = None
    allowed_models: tuple[str, ...] | None = None
    required_labels: tuple[str, ...] = ()
    #: Percentage points an evaluated distribution may differ from the requested one
    #: (`reconciler.evaluate`): a larger gap fails apply.
    max_distribution_gap: float | None = None
    #: The project file as shown to the user, and where each key is in it.
    source: str = "dfr.yaml"
    places: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(
            self.max_samples_per_run is not None
            or self.max_samples_per_apply is not None
            or self.allowed_models is not None
            or self.required_labels
            or self.max_distribution_gap is not None
        )

    def where(self, key: str) -> str:
        """'policy.KEY in dfr.yaml:LINE:COL': where a limit comes from, for messages
        ('policy.KEY in SOURCE' for a policy read from state, which has no lines)."""
        if key not in self.places:
            return f"policy.{key} in {self.source}"
        line, col = self.places[key]
        return f"policy.{key} in {self.source}:{line}:{col}"

    def settings(self) -> dict[str, Any]:
        """The limits as a canonical mapping (what state records and hashes): only the
        limits set, lists sorted, so the same policy written another way is equal."""
        out: dict[str, Any] = {}
        if self.max_samples_per_run is not None:
            out["max_samples_per_run"] = self.max_samples_per_run
        if self.max_samples_per_apply is not None:
            out["max_samples_per_apply"] = self.max_samples_per_apply
        if self.allowed_models is not None:
            out["allowed_models"] = sorted(set(self.allowed_models))
        if self.required_labels:
            out["required_labels"] = sorted(set(self.required_labels))
        if self.max_distribution_gap is not None:
            # A float always: `10` in dfr.yaml and `10.0` read back from state are one policy.
            out["max_distribution_gap"] = float(self.max_distribution_gap)
        return out

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, source: str) -> Policy:
        """The policy of a canonical mapping (as `settings()` makes and state records)."""
        models = settings.get("allowed_models")
        return cls(
            max_samples_per_run=settings.get("max_samples_per_run"),
            max_samples_per_apply=settings.get("max_samples_per_apply"),
            allowed_models=tuple(models) if models is not None else None,
            required_labels=tuple(settings.get("required_labels") or ()),
            max_distribution_gap=_gap(settings.get("max_distribution_gap")),
            source=source,
        )


#: The limits in the order messages list them.
POLICY_KEYS = (
    "max_samples_per_run",
    "max_samples_per_apply",
    "allowed_models",
    "required_labels",
    "max_distribution_gap",
)


def _gap(value: Any) -> float | None:
    return None if value is None else float(value)


def policy_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Each limit that differs, as 'KEY OLD -> NEW' ('(none)'; '(any)' for models)."""

    def shown(key: str, value: Any) -> str:
        if value is None:
            return "(any)" if key == "allowed_models" else "(none)"
        if isinstance(value, list):
            return ", ".join(value)
        return str(value)

    return [
        f"{key} {shown(key, old.get(key))} -> {shown(key, new.get(key))}"
        for key in POLICY_KEYS
        if old.get(key) != new.get(key)
    ]


def manifest_checks(policy: Policy) -> list[DocumentCheck]:
    """The per-manifest checks `validate_paths` runs for this policy (none when empty)."""
    if not policy.active:
        return []

    def check(file: str, doc: Document, manifest: Manifest) -> list[Diagnostic]:
        return check_manifest(policy, file, doc, manifest)

    return [check]


def check_manifest(
    policy: Policy, file: str, doc: Document, manifest: Manifest
) -> list[Diagnostic]:
    """Errors for one valid manifest that breaks `policy`, each at the offending place."""
    out: list[Diagnostic] = []

    def error(message: str, path: tuple[str | int, ...], *, on_key: bool = False) -> None:
        node = key_node_of(doc.node, path) if on_key else locate(doc.node, path)
        line, col = position(node)
        out.append(diag.error(message, file, line, col, code="policy", path=path))

    limit = policy.max_samples_per_run
    samples = manifest.spec.get("number_of_samples")
    if limit is not None and isinstance(samples, int) and samples > limit:
        error(
            f"spec.number_of_samples: {samples:,} samples is over the limit of {limit:,} "
            f"per run ({policy.where('max_samples_per_run')})",
            ("spec", "number_of_samples"),
        )
    if policy.allowed_models is not None:
        _check_models(policy, manifest, error)
    missing = [
        key for key in policy.required_labels if not str(manifest.labels.get(key, "")).strip()
    ]
    if missing:
        listed = ", ".join(repr(k) for k in missing)
        plural = "s" if len(missing) != 1 else ""
        metadata = doc.value.get("metadata") if isinstance(doc.value, dict) else None
        if isinstance(metadata, dict) and "labels" in metadata:
            error(
                f"metadata.labels is missing the label{plural} {listed} that every manifest "
                f"must carry ({policy.where('required_labels')})",
                ("metadata", "labels"),
                on_key=True,
            )
        else:
            error(
                f"metadata has no labels; every manifest must carry the label{plural} {listed} "
                f"({policy.where('required_labels')})",
                ("metadata",),
                on_key=True,
            )
    return out


def _check_models(
    policy: Policy,
    manifest: Manifest,
    error: Callable[..., None],
) -> None:
    """Every model the run will use must be allowed.

    A model field the manifest leaves out is chosen by the API, whose default
    changes over time (the old page's default no longer exists): under a model
    policy it must be named. `revision_model` counts only when revisions or
    filtering are on, or when it is named.
    """
    allowed = policy.allowed_models or ()
    spec = manifest.spec
    listed = ", ".join(allowed)
    where = policy.where("allowed_models")
    for key in MODEL_FIELDS:
        named = key in spec
        used = key != "revision_model" or revisions_on(spec, {}) is True
        model = spec.get(key)
        if named and model not in allowed:
            error(
                f"spec.{key}: model {model!r} is not allowed ({where}); allowed: {listed}",
                ("spec", key),
            )
        elif not named and used:
            error(
                f"spec.{key} is not set, so the API would choose the model (its default "
                f"changes over time) and {where} cannot hold; set {key} to one of: {listed}",
                ("spec",),
                on_key=True,
            )


def unpinned_version(file: str, doc: Document, manifest: Manifest) -> list[Diagnostic]:
    """A warning for a manifest without spec_version: it follows the spec's latest version."""
    if "spec_version" in manifest.spec:
        return []
    ref = manifest.spec_ref  # spec_ref: {name, version}: unpinned when version is latest
    if ref is not None and ref.version is not None:
        return []
    path: tuple[str, ...] = ("spec", "spec_ref", "version") if ref else ("spec", "spec_id")
    pin = "set spec_ref.version to N" if ref else "pin it with 'spec_version: N' under spec"
    line, col = position(key_node_of(doc.node, path))
    return [
        diag.warning(
            f"{'spec.spec_ref.version is latest' if ref else 'spec.spec_version is not set'}"
            ", so the run uses the spec's latest version at "
            "submission time and the same manifest can produce different data later; "
            f"{pin} (`dfr plan --refresh` checks that the version exists)",
            file,
            line,
            col,
            code="unpinned-version",
            path=path,
        )
    ]


# -- the plan-level budget -------------------------------------------------------------


def budget_problem(policy: Policy, samples: int) -> str | None:
    """Why a plan that requests `samples` may not be applied, or None when within budget."""
    budget = policy.max_samples_per_apply
    if budget is None or samples <= budget:
        return None
    return (
        f"the plan requests {samples:,} samples, over the budget of {budget:,} per apply "
        f"({policy.where('max_samples_per_apply')}); apply fewer changes at once (for "
        "example name some manifests as PATHs) or raise the budget"
    )


def budget_line(policy: Policy, samples: int) -> str | None:
    budget = policy.max_samples_per_apply
    if budget is None:
        return None
    line = f"Samples to request: {samples:,} of a budget of {budget:,} per apply."
    if samples > budget:
        line += f" Over budget by {samples - budget:,}."
    return line


def annotate_plan(text: str, policy: Policy, samples: int) -> str:
    """The rendered plan with its samples line stating the budget (when there is one)."""
    line = budget_line(policy, samples)
    if line is None or samples == 0:
        return text
    plain = f"Samples to request: {samples:,}."
    lines = text.split("\n")
    if plain in lines:
        lines[lines.index(plain)] = line
        return "\n".join(lines)
    return text.rstrip("\n") + "\n" + line + "\n"


def budget_json(policy: Policy, samples: int) -> dict[str, object] | None:
    budget = policy.max_samples_per_apply
    if budget is None:
        return None
    return {"max_samples_per_apply": budget, "samples": samples, "over": samples > budget}
