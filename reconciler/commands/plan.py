"""`dfr plan`: diff manifests against state and show what apply would do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from reconciler.commands.common import load_scoped, make_client, open_backend
from reconciler.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, ValidationFailed
from reconciler.state.model import State


@dataclass(frozen=True, slots=True)
class PlanArgs:
    paths: tuple[str, ...]
    state: str | None
    api_url: str | None = None
    refresh: bool = False
    replace: tuple[str, ...] = ()
    prune: bool = False
    as_json: bool = False
    detailed_exitcode: bool = False
    out_file: str | None = None
    allow_insecure_http: bool = False
    fmt: str = "text"  # text, json, markdown, github (auto resolved by the CLI)
    summary_file: str | None = None  # GitLab MR widget summary
    switch_api: bool = False  # the state's runs belong to another API URL, and that is meant
    policy_change: bool = False  # check against dfr.yaml's policy, not the one in state


def refreshed(
    state: State, api_url: str | None, allow_insecure_http: bool, *, switch_api: bool = False
) -> State:
    """The state with statuses from the API, in memory only (plan never writes state)."""
    from reconciler import observe
    from reconciler.commands.common import check_api
    from reconciler.state.memory import InMemoryBackend

    backend = InMemoryBackend(state)
    with (
        make_client(api_url, allow_insecure_http=allow_insecure_http) as client,
        backend.lock("plan --refresh") as store,
    ):
        check_api(state, client, switch=switch_api)
        unfinished = [r for r in state.runs.values() if r.run_id and not r.is_terminal]
        observe.observe(client, unfinished, store)
        runs = store.state.runs
    return State(state.format_version, state.serial, state.lineage, runs, state.policy)


def run_plan(args: PlanArgs, out: TextIO, err: TextIO) -> int:
    from reconciler.commands import guard
    from reconciler.plan import PlanOptions, make_plan
    from reconciler.project import current
    from reconciler.render import plan_to_json, render_plan

    project = current()
    paths = project.manifest_paths(args.paths)  # PATHS, else dfr.yaml's, else "."
    fmt = "json" if args.as_json else args.fmt
    # The state first: the policy in force is the one it records (see guard.PolicyGate).
    backend = open_backend(args.state)
    state = backend.read()
    gate = guard.policy_gate(project, state.policy, backend.describe(), change=args.policy_change)
    policy = gate.effective
    line = gate.line()
    warnings: list[Any] = []
    try:
        if fmt == "github":
            from reconciler.views.plan_output import load_manifests_annotated

            manifests, warnings = load_manifests_annotated(paths, out, err, policy=policy)
            scope = scope_of(manifests, paths, named=bool(args.paths))
        else:
            manifests, scope = load_scoped(args.paths, err, policy=policy)
    except ValidationFailed:
        if gate.action in ("change", "refused"):
            err.write(f"{line}\n")  # which policy the manifests were checked against
        raise
    if line is not None and fmt != "json":
        out.write(line + "\n\n")
    if args.refresh:
        state = refreshed(state, args.api_url, args.allow_insecure_http, switch_api=args.switch_api)
    options = PlanOptions(replace=frozenset(args.replace), prune=args.prune)
    check_replace_names(args.replace, {m.name for m in manifests})
    plan = make_plan(manifests, state, options, scope)
    checked = guard.budget(plan, policy)
    if args.refresh and plan.to_submit:
        with make_client(args.api_url, allow_insecure_http=args.allow_insecure_http) as client:
            checked = guard.with_preflight(checked, plan, client)
    if fmt == "json":
        json.dump(
            {**plan_to_json(plan), **checked.json_fields(), **gate.json_fields()}, out, indent=2
        )
        out.write("\n")
    elif fmt in ("markdown", "github"):
        from reconciler.views.plan_output import write_plan

        write_plan(plan, fmt, out, warnings=warnings)
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
    if args.out_file and gate.action == "refused":
        # apply would refuse it: the plan was checked against the policy in force.
        err.write(
            f"The plan was not saved to {args.out_file}: {gate.shown_file}'s policy differs "
            f"from {gate.in_force_name} (see above); to make it the one in force, plan "
            "again with --policy-change and review the plan under it.\n"
        )
        return EXIT_ERROR
    if args.out_file:
        from reconciler import planfile

        planfile.save(
            args.out_file,
            plan,
            paths,
            whole=not args.paths,
            policy_sha256=gate.file_sha256,
            policy_change=gate.action == "change",
        )
        if fmt in ("text", "github"):
            out.write(
                f"\nSaved the plan to {args.out_file}. Apply exactly it with: "
                f"dfr apply {args.out_file}\n"
            )
    if args.detailed_exitcode and (plan.has_changes or gate.action == "change"):
        return EXIT_CHANGES
    return EXIT_OK


def prune_refusal(plan: Any) -> str | None:
    """Why --prune must not go ahead: orphans whose manifest file was skipped, not gone."""
    if not plan.prune_refused:
        return None
    return (
        "refusing to prune: " + ", ".join(plan.prune_refused) + " came from manifest files "
        "that still exist but were skipped as not manifests (see the warnings); fix them, "
        "or forget a run on purpose with `dfr state rm NAME`"
    )


def scope_of(manifests: Sequence[Any], paths: Sequence[str], *, named: bool) -> Any:
    """The plan's scope for manifests loaded another way (the annotated loader)."""
    from reconciler.commands.common import project_relative
    from reconciler.plan import Scope
    from reconciler.project import current

    root = current().root()
    return Scope(
        roots=tuple(project_relative(p, root) for p in paths),
        whole=not named,
        sources={m.name: project_relative(m.file, root) for m in manifests},
    )


def check_replace_names(replace: Sequence[str], names: set[str]) -> None:
    from reconciler.errors import UsageError

    unknown = sorted(set(replace) - names)
    if unknown:
        raise UsageError(f"--replace names no manifest: {', '.join(unknown)}")
