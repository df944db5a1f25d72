"""`dfr plan`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import change_options, err, format_option, invocation, out

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@change_options
@click.option("--refresh", is_flag=True, help="Ask the API for unfinished runs' statuses first.")
@click.option("--replace", multiple=True, metavar="NAME", help="Plan to resubmit this run.")
@click.option("--prune", is_flag=True, help="Plan to cancel and forget runs with no manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.",
)
@click.option(
    "--out", "out_file", metavar="PLANFILE", help="Save the plan for `dfr apply PLANFILE`."
)
@format_option("text", "json", "markdown", "github", "auto")
@click.option(
    "--summary-file",
    metavar="FILE",
    help='Also write {"create": N, "update": N, "delete": N} for GitLab\'s merge-request '
    "widget (artifacts: reports: terraform).",
)
@invocation()
def plan(inv: Invocation, **options: Any) -> int:
    """Show what `dfr apply` would submit, without changing anything.

    Offline unless --refresh: manifests under PATHS (default: the current
    directory) are compared with the state file. --format markdown writes a
    pull-request comment; github adds annotations (auto: github inside GitHub
    Actions, else text).
    """
    from reconciler.commands import plan as command
    from reconciler.views import resolve_format

    # The options' names are PlanArgs' fields; --json is --format json.
    fmt = options.pop("fmt")
    fmt = "json" if options["as_json"] else resolve_format(fmt)
    return command.run(inv, command.PlanArgs(fmt=fmt, **options), out(), err())


COMMANDS = (plan,)
