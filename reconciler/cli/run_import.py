"""`dfr import NAME RUN_ID` (a run) and `dfr import spec NAME SPEC_ID` (a spec)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.options import api_options, err, invocation, lock_option, out, state_options

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command("import")
@click.argument("name")
@click.argument("run_id")
@click.argument("paths", nargs=-1, type=click.Path())
@state_options
@api_options
@lock_option
@click.option(
    "--force",
    is_flag=True,
    help="Adopt the run even where it differs from the manifest; the next plan shows "
    "the difference (as a replace).",
)
@invocation()
def import_(inv: Invocation, name: str, run_id: str, paths: tuple[str, ...], force: bool) -> int:
    """Adopt the existing run RUN_ID for manifest NAME (found under PATHS).

    The run must exist and answer the manifest's spec (fields the manifest
    leaves out match anything); what differs is shown, and --force adopts it
    anyway.

    `dfr import spec NAME SPEC_ID` adopts a spec made by hand instead: it is
    read with its versions and recorded under NAME, its unique name. (A run
    named "spec" is still imported with `dfr import spec RUN_ID [PATHS]`.)
    """
    from reconciler.commands.import_spec import ImportSpecArgs, is_spec_import, run_import_spec

    if is_spec_import(name, run_id, paths):
        return run_import_spec(inv, ImportSpecArgs(run_id, paths[0], paths[1:]), out(), err())
    from reconciler.commands.import_ import ImportArgs, run_import

    return run_import(inv, ImportArgs(name, run_id, paths, force), out(), err())


COMMANDS = (import_,)
