"""Finding out what became of a spec create or update whose answer never came.

Before every create POST and update PUT, apply durably records a `SpecIntent`
(the body, the normalised content's digest, the time). When the answer is lost
(a timeout, a reset, a 5xx after the request left, or dfr was killed), nothing
is sent again before one of these looks:

- **create**: a spec's name is unique (per seed dataset, and among seedless
  specs), so the specs listed under the intent's name and dataset are the only
  candidates. One created no earlier than the intent (minus a clock-skew
  allowance) whose description, dataset and runtime parameters do not contradict
  the body is the one dfr made: `ADOPT` it. Nothing listed: `ABSENT`, sending
  again is safe (once the intent is older than the grace period: the API may
  still be making it). A spec of that name that is not ours: `TAKEN`, an error
  naming the name (adopt it with `dfr import spec NAME ID` if it is the one).
- **update**: the spec's versions are read; a version newer than those recorded
  whose normalised content equals what was sent is the update: `APPLIED`. None:
  `ABSENT`. The API keeps the YAML in the customer's own cloud: `UNKNOWN`, since
  the contents cannot be compared, and nothing is sent.

A 409 (the name taken) on a create is resolved by the same look as a lost create.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from reconciler.errors import NotFoundError
from reconciler.recovery import parse_time
from reconciler.specrecord import content_digest
from reconciler.state.model import SpecIntent, SpecRecord


class SpecLookup(Protocol):
    def find_specs(self, name: str) -> list[Any]: ...

    def get_spec_versions(self, spec_id: str) -> Any: ...


class Verdict(enum.Enum):
    ADOPT = "the spec exists: adopt it"
    APPLIED = "the update made its version"
    ABSENT = "nothing was made: sending again is safe"
    TAKEN = "a spec of that name exists that dfr did not make"
    UNKNOWN = "the API cannot say"


@dataclass(frozen=True, slots=True)
class Finding:
    verdict: Verdict
    detail: Any | None = None  # the spec read (a SpecDetail), when one was
    version: int | None = None  # APPLIED: the number of the version the update made
    why: str = ""  # TAKEN / UNKNOWN: one phrase for the message


def _same_id(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, str) and isinstance(b, str) and a.lower() == b.lower()


#: Create options a spec echoes back in its own fields or `runtime_params`.
_ECHOED = (
    "description",
    "generation_objectives",
    "spec_generation_model_name",
    "generate_distributions",
    "generate_conditional_distributions",
    "extrapolate_axes",
    "extrapolate_values",
)


def contradicts(body: dict[str, Any], detail: Any) -> list[str]:
    """The create options of `body` that the spec `detail` reports otherwise."""
    params = detail.runtime_params or {}
    out = []
    for key in _ECHOED:
        if key not in body:
            continue
        seen = detail.description if key == "description" else params.get(key)
        if seen is not None and seen != body[key]:
            out.append(key)
    return out


def resolve_create(
    client: SpecLookup, name: str, intent: SpecIntent, *, skew: timedelta
) -> Finding:
    """What became of the create of `intent` (see the module docstring)."""
    body = intent.body
    listed = [s for s in client.find_specs(name) if _same_id(s.dataset_id, body.get("dataset_id"))]
    if not listed:
        return Finding(Verdict.ABSENT)
    since = parse_time(intent.at)
    earliest = since - skew if since is not None else None
    ours: list[Any] = []
    taken: list[Finding] = []
    for spec in listed:
        try:
            detail = client.get_spec_versions(spec.id)
        except NotFoundError:
            continue  # deleted since it was listed
        created = parse_time(detail.created_at or spec.created_at)
        wrong = contradicts(body, detail)
        if earliest is not None and created is not None and created < earliest:
            why = (
                f"spec {detail.id} has that name and was made at {detail.created_at}, "
                f"before dfr sent its create ({intent.at})"
            )
            taken.append(Finding(Verdict.TAKEN, detail, why=why))
        elif wrong:
            why = f"spec {detail.id} has that name but another {', '.join(wrong)}"
            taken.append(Finding(Verdict.TAKEN, detail, why=why))
        else:
            ours.append(detail)
    if len(ours) == 1:
        return Finding(Verdict.ADOPT, ours[0])
    if ours:  # never guess between two
        ids = ", ".join(d.id for d in ours)
        return Finding(Verdict.UNKNOWN, why=f"{len(ours)} specs of that name answer it ({ids})")
    return taken[0] if taken else Finding(Verdict.ABSENT)


def resolve_update(client: SpecLookup, record: SpecRecord, intent: SpecIntent) -> Finding:
    """What became of the update of `intent` on the recorded spec (see the module docstring)."""
    assert record.spec_id is not None
    detail = client.get_spec_versions(record.spec_id)
    versions = detail.versions or ()
    known = max((v.number for v in record.versions), default=0)
    newer = [v for v in versions if v.number > known]
    if any(v.content_yaml is None for v in newer):
        return Finding(
            Verdict.UNKNOWN,
            detail,
            why="the API keeps this spec's YAML in your own cloud, so dfr cannot compare it "
            "with what it sent",
        )
    for version in reversed(newer):
        if content_digest(version.content_yaml) == intent.content_sha256:
            return Finding(Verdict.APPLIED, detail, version=version.number)
    return Finding(Verdict.ABSENT, detail)
