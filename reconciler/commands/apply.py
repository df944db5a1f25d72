"""`dfr apply`: plan under the lock, confirm, execute, report."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from reconciler.engine.pipeline import prune_refusal
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    StateError,
    UsageError,
)
from reconciler.render import render_apply_report, render_plan
from reconciler.state.backend import Store
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.apply import ApplyReport
    from reconciler.engine import Loaded, Prepared, Session
    from reconciler.invocation import Invocation
    from reconciler.plan import Plan, PlanOptions
    from reconciler.planfile import SavedPlan
    from reconciler.project import Project


@dataclass(frozen=True, slots=True)
class ApplyArgs:
    paths: tuple[str, ...] = ()
    auto_approve: bool = False
    interactive: bool = False  # a terminal to ask for the confirmation on
    wait: bool = True
    replace: tuple[str, ...] = ()
    prune: bool = False
    no_progress: bool = False  # plain progress lines even on a terminal
    switch_api: bool = False  # the state's runs belong to another API URL, and that is meant
    policy_change: bool = False  # make dfr.yaml's policy the one in force for the state
    pull: bool = False  # then pull SUCCEEDED runs' files into their outputs.path (dfr pull)


@contextmanager
def _stop_on_signals(stop: Callable[[], None]) -> Iterator[list[int]]:
    """Ctrl-C (SIGINT) and SIGTERM (CI cancelling a job) stop apply at a safe point.

    The first signal only asks the applier to stop (`stop()`): the requests in
    flight finish and record their ids, and the state is checkpointed. Raising
    KeyboardInterrupt from the handler instead would land at any bytecode,
    e.g. inside a state write, which then poisons the session and skips the
    final checkpoint. A second signal raises KeyboardInterrupt: stop now.
    """
    received: list[int] = []

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if len(received) > 1:
            raise KeyboardInterrupt
        stop()

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread (tests driving run() from a thread)
        pass
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def run(
    inv: Invocation,
    args: ApplyArgs,
    out: TextIO,
    err: TextIO,
    confirm: Callable[[], bool] | None = None,
) -> int:
    """`dfr apply`; `confirm` asks the user (default: `ask_yes` on the terminal)."""
    from reconciler.engine import session
    from reconciler.engine.loading import load

    saved, paths, options = _saved_plan(args)
    project = inv.project  # the policy at apply time, for saved plans too
    # A saved plan reads the PATHs it was made from, with the scope it had. The
    # manifests are checked against dfr.yaml's policy: apply goes ahead only when
    # it is the one in force for the state, or becomes it (guard.PolicyGate).
    loaded = load(
        inv, paths, out, err, whole=None if saved is None else saved.whole, replace=args.replace
    )
    with session(inv, "apply") as s:
        prepared = _prepare(args, s, project, loaded, options, saved, out, err)
        plan = prepared.plan
        policy_changes = prepared.gate.action == "change"
        if (plan.has_changes or policy_changes) and saved is None and not args.auto_approve:
            if not args.interactive:
                raise UsageError(
                    "apply needs a confirmation and there is no terminal to ask on: review "
                    "`dfr plan`, then run `dfr apply --auto-approve` (or apply a saved plan)"
                )
            if not (confirm or ask_yes)():
                out.write("Apply canceled; nothing was submitted.\n")
                return EXIT_ERROR
        plan = _record_policy(prepared, s.store, err)
        gap = prepared.gate.effective.max_distribution_gap  # checked at the end of apply
        report, signals = _execute(inv, args, s, plan, prepared.checked.blocked, err, gap)
        out.write(render_apply_report(report, state_name=s.backend.describe()))
        if report.interrupted:
            return EXIT_TERMINATED if signal.SIGTERM in signals else EXIT_INTERRUPTED
        pulled = _pull_after(inv, args, s, loaded, out, err)
    return EXIT_OK if report.ok and pulled == EXIT_OK else (pulled or EXIT_ERROR)


def _pull_after(
    inv: Invocation, args: ApplyArgs, s: Session, loaded: Loaded, out: TextIO, err: TextIO
) -> int:
    """`apply --pull`: the files of the SUCCEEDED runs with `outputs:` (reconciler.outputs)."""
    if not args.pull:
        return EXIT_OK
    from reconciler.commands.pull import PullArgs, pull_into_folders, selected

    manifests = selected(loaded.manifests, ())
    if not manifests:
        return EXIT_OK
    pull_args = PullArgs(progress=False if args.no_progress else None)
    return pull_into_folders(inv, s, manifests, pull_args, out, err)


def _saved_plan(args: ApplyArgs) -> tuple[SavedPlan | None, tuple[str, ...], PlanOptions]:
    """`dfr apply PLANFILE`: the saved plan, the paths it was made from, its options."""
    from reconciler import planfile
    from reconciler.plan import PlanOptions

    options = PlanOptions(replace=frozenset(args.replace), prune=args.prune)
    paths = args.paths
    if "" in paths:  # `dfr apply "$PLANFILE"` with the variable unset or empty
        raise UsageError("an empty PATH was given: name the manifests or the saved plan to apply")
    if not (len(paths) == 1 and planfile.is_meant_as_plan(paths[0])):
        plans = [p for p in paths if planfile.is_saved_plan(p)]
        if plans:
            raise UsageError(
                f"{one_line(plans[0])} is a saved plan: `dfr apply PLANFILE` takes no other "
                "PATH (the plan names the manifests it was made from)"
            )
        return None, paths, options
    if args.replace or args.prune:
        raise UsageError("--replace and --prune belong to `dfr plan` when applying a saved plan")
    saved = planfile.load(paths[0])
    paths = tuple(p if os.path.isabs(p) else os.path.join(saved.cwd, p) for p in saved.paths)
    if os.path.realpath(saved.cwd) == os.path.realpath(os.getcwd()):
        paths = saved.paths
    return saved, paths, saved.options


def _prepare(
    args: ApplyArgs,
    s: Session,
    project: Project,
    loaded: Loaded,
    options: PlanOptions,
    saved: SavedPlan | None,
    out: TextIO,
    err: TextIO,
) -> Prepared:
    """Under the lock: the plan, shown; every refusal before the preflight's requests."""
    from reconciler import planfile
    from reconciler.engine import prepare_plan
    from reconciler.engine.client import check_api
    from reconciler.engine.guard import policy_gate, refuse_over_budget
    from reconciler.plan import Action

    check_api(s.store.state, s.client, switch=args.switch_api, store=s.store)
    outputs_root = project.root() if args.pull else None  # --pull: the plan shows pulls
    # Under the lock: the policy in force is the one recorded in state now.
    gate = policy_gate(
        project,
        s.store.state.policy,
        s.backend.describe(),
        change=args.policy_change or (saved is not None and saved.policy_change),
    )
    if saved is not None:
        _before_saved(saved, s, args.paths[0])
    prepared = prepare_plan(
        loaded, s.store.state, gate, options, policy=project.policy, outputs_root=outputs_root
    )
    plan = prepared.plan
    if saved is not None:
        planfile.check_plan(saved, plan, args.paths[0])
    if (
        options.prune
        and not loaded.manifests
        and (plan.by_action(Action.ORPHAN) or plan.out_of_scope)
    ):
        raise UsageError(
            "refusing to prune: no manifests were found, so every run in state would be "
            "canceled and forgotten. Check the path; to forget runs on purpose, use "
            "`dfr state rm NAME...`"
        )
    line = gate.line()
    out.write((line + "\n\n" if line else "") + prepared.checked.annotate(render_plan(plan)))
    out.flush()
    refused = prune_refusal(plan)
    if refused:
        raise UsageError(refused + "; nothing was done")
    policy_refusal = gate.refusal()
    if policy_refusal is not None:
        raise policy_refusal
    refuse_over_budget(prepared.checked)  # before any request
    if saved is not None:
        planfile.check_policy(saved, gate.file_sha256, gate.shown_file, args.paths[0])
    prepared = prepared.preflighted(s.client)
    if plan.to_submit:
        prepared.checked.report(err)
    return prepared


