"""`dfr pull`."""

from __future__ import annotations

import click

from reconciler.cli.options import (
    err,
    invocation,
    no_progress_option,
    out,
    parallelism_option,
    session_options,
)
from reconciler.invocation import Invocation


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME...]")
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="Read the manifests here (repeatable; default: dfr.yaml's manifests, else the "
    "current folder).",
)
@session_options
@parallelism_option("Downloads at once (default: parallelism in dfr.yaml, else 10).")
@click.option(
    "--check",
    is_flag=True,
    help="Download nothing: exit 1 when an output folder differs from what state recorded, "
    "naming each differing file (for CI).",
)
@no_progress_option("No live display on a terminal: one line per run, as in CI (also NO_COLOR).")
@invocation()
def pull(
    inv: Invocation,
    names: tuple[str, ...],
    paths: tuple[str, ...],
    switch_api: bool,
    check: bool,
    no_progress: bool,
) -> int:
    """Download SUCCEEDED runs' files into their manifests' outputs.path, verified.

    Each run's files are checked against the API's sizes (and checksums), then
    swapped in together: a reader never sees half a dataset. Each file's path,
    size and sha256 are recorded in state. An interrupted pull goes on where it
    stopped, without downloading verified files again.
    """
    from reconciler.commands.pull import PullArgs, run

    args = PullArgs(
        names=names,
        paths=paths,
        check=check,
        progress=False if no_progress else None,
        switch_api=switch_api,
    )
    return run(inv, args, out(), err())


COMMANDS = (pull,)
