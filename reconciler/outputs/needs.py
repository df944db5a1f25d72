"""Which runs' outputs a pull would write, and why: the `pull` action of a plan. Pure.

`pulls_needed(manifests, state, checks)` takes the manifests, the recorded
state and, per manifest name, the `FolderCheck` of its output folder against
its recorded files (`reconciler.outputs.scan.check_folders` reads the folders;
nothing here touches the filesystem). A manifest with `outputs:` needs a pull
when its recorded run SUCCEEDED and:

- nothing was ever pulled for it;
- what was pulled came from another run (the run was replaced since);
- `outputs.path` or `outputs.files` changed since the pull;
- the folder lacks or differs from the recorded files (`missing`, `modified`).

A run that is not SUCCEEDED (yet) has nothing to pull. When the plan also
creates or replaces the run, the pull comes after it (`depends_on`
"run/NAME"): apply --pull downloads the new run's files once it SUCCEEDED.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.outputs.compare import FolderCheck, FolderState
from reconciler.specplan import PlanChange
from reconciler.state.model import SUCCEEDED, RunRecord, State

__all__ = ["PullChange", "pulls_needed"]


@dataclass(frozen=True, slots=True)
class PullChange(PlanChange):
    """One run whose files a pull writes (the plan's `pull` action; key `pull/NAME`)."""

    KIND = "pull"
    run_id: str | None  # None: the run is yet to be made by this plan
    path: str  # outputs.path
    reason: str
    files: tuple[str, ...] = ()  # recorded files that differ (missing or modified)
    depends_on: tuple[str, ...] = ()
    where: str | None = None  # the manifest's outputs: section, FILE:LINE:COL

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": "pull",
            **self.json_of("run_id", "path", "reason", "files", "depends_on"),
        }


def _same_run(a: str | None, b: str | None) -> bool:
    # The API may answer ids in another letter case than it was sent.
    return a is not None and b is not None and a.lower() == b.lower()


def pull_reason(record: RunRecord, outputs: Any, check: FolderCheck | None) -> str | None:
    """Why the recorded run's files need pulling, or None when the folder is current."""
    pulled = record.outputs
    if pulled is None:
        return "never pulled"
    if not _same_run(pulled.run_id, record.run_id):
        return f"the folder holds the files of run {pulled.run_id or 'unknown'}"
    if pulled.path != outputs.path:
        return f"outputs.path changed (was {pulled.path})"
    if tuple(pulled.patterns) != tuple(outputs.files):
        return "outputs.files changed"
    if check is not None and check.differs:
        return f"the folder differs from state: {check.summary}"
    return None


def pulls_needed(
    manifests: Iterable[Any],
    state: State,
    checks: Mapping[str, FolderCheck],
    *,
    submitting: frozenset[str] = frozenset(),
) -> tuple[PullChange, ...]:
    """The pulls a plan shows, sorted by name. `submitting`: names the plan creates
    or replaces (their pull waits for the new run)."""
    out: list[PullChange] = []
    for manifest in manifests:
        outputs = getattr(manifest, "outputs", None)
        if outputs is None:
            continue
        name = manifest.name
        where = getattr(outputs, "where", None)
        if name in submitting:
            out.append(
                PullChange(
                    name,
                    None,
                    outputs.path,
                    "after the new run SUCCEEDED",
                    depends_on=(f"run/{name}",),
                    where=where,
                )
            )
            continue
        record = state.get(name)
        if record is None or record.run_id is None or record.status != SUCCEEDED:
            continue
        check = checks.get(name)
        reason = pull_reason(record, outputs, check)
        if reason is None:
            continue
        files = () if check is None else (*check.missing, *check.modified)
        out.append(PullChange(name, record.run_id, outputs.path, reason, files, where=where))
    return tuple(sorted(out, key=lambda p: p.name))


def is_current(check: FolderCheck | None) -> bool:
    """The folder holds exactly what was recorded."""
    return check is not None and check.state is FolderState.PULLED