def _before_saved(saved: SavedPlan, s: Session, path: str) -> None:
    """A saved plan's state, under the lock: the one it was made for, unchanged since.
    A plan made with --refresh showed the API's statuses: they are recorded first,
    so that re-planning sees what the reviewer saw (or refuses when they moved)."""
    from reconciler import planfile

    state = s.store.state
    planfile.check_state(saved, state.lineage, state.serial, path, s.backend.address())
    if saved.refresh:
        from reconciler.commands.plan import observe_unfinished

        observe_unfinished(s.client, s.store)


def _record_policy(prepared: Prepared, store: Store, err: TextIO) -> Plan:
    """Record the command's policy in state when the gate says so, before any submission."""
    gate, plan = prepared.gate, prepared.plan
    if gate.action not in ("record", "change"):
        return plan
    # Before anything is submitted: what this apply pays for is under it.
    from reconciler.state.backend import whoami

    record = gate.to_record(by=whoami())
    store.set_policy(record)
    err.write(gate.recorded_message(record) + "\n")
    err.flush()
    # That change is the only one since the plan (the lock is held), and a
    # policy changes no run: the plan stands, one serial on.
    return dataclasses.replace(plan, serial=store.state.serial)


def _execute(
    inv: Invocation,
    args: ApplyArgs,
    s: Session,
    plan: Plan,
    blocked: dict[str, str],
    err: TextIO,
    gap: float | None = None,
) -> tuple[ApplyReport, list[int]]:
    """Submit and wait, with the live progress; Ctrl-C and SIGTERM stop at a safe point."""
    from reconciler.apply import Applier, ApplyOptions
    from reconciler.progress import make_progress

    progress = make_progress(plan, s.store.state.runs, err, no_progress=args.no_progress)
    applier = Applier(
        s.client,
        s.store,
        options=ApplyOptions(
            parallelism=inv.parallelism,
            wait=args.wait,
            timeout=inv.timeout,
            poll_max=inv.poll_interval,
            recovery_grace=recovery_grace(),
            max_distribution_gap=gap,
        ),
        say=progress.say,
        events=progress,
        blocked=blocked,
    )
    with _stop_on_signals(applier.interrupt) as signals, progress.showing():
        try:
            report = applier.run(plan)
        except StateError as exc:
            raise _state_failed(exc, s.store) from None
    return report, signals


