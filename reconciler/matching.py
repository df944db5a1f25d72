"""Does a run answer a create body? One rule for recovery, adoption, import and plan.

The API reports what a run used, not what was sent: `spec_id`, `spec_version`
and `runtime_params` (the create fields but `spec_id`, `spec_version` and
`enable_revisions`). Comparing the two naively pays twice: after a lost answer
the run is never recognised, and dfr submits again. So a field of the body
matches what the API reports when:

- the body left it out: the API chose, anything matches;
- the API does not report it (no `runtime_params`, or no such key): nothing to
  compare;
- the values are equal, where UUIDs compare case-insensitively (the API answers
  ids in lower case) and lists compare as sets (`revision_types`,
  `filtering_types`, `tools`: their order means nothing);
- the API reports null for a field that does not apply to the run:
  `revision_model`, `max_revision_cycles` and `revision_thinking_budget` when
  revisions are off, a thinking budget for a model without `-thinking`;
- `enable_revisions` (deprecated, never reported): true asks for revisions on,
  false for off, unless the body names `revision_types` or `filtering_types`,
  which then decide.

A null the SDK gives no meaning to (say `skip_outline: null`) is "not reported"
and matches. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: List fields whose order carries no meaning.
SET_FIELDS = frozenset({"revision_types", "filtering_types", "tools"})
#: Fields the API reports as null when revisions are off.
REVISION_FIELDS = frozenset({"revision_model", "max_revision_cycles", "revision_thinking_budget"})
#: Each thinking budget and the model it belongs to.
BUDGET_MODEL = {
    "generation_thinking_budget": "generation_model",
    "outline_thinking_budget": "outline_model",
    "revision_thinking_budget": "revision_model",
}
#: Body fields that are not in `runtime_params`.
NOT_IN_RUNTIME = frozenset({"spec_id", "spec_version", "enable_revisions"})
THINKING_SUFFIX = "-thinking"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One field where the run differs from the body."""

    field: str
    wanted: Any  # the body's value
    found: Any  # what the API reports

    def describe(self) -> str:
        return f"{self.field}: the run has {self.found!r}, the manifest {self.wanted!r}"


def same(field: str, wanted: Any, found: Any) -> bool:
    """Equal as the API means it: ids ignore case, set-like lists ignore order."""
    if field == "spec_id" and isinstance(wanted, str) and isinstance(found, str):
        return wanted.lower() == found.lower()
    if field in SET_FIELDS and isinstance(wanted, list) and isinstance(found, list):
        try:
            return set(wanted) == set(found)
        except TypeError:  # unhashable items: compare as given
            return bool(wanted == found)
    if isinstance(wanted, bool) or isinstance(found, bool):
        return type(wanted) is type(found) and wanted == found
    return bool(wanted == found)


def revisions_on(body: Mapping[str, Any], reported: Mapping[str, Any]) -> bool | None:
    """Whether the run revises or filters: from what the API reports, else the body."""
    for source in (reported, body):
        keys = [k for k in ("revision_types", "filtering_types") if isinstance(source.get(k), list)]
        if keys:
            return any(source[k] for k in keys)
        if isinstance(source.get("enable_revisions"), bool):
            return bool(source["enable_revisions"])
    return None


