"""Saved plans: `dfr plan --out PLANFILE` and `dfr apply PLANFILE`.

A saved plan records what it was made from: the manifest paths and the hash
of what they asked for, the state's lineage and serial, the options, and the
policy it was checked against (and whether it was made with --policy-change). It
carries a checksum of its own content, so a hand-edited file is refused.
`apply PLANFILE` re-reads the manifests and the state under the lock, refuses
when either moved, re-plans and requires the result to be the saved plan:
what a reviewer approved is exactly what is executed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import __version__
from reconciler.errors import PlanError
from reconciler.plan import Plan, PlanOptions
from reconciler.render import plan_to_json
from reconciler.state.model import utc_now

MARKER = "dfr_saved_plan"
FORMAT = 1


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A plan file read back: what the plan was made from, and the plan."""

    paths: tuple[str, ...]  # the PATHs `dfr plan` read, as given
    cwd: str  # where it ran, which the PATHs are relative to
    lineage: str  # the state it was made from (its lineage and serial)
    serial: int
    manifests_digest: str  # what the manifests asked for (Plan.manifests_digest)
    options: PlanOptions  # --replace and --prune
    plan: dict[str, Any]  # as `dfr plan --json` writes it
    # The project's own manifests were read (no PATH named): runs whose manifest
    # file is unknown are in the plan's scope. Plans saved before it: True.
    whole: bool = True
    # The policy the plan was checked against (sha256 of its settings) and whether
    # it was made with --policy-change (apply then records that policy). Plans saved
    # before it: None, not checked.
    policy_sha256: str | None = None
    policy_change: bool = False


def _checksum(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "checksum"}
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def save(
    path: str,
    plan: Plan,
    paths: tuple[str, ...],
    *,
    whole: bool = True,
    policy_sha256: str | None = None,
    policy_change: bool = False,
) -> None:
    document: dict[str, Any] = {
        MARKER: FORMAT,
        "dfr_version": __version__,
        "created_at": utc_now(),
        "cwd": os.getcwd(),
        "paths": list(paths),
        "state": {"lineage": plan.lineage, "serial": plan.serial},
        "manifests_digest": plan.manifests_digest,
        "options": {"replace": sorted(plan.options.replace), "prune": plan.options.prune},
        "scope_whole": whole,
        "plan": plan_to_json(plan),
    }
    if policy_sha256 is not None:
        document["policy"] = {"sha256": policy_sha256, "change": policy_change}
    document["checksum"] = _checksum(document)
    data = (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise PlanError(f"cannot write plan file {path}: {exc.strerror}") from None


def is_saved_plan(path: str) -> bool:
    """Cheap sniff: a JSON file that names itself a dfr saved plan."""
    if Path(path).suffix.lower() in (".yaml", ".yml") or not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and MARKER.encode() in head


def load(path: str) -> SavedPlan:
    try:
        with open(path, "rb") as handle:
            document = json.loads(handle.read(64 * 1024 * 1024))
    except OSError as exc:
        raise PlanError(f"cannot read plan file {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack (e.g. "[[[[...").
        raise PlanError(f"{path} is not a readable saved plan (invalid JSON)") from None
    if not isinstance(document, dict) or document.get(MARKER) is None:
        raise PlanError(f"{path} is not a dfr saved plan")
    if document.get(MARKER) != FORMAT:
        raise PlanError(
            f"{path} is a saved plan of format {document.get(MARKER)!r}; this dfr reads "
            f"format {FORMAT}"
        )
    if document.get("checksum") != _checksum(document):
        raise PlanError(
            f"{path} was modified after `dfr plan` wrote it (checksum mismatch); "
            "make a new plan with `dfr plan --out`"
        )
    try:
        options = document["options"]
        state = document["state"]
        policy = document.get("policy") or {}
        return SavedPlan(
            paths=tuple(str(p) for p in document["paths"]),
            cwd=str(document["cwd"]),
            lineage=str(state["lineage"]),
            serial=int(state["serial"]),
            manifests_digest=str(document["manifests_digest"]),
            options=PlanOptions(
                replace=frozenset(str(n) for n in options["replace"]),
                prune=bool(options["prune"]),
            ),
            plan=dict(document["plan"]),
            whole=bool(document.get("scope_whole", True)),
            policy_sha256=str(policy["sha256"]) if "sha256" in policy else None,
            policy_change=bool(policy.get("change", False)),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PlanError(f"{path} is not a valid saved plan (fields missing)") from None


def check_current(saved: SavedPlan, plan: Plan, path: str) -> None:
    """Refuse a saved plan whose state or manifests moved since it was made."""
    # Serial 0 is a state that never recorded anything (often no file yet: each
    # read of a missing state makes up a new lineage); the changes compared
    # below still have to match exactly.
    if saved.lineage != plan.lineage and not (saved.serial == plan.serial == 0):
        raise PlanError(
            f"{path} was made for another state (lineage {saved.lineage}, this state is "
            f"{plan.lineage}); make a new plan"
        )
    if saved.serial != plan.serial:
        raise PlanError(
            f"{path} is stale: the state changed since the plan was made (serial "
            f"{saved.serial} -> {plan.serial}); make a new plan with `dfr plan --out`"
        )
    if saved.manifests_digest != plan.manifests_digest:
        raise PlanError(
            f"{path} is stale: the manifests changed since the plan was made; "
            "make a new plan with `dfr plan --out`"
        )

    now = plan_to_json(plan)
    # The spec changes (reconciler.specplan) too; plans saved before specs have none.
    moved = _without_places(now["specs"]) != _without_places(saved.plan.get("specs", []))
    if _without_places(now["changes"]) != _without_places(saved.plan.get("changes")) or moved:
        raise PlanError(f"{path} does not match what its manifests and state give; make a new plan")
    # The evaluations to start (reconciler.evaluate); plans saved before them have none.
    from reconciler.views import evaluate_plan as ev

    evaluations = _without_places(ev.plan_json(plan))
    if evaluations != _without_places(saved.plan.get("evaluations", [])):
        raise PlanError(f"{path} does not match what its manifests and state give; make a new plan")


def _without_places(items: Any) -> Any:
    """A plan JSON's list of changes without their `manifest` places (where a
    manifest sits may read differently from another directory)."""
    if not isinstance(items, list):
        return items
    return [
        {k: v for k, v in item.items() if k != "manifest"} if isinstance(item, dict) else item
        for item in items
    ]


def check_policy(saved: SavedPlan, policy_sha256: str, shown: str, path: str) -> None:
    """Refuse a saved plan made under another policy than the one apply now enforces
    (`shown`: where that one comes from, e.g. dfr.yaml)."""
    if saved.policy_sha256 is not None and saved.policy_sha256 != policy_sha256:
        raise PlanError(
            f"{path} was made under another policy (sha256 {saved.policy_sha256[:12]}) than "
            f"the one in force for this apply ({shown}, sha256 {policy_sha256[:12]}); "
            "make a new plan with `dfr plan --out` and review it"
        )
