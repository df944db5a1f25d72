"""`dfr apply`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import (
    change_options,
    err,
    invocation,
    lock_option,
    no_progress_option,
    out,
    parallelism_option,
)

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@change_options
@lock_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@parallelism_option(
    "Concurrent API calls while submitting (default: parallelism in dfr.yaml, else 10)."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for final statuses after submitting.",
)
@click.option(
    "--timeout",
    default=None,
    metavar="DURATION",
    help="Stop waiting after this long (e.g. 30m, 2h); the runs go on.",
)
@click.option(
    "--poll-interval",
    default=None,
    metavar="DURATION",
    help="Longest pause between status checks while waiting (default: poll_interval in "
    "dfr.yaml, else 30s).",
)
@click.option("--replace", multiple=True, metavar="NAME", help="Resubmit this run.")
@click.option(
    "--prune",
    is_flag=True,
    help="Cancel unfinished runs whose manifest is gone and forget them "
    "(generated data is never deleted).",
)
@click.option(
    "--pull",
    is_flag=True,
    help="Then download SUCCEEDED runs' files into their outputs.path, verified (dfr pull).",
)
@no_progress_option(
    "No live display on a terminal: plain progress lines, as in CI (also NO_COLOR)."
)
@invocation()
def apply(inv: Invocation, **options: Any) -> int:
    """Submit what the manifests ask for, record each run id, wait for final statuses.

    PATHS are manifest files or directories (default: the current directory),
    or a single PLANFILE saved by `dfr plan --out`. Exit 0 when every desired
    run SUCCEEDED (with --no-wait: was submitted), 1 otherwise, 130 on Ctrl-C
    and 143 on SIGTERM (state is saved; run apply again to resume).
    """
    from reconciler.commands import apply as command

    # The options' names are ApplyArgs' fields.
    args = command.ApplyArgs(interactive=sys.stdin.isatty(), **options)
    return command.run(inv, args, out(), err())


COMMANDS = (apply,)
