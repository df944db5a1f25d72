"""`dfr validate`, `dfr schema` and the hidden `dfr pre-commit`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli.options import config_options, err, format_option, invocation, out

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@click.command()
# readable=False: an unreadable path is a FILE:LINE:COL diagnostic among the
# others, not a usage error that stops the whole run.
@click.argument("paths", nargs=-1, type=click.Path(readable=False))
@format_option("text", "json", "github", "gitlab", "auto")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--skip-non-manifests",
    is_flag=True,
    help="Skip documents of named files that are not manifests, as in directories "
    "(for hooks that pass every YAML file).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@config_options
@invocation(project="lenient")
def validate(
    inv: Invocation,
    paths: tuple[str, ...],
    fmt: str,
    as_json: bool,
    skip_non_manifests: bool,
    quiet: bool,
) -> int:
    """Check manifests against the schema, without state or network.

    PATHS are files or directories (default: the current directory). Every
    problem in every file is reported as FILE:LINE:COL: error: MESSAGE.
    Exit 0 when valid (warnings allowed), 1 on any error. --format github:
    annotations (auto: github inside GitHub Actions, else text); gitlab: a Code
    Quality report on stdout.
    """
    from reconciler.commands.validate import ValidateArgs, run_validate
    from reconciler.views import resolve_format

    fmt = "json" if as_json else resolve_format(fmt)
    args = ValidateArgs(paths, fmt, skip_non_manifests, quiet)
    return run_validate(inv, args, out(), err())


@click.command()
@click.option("--state-schema", is_flag=True, help="Print the state file's schema instead.")
@click.option("--project-schema", is_flag=True, help="Print dfr.yaml's schema instead.")
@click.option("--spec-schema", is_flag=True, help="Print the kind: Spec manifests' schema instead.")
@invocation(project="none")
def schema(inv: Invocation, state_schema: bool, project_schema: bool, spec_schema: bool) -> int:
    """Print the manifest JSON Schema (for editors and other tools)."""
    from reconciler.commands.validate import SchemaArgs, run_schema

    return run_schema(inv, SchemaArgs(state_schema, project_schema, spec_schema), out(), err())


@click.command("pre-commit", hidden=True)
@click.argument("files", nargs=-1, type=click.Path(readable=False))
@click.option(
    "--skip-non-manifests",
    is_flag=True,
    help="Skip documents of the files that are not manifests (for hooks that pass every "
    "YAML file).",
)
@invocation(project="lenient")
def pre_commit(inv: Invocation, files: tuple[str, ...], skip_non_manifests: bool) -> int:
    """Check FILES as a pre-commit hook: their findings, names across all manifests."""
    from reconciler.commands.precommit import HookArgs, run_hook

    return run_hook(inv, HookArgs(files, skip_non_manifests), out(), err())


COMMANDS = (validate, schema, pre_commit)
