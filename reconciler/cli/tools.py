"""`dfr init`, `dfr diff`, `dfr fmt`: helpers around the manifests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.options import err, invocation, out, state_options

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@invocation(project="none")
def init(inv: Invocation, directory: str) -> int:
    """Write a starter manifest (with the schema modeline) under DIRECTORY/dataframer/.

    Never overwrites a file. Prints the .pre-commit-config.yaml snippet that
    checks manifests before each commit.
    """
    from reconciler.commands.init import InitArgs, run_init

    return run_init(inv, InitArgs(directory), out(), err())


@click.command()
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path())
@state_options
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when something differs (0 when not)."
)
@invocation()
def diff(inv: Invocation, name: str, paths: tuple[str, ...], detailed_exitcode: bool) -> int:
    """Show what differs between manifest NAME (under PATHS) and its recorded run (offline)."""
    from reconciler.commands.diff import DiffArgs, run_diff

    return run_diff(inv, DiffArgs(name, paths, detailed_exitcode), out(), err())


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--check", is_flag=True, help="Change nothing; exit 1 listing files that would change."
)
@click.option(
    "--diff",
    is_flag=True,
    help="Print each change as a unified diff, as terraform fmt -diff does (the files are "
    "rewritten too; with --check only printed).",
)
@invocation(project="none")
def fmt(inv: Invocation, paths: tuple[str, ...], check: bool, diff: bool) -> int:
    """Rewrite manifests in the canonical key order, keeping comments and layout.

    apiVersion, kind, metadata (name, labels), spec (spec_id, spec_version, then
    the schema's order). Only whole lines move. Files already in that order,
    read-only files and files that do not parse are not touched.
    """
    from reconciler.commands.fmt import FmtArgs, run_fmt

    return run_fmt(inv, FmtArgs(paths, check, diff), out(), err())


COMMANDS = (init, diff, fmt)
