"""The spec preflight: is each spec a run would use ready for it?

Before `dfr plan --refresh` shows, or `dfr apply` submits, the runs to create or
replace, their specs are read through the specs API: one GET (with versions) per
distinct spec id, however many manifests use it. A run is blocked when:

- the spec does not exist (404): "spec X not found";
- its status is not SUCCEEDED: "spec X is PROCESSING; a run needs a SUCCEEDED spec";
- the `spec_version` asked for is not among its versions:
  "spec X has versions 1-3; spec_version 9 does not exist". The current API
  does not number versions: version N is the Nth entry of `versions` (by
  `created_at`), so N entries are versions 1..N. When the versions cannot be
  determined (no list), the finding is a warning, never a block.

A spec whose `content_yaml` is null because it lives in the customer's own
cloud (`content_unavailable_reason`) is ready: only the status decides.

A spec that cannot be read for another reason (the API is down, the answer lacks
a status) blocks nothing: the API still checks the spec when the run is created,
and the finding is a warning. A bad key (401/403) stops the command, as anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reconciler.errors import APIError, AuthError, NotFoundError
from reconciler.plan import Change

SUCCEEDED = "SUCCEEDED"


class SpecClient(Protocol):
    def get_spec(self, spec_id: str, include_versions: bool = False) -> Any: ...


@dataclass(frozen=True, slots=True)
class Finding:
    """Why one manifest's run cannot (blocking) or might not (warning) be submitted."""

    name: str
    spec_id: str
    reason: str
    where: str | None
    blocking: bool = True

    def line(self) -> str:
        # The place is a file path, the reason quotes the API's spec name: any text.
        from reconciler.textsafe import line_start, one_line

        severity = "error" if self.blocking else "warning"
        place = f"{line_start(self.where)}: " if self.where else ""
        tail = "; it will not be submitted" if self.blocking else ""
        return f"{place}{severity}: {self.name}: {one_line(self.reason)}{tail}"


@dataclass(slots=True)
class Preflight:
    findings: list[Finding] = field(default_factory=list)
    specs_read: int = 0

    @property
    def blocked(self) -> dict[str, str]:
        """Manifest name -> reason, for the manifests that must not be submitted."""
        return {f.name: f.reason for f in self.findings if f.blocking}

    @property
    def ok(self) -> bool:
        return not self.blocked

    def to_json(self) -> dict[str, Any]:
        return {
            "specs_read": self.specs_read,
            "blocked": self.blocked,
            "warnings": {f.name: f.reason for f in self.findings if not f.blocking},
        }


def check_specs(client: SpecClient, changes: Sequence[Change]) -> Preflight:
    """Read each distinct spec of the changes that submit, once; judge every change."""
    groups: dict[str, list[Change]] = {}
    for change in changes:
        if not change.submits or change.body is None or "spec_id" not in change.body:
            continue  # no spec id yet: a spec this plan creates (reconciler.specplan)
        if getattr(change, "depends_on", ()):
            # A spec of this plan (maybe PROCESSING, or about to get the pinned version):
            # apply checks it once the spec's work is done (reconciler.specapply.fill).
            continue
        spec_id = str(change.body.get("spec_id", ""))
        groups.setdefault(spec_id.lower(), []).append(change)
    result = Preflight()
    for group in groups.values():
        spec_id = str(group[0].body["spec_id"]) if group[0].body else ""
        result.specs_read += 1
        try:
            spec = client.get_spec(spec_id, include_versions=True)
        except AuthError:
            raise
        except NotFoundError:
            for change in group:
                result.findings.append(_finding(change, spec_id, f"spec {spec_id} not found"))
            continue
        except APIError as exc:
            reason = f"could not check spec {spec_id} ({exc.message}); the API checks it on submit"
            for change in group:
                result.findings.append(_finding(change, spec_id, reason, blocking=False))
            continue
        for change in group:
            finding = _judge(spec, spec_id, change)
            if finding is not None:
                result.findings.append(finding)
    result.findings.sort(key=lambda f: f.name)
    return result


def _finding(change: Change, spec_id: str, reason: str, *, blocking: bool = True) -> Finding:
    return Finding(change.name, spec_id, reason, change.where, blocking)


def _judge(spec: Any, spec_id: str, change: Change) -> Finding | None:
    label = f"spec {spec_id}" + (f" ({spec.name})" if getattr(spec, "name", None) else "")
    status = getattr(spec, "status", None)
    if status is None:
        return _finding(
            change,
            spec_id,
            f"{label} did not report a status; the API checks it on submit",
            blocking=False,
        )
    if status != SUCCEEDED:
        return _finding(change, spec_id, f"{label} is {status}; a run needs a SUCCEEDED spec")
    wanted = change.body.get("spec_version") if change.body else None
    if wanted is None:
        return None
    versions = spec.version_numbers()
    if versions is None:
        return _finding(
            change,
            spec_id,
            f"{label} did not list its versions; spec_version {wanted} could not be checked "
            "(the API checks it on submit)",
            blocking=False,
        )
    if wanted not in versions:
        if not versions:
            return _finding(
                change, spec_id, f"{label} has no versions; spec_version {wanted} does not exist"
            )
        word = "version" if len(versions) == 1 else "versions"
        return _finding(
            change,
            spec_id,
            f"{label} has {word} {spans(sorted(versions))}; spec_version {wanted} does not exist",
        )
    version_status = versions[wanted]
    if version_status is not None and version_status != SUCCEEDED:
        return _finding(
            change,
            spec_id,
            f"{label} version {wanted} is {version_status}; a run needs a SUCCEEDED version",
        )
    return None


def spans(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> '1-3, 5'."""
    out: list[str] = []
    start = prev = None
    for n in [*numbers, None]:
        if n is not None and prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    return ", ".join(out)