def applies(field: str, body: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    """False when the API reports null for `field` because it does not apply to this run."""
    if field in BUDGET_MODEL:
        model_field = BUDGET_MODEL[field]
        model = reported.get(model_field) or body.get(model_field)
        if not (isinstance(model, str) and model.endswith(THINKING_SUFFIX)):
            return False
    if field in REVISION_FIELDS:
        return revisions_on(body, reported) is True
    return True


def field_matches(
    field: str, wanted: Any, reported: Mapping[str, Any], body: Mapping[str, Any]
) -> bool:
    """Does the value the API reports for `field` answer `wanted` (see the module doc)?"""
    if field == "enable_revisions":
        return _enable_revisions_matches(wanted, reported, body)
    if field not in reported:
        return True
    found = reported[field]
    if found is None:
        # Null means "does not apply" for the fields the SDK says so of; for the
        # rest it is "not reported". Either way only an applicable documented
        # field that comes back null is a difference.
        return not applies(field, body, reported) or field not in _NULL_MEANS_OFF
    return same(field, wanted, found)


# Fields whose null the SDK documents as "off / not applicable / not set".
_NULL_MEANS_OFF = REVISION_FIELDS | frozenset(BUDGET_MODEL) | {"max_examples_in_prompt"}


def _enable_revisions_matches(
    wanted: Any, reported: Mapping[str, Any], body: Mapping[str, Any]
) -> bool:
    if "enable_revisions" in reported:  # an API that still reports it (the old page's)
        found = reported["enable_revisions"]
        return found is None or same("enable_revisions", wanted, found)
    if any(isinstance(body.get(k), list) for k in ("revision_types", "filtering_types")):
        return True  # the explicit lists decide, and are compared themselves
    on = revisions_on({}, reported)
    return on is None or on == bool(wanted)


def mismatches(
    body: Mapping[str, Any],
    *,
    spec_id: str | None,
    spec_version: int | None,
    runtime_params: Mapping[str, Any] | None,
) -> list[Mismatch]:
    """Where a run (as the API reports it) does not answer `body`; empty when it does."""
    out: list[Mismatch] = []
    if "spec_id" in body and spec_id is not None and not same("spec_id", body["spec_id"], spec_id):
        out.append(Mismatch("spec_id", body["spec_id"], spec_id))
    wanted_version = body.get("spec_version")
    if wanted_version is not None and spec_version is not None and wanted_version != spec_version:
        out.append(Mismatch("spec_version", wanted_version, spec_version))
    reported = runtime_params or {}
    for field, wanted in body.items():
        if field in ("spec_id", "spec_version"):
            continue
        if not field_matches(field, wanted, reported, body):
            out.append(Mismatch(field, wanted, reported.get(field)))
    return out


def run_mismatches(body: Mapping[str, Any], run: Any) -> list[Mismatch]:
    """`mismatches` for a client `Run` (anything with spec_id, spec_version, runtime_params)."""
    return mismatches(
        body,
        spec_id=getattr(run, "spec_id", None),
        spec_version=getattr(run, "spec_version", None),
        runtime_params=getattr(run, "runtime_params", None),
    )


def used_of(run: Any) -> dict[str, Any]:
    """What a run used, flat like a body: `spec_version` and its `runtime_params`."""
    used: dict[str, Any] = {}
    version = getattr(run, "spec_version", None)
    if version is not None:
        used["spec_version"] = version
    params = getattr(run, "runtime_params", None)
    if isinstance(params, Mapping):
        used.update(params)
    return used


def body_of(run: Any) -> dict[str, Any]:
    """A body that a run answers: its spec and the non-null values it used."""
    body: dict[str, Any] = {}
    if getattr(run, "spec_id", None):
        body["spec_id"] = run.spec_id
    body.update({k: v for k, v in used_of(run).items() if v is not None})
    return body


def _reported(field: str, used: Mapping[str, Any]) -> bool:
    if field == "enable_revisions":
        return any(k in used for k in ("enable_revisions", "revision_types", "filtering_types"))
    return field in used


def recorded_matches(
    field: str,
    wanted: Any,
    sent: Mapping[str, Any],
    used: Mapping[str, Any],
    body: Mapping[str, Any],
) -> bool:
    """Does a recorded run answer the manifest's `field`: as sent, or as the API used it?

    Writing out the value a run already used (pinning the `spec_version` it ran
    on, naming the model the API chose) is not a change. A field neither sent
    nor reported is a change: nothing says the run has it.
    """
    if field in sent and same(field, wanted, sent[field]):
        return True
    return _reported(field, used) and field_matches(field, wanted, used, body)
