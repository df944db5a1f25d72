"""`dfr plan`: diff manifests against state and show what apply would do."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.engine.pipeline import Loaded, Prepared, prune_refusal
from reconciler.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ValidationFailed
from reconciler.invocation import Invocation
from reconciler.state.model import State

if TYPE_CHECKING:
    from reconciler.api import DataframerClient
    from reconciler.state.backend import Store


@dataclass(frozen=True, slots=True)
class PlanArgs:
    paths: tuple[str, ...] = ()
    refresh: bool = False
    replace: tuple[str, ...] = ()
    prune: bool = False
    as_json: bool = False
    detailed_exitcode: bool = False
    out_file: str | None = None
    fmt: str = "text"  # text, json, markdown, github (auto resolved by the CLI)
    summary_file: str | None = None  # GitLab MR widget summary
    switch_api: bool = False  # the state's runs belong to another API URL, and that is meant
    policy_change: bool = False  # check against dfr.yaml's policy, not the one in state


def refreshed(inv: Invocation, state: State, *, switch_api: bool = False) -> State:
    """The state with statuses from the API, in memory only (plan never writes state)."""
    from reconciler.engine import session
    from reconciler.engine.client import check_api
    from reconciler.state.memory import InMemoryBackend

    with session(inv, "plan --refresh", backend=InMemoryBackend(state)) as s:
        check_api(state, s.client, switch=switch_api)
        observe_unfinished(s.client, s.store)
        runs, specs = s.store.state.runs, s.store.state.specs
    return State(state.format_version, state.serial, state.lineage, runs, state.policy, specs)


def observe_unfinished(client: DataframerClient, store: Store) -> None:
    """Record in `store` the API's statuses of its unfinished runs and its specs' newer
    versions (a web-app edit): what `plan --refresh` shows, and `apply` of such a plan."""
    from reconciler import observe
    from reconciler.specrecord import refresh_specs

    unfinished = [r for r in store.state.runs.values() if r.run_id and not r.is_terminal]
    observe.observe(client, unfinished, store)
    refresh_specs(client, store)


def _refuse_early(args: PlanArgs, state_at: tuple[str, str | None]) -> None:
    """Refuse --out and --summary-file where writing would lose something: the state
    and its files (their run ids), a manifest, each other (planfile.check_target);
    and a saved plan among the PATHs (it is no manifest)."""
    from reconciler import planfile
    from reconciler.errors import UsageError
    from reconciler.textsafe import one_line

    if args.out_file is not None:
        planfile.check_target(args.out_file, state_at)
    for path in args.paths:
        if planfile.is_saved_plan(path):
            shown = one_line(path)
            raise UsageError(
                f"{shown} is a saved plan, not a manifest: `dfr apply {shown}` applies it"
            )
    summary = args.summary_file
    if summary and planfile.is_state_file(summary, state_at):
        raise UsageError(f"--summary-file {one_line(summary)} is the state or one of its files")
    out_file = args.out_file
    if out_file and summary and os.path.realpath(out_file) == os.path.realpath(summary):
        raise UsageError("--summary-file and --out name the same file: give each its own")


def run(inv: Invocation, args: PlanArgs, out: TextIO, err: TextIO) -> int:
    """`dfr plan`: the plan of the manifests under `args.paths` against the state."""
    from reconciler.engine import prepare_plan
    from reconciler.engine.backends import open_backend
    from reconciler.engine.client import make_client
    from reconciler.engine.guard import policy_gate
    from reconciler.engine.loading import load
    from reconciler.plan import PlanOptions

    project = inv.project
    paths = project.manifest_paths(args.paths)  # PATHS, else dfr.yaml's, else "."
    fmt = "json" if args.as_json else args.fmt
    # The state first: the policy in force is the one it records (see guard.PolicyGate).
    backend = open_backend(inv)
    _refuse_early(args, backend.address())  # before any work
    state = backend.read()
    gate = policy_gate(project, state.policy, backend.describe(), change=args.policy_change)
    line = gate.line()
    try:
        loaded = load(
            inv,
            args.paths,
            out,
            err,
            policy=gate.effective,
            annotate=fmt == "github",
            replace=args.replace,
        )
    except ValidationFailed:
        if gate.action in ("change", "refused"):
            err.write(f"{line}\n")  # which policy the manifests were checked against
        raise
    if line is not None and fmt != "json":
        out.write(line + "\n\n")
    if args.refresh:
        state = refreshed(inv, state, switch_api=args.switch_api)
    options = PlanOptions(replace=frozenset(args.replace), prune=args.prune)
    prepared = prepare_plan(
        loaded,
        state,
        gate,
        options,
        outputs_root=project.root(),
        outputs_cache=not inv.no_cache,
    )
    if args.refresh and prepared.plan.to_submit:
        with make_client(inv) as client:
            prepared = prepared.preflighted(client)
    return _show(args, prepared, loaded, (paths, backend.address()), fmt, out, err)


def _show(
    args: PlanArgs,
    prepared: Prepared,
    loaded: Loaded,
    made_from: tuple[tuple[str, ...], tuple[str, str | None]],
    fmt: str,
    out: TextIO,
    err: TextIO,
) -> int:
    """The plan in its format, its findings, the summary and saved plan; the exit code
    (`made_from`: the PATHs read and the state's address, for the saved plan)."""
    from reconciler.render import plan_to_json, render_plan

    plan, checked, gate = prepared.plan, prepared.checked, prepared.gate
    if fmt == "json":
        json.dump(
            {**plan_to_json(plan), **checked.json_fields(), **gate.json_fields()}, out, indent=2
        )
        out.write("\n")
    elif fmt in ("markdown", "github"):
        from reconciler.views.plan_output import write_plan

        write_plan(plan, fmt, out, warnings=loaded.warnings)
    else:
        out.write(checked.annotate(render_plan(plan)))
    checked.report(err)
    refused = prune_refusal(plan)
    if refused:
        err.write(f"error: {refused}\n")
    if args.summary_file:
        from reconciler.views.plan_output import write_summary_file

        write_summary_file(plan, args.summary_file)
    if not checked.ok or refused:
        if args.out_file:
            err.write(f"The plan was not saved to {args.out_file}: fix the errors above first.\n")
        return EXIT_ERROR
    if args.out_file is not None and not _save(args, prepared, made_from, fmt, out, err):
        return EXIT_ERROR
    if args.detailed_exitcode and (plan.has_changes or gate.action == "change"):
        return EXIT_CHANGES
    return EXIT_OK


def _save(
    args: PlanArgs,
    prepared: Prepared,
    made_from: tuple[tuple[str, ...], tuple[str, str | None]],
    fmt: str,
    out: TextIO,
    err: TextIO,
) -> bool:
    """`--out PLANFILE`: save the plan unless apply would refuse it."""
    from reconciler import planfile

    gate = prepared.gate
    assert args.out_file is not None
    if gate.action == "refused":
        # apply would refuse it: the plan was checked against the policy in force.
        err.write(
            f"The plan was not saved to {args.out_file}: {gate.shown_file}'s policy differs "
            f"from {gate.in_force_name} (see above); to make it the one in force, plan "
            "again with --policy-change and review the plan under it.\n"
        )
        return False
    paths, state_at = made_from
    planfile.save(
        args.out_file,
        prepared.plan,
        paths,
        whole=not args.paths,
        policy_sha256=gate.file_sha256,
        policy_change=gate.action == "change",
        state_at=state_at,
        refresh=args.refresh,
    )
    if fmt in ("text", "github"):
        # Quoted for a shell (check_target refused control characters); a name that
        # begins with '-' would be read as an option.
        name = args.out_file
        command = shlex.quote("./" + name if name.startswith("-") else name)
        out.write(f"\nSaved the plan to {name}. Apply exactly it with: dfr apply {command}\n")
    return True
