"""Saved plans: `dfr plan --out PLANFILE` and `dfr apply PLANFILE`.

A saved plan records what it was made from: the manifest paths and the hash
of what they asked for, the state's lineage and serial, the options, and the
policy it was checked against (and whether it was made with --policy-change), which
state it was made for (its file or database) and whether it was made with --refresh.
It carries a checksum of its own content, so a hand-edited file is refused.
`apply PLANFILE` re-reads the manifests and the state under the lock, refuses
when either moved, re-plans and requires the result to be the saved plan:
what a reviewer approved is exactly what is executed.

`--out` writes only where no file is, or over an empty file or a saved plan:
never over the state or its journal, backup and lock, a manifest, a folder, a
link to another file or a device; a name ending in .yaml or .yml (the next plan
would read it as a manifest) or holding a control character is refused.
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
from reconciler.state.local import SIBLINGS
from reconciler.state.model import utc_now
from reconciler.textsafe import one_line

MARKER = "dfr_saved_plan"
FORMAT = 1
#: A saved plan larger than this is refused unread.
MAX_BYTES = 64 * 1024 * 1024
#: How every saved plan begins (its keys are sorted): a file cut anywhere is still one.
_HEAD = b'{\n  "checksum": "sha256:'
_YAML = (".yaml", ".yml")


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
    # The state it was made for: Backend.address() (a state file's real path, or a
    # database without its password, and the workspace). Plans saved before it: None.
    state_at: tuple[str, str | None] | None = None
    refresh: bool = False  # made with --refresh: apply reads the statuses again first


def _checksum(document: dict[str, Any]) -> str:
    body = {k: v for k, v in document.items() if k != "checksum"}
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_target(path: str, state_at: tuple[str, str | None] | None = None) -> None:
    """Refuse `--out PATH` unless it names no file, an empty file or a saved plan (see
    the module's docstring); `state_at` is the state's Backend.address()."""
    shown = one_line(path)
    if not path:
        raise PlanError("--out needs a file name: the plan was not saved")
    if shown != path:
        raise PlanError(
            f"the plan file name {shown} holds a control character; choose another name"
        )
    if Path(path).suffix.lower() in _YAML:
        raise PlanError(
            f"{shown}: a saved plan cannot end in .yaml or .yml (the next plan would read "
            "it as a manifest); choose another name"
        )
    if is_state_file(path, state_at):
        raise PlanError(f"{shown} is the state or one of its files: the plan was not saved there")
    if os.path.isdir(path):
        raise PlanError(f"{shown} is a folder: name a file for the plan (it was not saved)")
    # An empty file holds nothing to lose (`--out "$(mktemp)"` makes one).
    if os.path.lexists(path) and not (is_saved_plan(path) or _head(path) == b""):
        raise PlanError(
            f"{shown} exists and is not a saved plan: the plan was not saved over it; "
            "choose another name"
        )


def is_state_file(path: str, state_at: tuple[str, str | None] | None) -> bool:
    """Whether `path` is the state file at `state_at` (Backend.address()) or one beside it
    (journal, backup, lock): writing there would lose the run ids it records."""
    if state_at is None:
        return False
    real = os.path.realpath(path)
    return real == state_at[0] or real.startswith(tuple(state_at[0] + s for s in SIBLINGS))


def save(
    path: str,
    plan: Plan,
    paths: tuple[str, ...],
    *,
    whole: bool = True,
    policy_sha256: str | None = None,
    policy_change: bool = False,
    state_at: tuple[str, str | None] | None = None,
    refresh: bool = False,
) -> None:
    check_target(path, state_at)
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
        "refresh": refresh,
        "plan": plan_to_json(plan),
    }
    if state_at is not None:
        document["state"].update(at=state_at[0], workspace=state_at[1])
    if policy_sha256 is not None:
        document["policy"] = {"sha256": policy_sha256, "change": policy_change}
    document["checksum"] = _checksum(document)
    _write(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def _write(path: str, data: bytes) -> None:
    """`data` at `path` as the state's files are written (state.files.Folder): a new
    0600 temp file, synced, renamed over `path`; the temp file removed on any failure,
    Ctrl-C too."""
    from reconciler.state.files import Folder

    folder = Folder(os.path.dirname(path) or ".")
    try:
        folder.write_atomically(path, data, folder.temp(path))
    except OSError as exc:
        raise PlanError(f"cannot write plan file {one_line(path)}: {exc.strerror}") from None


def _head(path: str) -> bytes | None:
    """The first 4 KiB of a regular file not named as a manifest, or None."""
    if Path(path).suffix.lower() in _YAML or not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read(4096).removeprefix(b"\xef\xbb\xbf")  # an editor's BOM
    except OSError:
        return None


def is_saved_plan(path: str) -> bool:
    """Cheap sniff: a JSON file that names itself a dfr saved plan, or begins as
    every saved plan does (one cut short is still one, to be refused as damaged)."""
    head = _head(path)
    if head is None:
        return False
    start = head.lstrip()
    if start.startswith(b"{") and MARKER.encode() in head:
        return True
    # CRLF line ends (a checkout with git's autocrlf), perhaps cut between the two.
    head = head.replace(b"\r\n", b"\n").removesuffix(b"\r")
    return bool(head) and (head.startswith(_HEAD) or _HEAD.startswith(head))


def is_meant_as_plan(path: str) -> bool:
    """What `dfr apply PATH` reads as a saved plan: one (perhaps damaged), or an empty
    file not named as a manifest (a plan that was never written: no manifest either)."""
    head = _head(path)
    return head is not None and (not head.strip() or is_saved_plan(path))


def load(path: str) -> SavedPlan:
    shown = one_line(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_BYTES:
                raise PlanError(
                    f"{shown} is too large to be a saved plan ({size // (1024 * 1024)} MB)"
                )
            data = handle.read(MAX_BYTES + 1)
        if not data.strip():
            raise PlanError(
                f"{shown} is empty: not a saved plan (make it again with `dfr plan --out`)"
            )
        document = json.loads(data)
    except OSError as exc:
        raise PlanError(f"cannot read plan file {shown}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser's stack (e.g. "[[[[...").
        raise PlanError(f"{shown} is not a readable saved plan (invalid JSON)") from None
    return _read(document, shown)


def _read(document: Any, path: str) -> SavedPlan:
    """The SavedPlan of a parsed plan file, checked (its marker, format, checksum)."""
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
            state_at=(str(state["at"]), _optional(state.get("workspace")))
            if "at" in state
            else None,
            refresh=document.get("refresh") is True,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PlanError(f"{path} is not a valid saved plan (fields missing)") from None


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def check_current(
    saved: SavedPlan, plan: Plan, path: str, at: tuple[str, str | None] | None = None
) -> None:
    """Refuse a saved plan whose state or manifests moved since it was made
    (`at`: this state's Backend.address())."""
    check_state(saved, plan.lineage, plan.serial, path, at)
    check_plan(saved, plan, path)


def check_state(
    saved: SavedPlan,
    lineage: str,
    serial: int,
    path: str,
    at: tuple[str, str | None] | None = None,
) -> None:
    """Refuse a saved plan made for another state, or before it changed."""
    path = one_line(path)
    # Where the state is counts only for a plan made before it recorded anything: a
    # written state's lineage is its identity wherever it is (a CI job's checkout of
    # the state branch sits at another path than the job that made the plan).
    made_at = saved.state_at
    moved = made_at is not None and at is not None and tuple(made_at) != tuple(at)
    if made_at is not None and at is not None and moved and saved.serial == 0:
        raise PlanError(
            f"{path} was made for another state ({_where(made_at)}); this apply's "
            f"state is {_where(at)}: name the plan's state (--state, or --backend and "
            "--workspace) or make a new plan"
        )
    # Serial 0 is a state that never recorded anything (often no file yet: each
    # read of a missing state makes up a new lineage): its lineage proves nothing,
    # and a state since written is one whose serial moved.
    if saved.lineage != lineage and saved.serial != 0:
        where = f" ({_where(made_at)})" if made_at is not None and moved else ""
        raise PlanError(
            f"{path} was made for another state{where} (lineage {saved.lineage}, this "
            f"state is {lineage}); make a new plan"
        )
    if saved.serial != serial:
        raise PlanError(
            f"{path} is stale: the state changed since the plan was made (serial "
            f"{saved.serial} -> {serial}); make a new plan with `dfr plan --out`"
        )


def _where(at: tuple[str, str | None]) -> str:
    return one_line(at[0] if at[1] is None else f"{at[0]} (workspace {at[1]})")


def check_plan(saved: SavedPlan, plan: Plan, path: str) -> None:
    """Refuse a saved plan whose manifests moved, or that re-planning does not give again."""
    path = one_line(path)
    if saved.manifests_digest != plan.manifests_digest:
        raise PlanError(
            f"{path} is stale: the manifests changed since the plan was made; "
            "make a new plan with `dfr plan --out`"
        )

    now = plan_to_json(plan)
    # The spec changes (reconciler.specplan) too; plans saved before specs have none.
    moved = _without_places(now["specs"]) != _without_places(saved.plan.get("specs", []))
    if _without_places(now["changes"]) != _without_places(saved.plan.get("changes")):
        moved = True
    # The evaluations to start (reconciler.evaluate); plans saved before them have none.
    from reconciler.views import evaluate_plan as ev

    evaluations = _without_places(ev.plan_json(plan))
    if moved or evaluations != _without_places(saved.plan.get("evaluations", [])):
        since = "; the runs' statuses moved since `dfr plan --refresh`" if saved.refresh else ""
        raise PlanError(
            f"{path} does not match what its manifests and state give{since}; make a new plan"
        )


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
