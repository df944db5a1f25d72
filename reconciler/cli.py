"""The `dfr` command line: parse, wire the objects, call the core, map to an exit code.

Commands are thin. Each returns an exit code; `run` is the one place that turns
expected errors (`DfrError`) into a one-line message and exit 1, Ctrl-C into
130, and anything unexpected into a short "internal error" line: no traceback
reaches a user unless they ask for it with DFR_DEBUG=1.

Heavy modules (jsonschema, httpx, deepdiff) are imported inside the commands
that need them, so `dfr --version` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

import click

from reconciler import __version__
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DfrError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _err() -> TextIO:
    return click.get_text_stream("stderr")


def _out() -> TextIO:
    return click.get_text_stream("stdout")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "--version", "-V", prog_name="dfr", message="%(prog)s %(version)s")
def cli() -> None:
    """Config-as-code for Dataframer generation runs.

    Describe runs in YAML manifests, review what would change with `dfr plan`,
    submit with `dfr apply`; every run id and final status is recorded in a state file.
    """


def _format_option(*formats: str) -> Any:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats)),
        default="text",
        show_default=True,
        help="Output format.",
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_format_option("text", "json", "github")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--skip-non-manifests",
    is_flag=True,
    help="Skip documents of named files that are not manifests, as in directories "
    "(for hooks that pass every YAML file).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
def validate(
    paths: tuple[str, ...], fmt: str, as_json: bool, skip_non_manifests: bool, quiet: bool
) -> int:
    """Check manifests against the schema, without state or network.

    PATHS are files or directories (default: the current directory). Every
    problem in every file is reported as FILE:LINE:COL: error: MESSAGE.
    Exit 0 when valid (warnings allowed), 1 on any error.
    """
    from reconciler import diagnostics as diag
    from reconciler.validate import validate_paths

    result = validate_paths(paths or (".",), skip_non_manifests=skip_non_manifests)
    if as_json or fmt == "json":
        diag.write_json(result.to_json(), _out())
    elif fmt == "github":
        diag.write_github(result.diagnostics, _out())
    else:
        diag.write_text(result.diagnostics, _err())
        if not quiet or not result.ok:
            _err().write(_summary(result) + "\n")
    return EXIT_OK if result.ok else EXIT_ERROR


def _summary(result: Any) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    head = f"{n(len(result.manifests), 'manifest')} in {n(result.files, 'file')}"
    if result.ok:
        tail = f", {n(result.warnings, 'warning')}" if result.warnings else ""
        return f"{head}: valid{tail}."
    return f"{head}: {n(result.errors, 'error')}, {n(result.warnings, 'warning')}."


@cli.command()
@click.option("--state-schema", is_flag=True, help="Print the state file's schema instead.")
def schema(state_schema: bool) -> int:
    """Print the manifest JSON Schema (for editors and other tools)."""
    from reconciler.schema import schema_text

    _out().write(schema_text("state.schema.json" if state_schema else "generation-run.schema.json"))
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    """Run `dfr` and return its exit code; the only place errors become messages."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="dfr",
                      standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        return int(exc.exit_code)
    except click.UsageError as exc:
        # Exit 1, not click's 2: 2 means "changes present" for plan --detailed-exitcode.
        exc.show(_err())
        return EXIT_ERROR
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _err().write("interrupted\n")
            return EXIT_INTERRUPTED
        _err().write("aborted\n")
        return EXIT_ERROR
    except click.ClickException as exc:
        exc.show(_err())
        return EXIT_ERROR
    except DfrError as exc:
        _err().write(f"error: {exc.message}\n")
        if exc.hint:
            _err().write(f"hint: {exc.hint}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        _err().write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `dfr plan | head`); nothing more to say.
        _silence_stdout()
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("DFR_DEBUG"):
            raise
        _err().write(
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in dfr; please report it with the command you ran. "
            "Set DFR_DEBUG=1 to see the traceback.\n"
        )
        return EXIT_ERROR
    return int(rv) if isinstance(rv, int) else EXIT_OK


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(argv))