def _state_failed(exc: StateError, store: Store) -> StateError:
    """A state write failed mid-apply (a lost database, a full disk): the first failure,
    and what it left unconfirmed, which the next apply resolves before submitting."""
    if store.failure is None:
        return exc  # not a failed write: the error as it is
    n = len(store.unconfirmed())
    left = (
        f"{n} submission{'s are' if n != 1 else ' is'} unconfirmed (sent, but the run id "
        "could not be recorded): the next `dfr apply` looks for their runs and adopts them "
        "before submitting anything (`dfr plan` counts them as to resolve)"
        if n
        else "every run id received was recorded; the next `dfr apply` goes on from there"
    )
    return StateError(store.failure, hint=f"apply stopped when the state failed; {left}")


def ask_yes() -> bool:
    sys.stderr.write("\nDo you want to perform these actions? Only 'yes' will be accepted.\n")
    sys.stderr.write("  Enter a value: ")
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip() == "yes"


def recovery_grace() -> float:
    """Seconds a lost submission is given before dfr concludes it created nothing.

    env DFR_RECOVERY_GRACE (a duration) shortens it, e.g. for tests against an
    emulator that never finishes a POST late.
    """
    from reconciler.durations import parse_duration
    from reconciler.recovery import DEFAULT_GRACE_SECONDS

    text = os.environ.get("DFR_RECOVERY_GRACE")
    if text is None:
        return DEFAULT_GRACE_SECONDS
    return parse_duration(text, "DFR_RECOVERY_GRACE") or 0.0
