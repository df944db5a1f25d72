"""`dfr refresh`, `dfr status`, `dfr state list|show|rm|mv|migrate`, `dfr force-unlock`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.options import (
    err,
    invocation,
    lock_option,
    out,
    session_options,
    state_options,
)

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command()
@session_options
@click.option(
    "--confirm-gone",
    is_flag=True,
    help="When every run asked for answers 404, record them as gone (they were deleted) "
    "instead of suspecting the API URL or key.",
)
@invocation()
def refresh(inv: Invocation, switch_api: bool, confirm_gone: bool) -> int:
    """Ask the API for every unfinished run in state and record its status."""
    from reconciler.commands.state import RefreshArgs, run_refresh

    return run_refresh(inv, RefreshArgs(switch_api, confirm_gone), out(), err())


def _labels(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for label in value:
        if "=" not in label or not label.split("=", 1)[0]:
            raise click.BadParameter(f"{label!r}: use KEY=VALUE", param_hint="--label")
    return value


@click.command()
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "-l",
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_labels,
    help="Only runs with this label (repeatable).",
)
@click.option(
    "--sort",
    type=click.Choice(["name", "status", "cost", "age"]),
    default="name",
    show_default=True,
    help="Row order: status puts problems first, cost the highest, age the oldest.",
)
@click.option(
    "--long",
    "long_",
    is_flag=True,
    help="Also each run's fields: as dfr sent them and as the API reports it used them.",
)
@invocation()
def status(inv: Invocation, as_json: bool, labels: tuple[str, ...], sort: str, long_: bool) -> int:
    """Show recorded runs: name, run id, status, samples, cost, age (offline).

    Totals follow the table; a FAILED run shows what the API says of it and the
    command that resubmits it. --long adds each run's fields as sent and as used.
    """
    from reconciler.commands.state import StatusArgs, run_status

    return run_status(inv, StatusArgs(as_json, labels, sort, long_), out(), err())


@click.group("state")
def state_group() -> None:
    """Read or edit the state."""


@state_group.command("list")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@invocation()
def state_list(inv: Invocation, as_json: bool) -> int:
    """List recorded names with run id and status, then specs as spec/NAME."""
    from reconciler.commands.state import StateListArgs, run_state_list

    return run_state_list(inv, StateListArgs(as_json), out(), err())


@state_group.command("show")
@click.argument("name")
@state_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@invocation()
def state_show(inv: Invocation, name: str, as_json: bool) -> int:
    """Show everything recorded for NAME (a run) or spec/NAME (a spec)."""
    from reconciler.commands.state import StateShowArgs, run_state_show

    return run_state_show(inv, StateShowArgs(name, as_json), out(), err())


@state_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@state_options
@lock_option
@click.option(
    "--force",
    is_flag=True,
    help="Also forget an unconfirmed submission (a run its lost answer made is then "
    "never looked for; `dfr refresh` finds it first).",
)
@invocation()
def state_rm(inv: Invocation, names: tuple[str, ...], force: bool) -> int:
    """Forget NAMES: runs' records, or specs' as spec/NAME (the runs and specs
    themselves are not touched)."""
    from reconciler.commands.state import StateRmArgs, run_state_rm

    return run_state_rm(inv, StateRmArgs(names, force), out(), err())


@state_group.command("mv")
@click.argument("old")
@click.argument("new")
@state_options
@lock_option
@invocation()
def state_mv(inv: Invocation, old: str, new: str) -> int:
    """Rename OLD's record to NEW: a renamed manifest keeps its run (nothing else changes)."""
    from reconciler.commands.state import StateMvArgs, run_state_mv

    return run_state_mv(inv, StateMvArgs(old, new), out(), err())


@state_group.command("migrate")
@state_options
@lock_option
@click.option(
    "--to",
    "destination",
    required=True,
    metavar="URL|FILE",
    help="Where the state goes: postgresql://USER@HOST:PORT/DB or a state file.",
)
@click.option(
    "--to-workspace",
    metavar="NAME",
    help="Workspace in the destination database (default: the source's workspace, or 'default').",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a destination that holds another state or a newer serial; migrate a "
    "source that was already moved elsewhere.",
)
@invocation()
def state_migrate(inv: Invocation, destination: str, to_workspace: str | None, force: bool) -> int:
    """Copy the state (every run, intents, lineage, serial) to another backend.

    Both sides stay locked during the copy, the destination is read back and
    compared; the source keeps its records and is marked as moved, so every
    later command on it refuses, naming the destination (migrating back clears
    the mark). Refused when the destination holds another state or a newer one,
    unless --force. File to database:
    `dfr state migrate --state dfr.state.json --to postgresql://...`; back:
    `dfr state migrate --backend postgresql://... --to dfr.state.json`.
    """
    from reconciler.commands.migrate import MigrateArgs, run_migrate

    return run_migrate(inv, MigrateArgs(destination, to_workspace, force), out(), err())


@click.command("force-unlock")
@click.argument("lock_id")
@state_options
@invocation()
def force_unlock(inv: Invocation, lock_id: str) -> int:
    """Remove a stale lock left by a process that is gone (LOCK_ID from the error)."""
    from reconciler.commands.state import ForceUnlockArgs, run_force_unlock

    return run_force_unlock(inv, ForceUnlockArgs(lock_id), out(), err())


COMMANDS = (refresh, status, state_group, force_unlock)
