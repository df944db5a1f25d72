"""`dfr import NAME RUN_ID`: adopt an existing run for a manifest, after checking it."""

from __future__ import annotations

from typing import Any, TextIO

from reconciler.commands.common import load_manifests, make_client, open_backend
from reconciler.errors import EXIT_OK, DfrError
from reconciler.state.model import PENDING, RunRecord, utc_now


def differences(body: dict[str, Any], run: Any) -> list[str]:
    """How an existing run differs from what a manifest asks for."""
    diffs = []
    if run.spec_id is not None and run.spec_id != body.get("spec_id"):
        diffs.append(f"spec_id: the run has {run.spec_id}, the manifest {body.get('spec_id')}")
    version = body.get("spec_version")
    if version is not None and run.spec_version is not None and run.spec_version != version:
        diffs.append(f"spec_version: the run has {run.spec_version}, the manifest {version}")
    params = run.runtime_params or {}
    for key, value in body.items():
        if key in ("spec_id", "spec_version") or key not in params:
            continue
        if params[key] != value:
            diffs.append(f"{key}: the run has {params[key]!r}, the manifest {value!r}")
    return diffs


def run_import(
    name: str,
    run_id: str,
    paths: tuple[str, ...],
    state_path: str | None,
    api_url: str | None,
    lock_timeout: float,
    allow_insecure_http: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    from reconciler.recovery import owned_ids

    manifests = {m.name: m for m in load_manifests(paths, err)}
    manifest = manifests.get(name)
    if manifest is None:
        raise DfrError(
            f"no manifest is named {name!r}; import adopts a run for an existing manifest"
        )
    body = manifest.body
    backend = open_backend(state_path)
    with (
        make_client(api_url, allow_insecure_http=allow_insecure_http) as client,
        backend.lock("import", timeout=lock_timeout) as store,
    ):
        state = store.state
        record = state.runs.get(name)
        if record is not None and record.run_id == run_id:
            out.write(f"{name} already records run {run_id}; nothing to do.\n")
            return EXIT_OK
        if record is not None and record.run_id:
            raise DfrError(
                f"{name} already records run {record.run_id}; remove it first with "
                f"`dfr state rm {name}` if {run_id} should replace it"
            )
        owner = next(
            (
                r.name
                for r in state.runs.values()
                if r.run_id == run_id or run_id in r.previous_run_ids
            ),
            None,
        )
        if owner is not None or run_id in owned_ids(state):
            raise DfrError(f"run {run_id} is already recorded for {owner!r}")
        run = client.get_run(run_id)  # NotFoundError says the run does not exist
        diffs = differences(body, run)
        if diffs:
            raise DfrError(
                f"run {run_id} does not match manifest {name!r} ({manifest.where}): "
                + "; ".join(diffs)
            )
        base = record or RunRecord.new(name)
        store.put(
            base.evolve(
                run_id=run_id,
                status=run.status or PENDING,
                spec=body,
                labels=dict(manifest.labels),
                intent=None,
                submitted_at=utc_now(),
                created_at=run.created_at,
                completed_at=run.completed_at,
                samples_completed=run.samples_completed,
                samples_failed=run.samples_failed,
                total_cost=run.total_cost,
                failure_reason=run.failure_reason,
                last_error=None,
                drift=None,
            )
        )
    out.write(f"Imported run {run_id} ({run.status or 'status unknown'}) as {name}.\n")
    return EXIT_OK
