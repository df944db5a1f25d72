"""The `dfr` command line: parse, build the Invocation, call the command, map to an exit code.

Commands are thin: each builds its args dataclass and calls `run(inv, args, out,
err)` of its module in `reconciler.commands`. `run` here is the one place that
turns expected errors (`DfrError`) into a one-line message and exit 1, Ctrl-C into
130, and anything unexpected into a short "internal error" line: no traceback
reaches a user unless they ask for it with DFR_DEBUG=1.

click is imported in this package only. Heavy modules (jsonschema, httpx) are
imported inside the commands that need them, so `dfr --version` stays fast.

    __init__.py    the group, `run`, `main`
    options.py     shared options (state, api, lock, format, config) and the Invocation
    validate.py    validate, schema, pre-commit
    plan.py        plan
    apply.py       apply
    state.py       refresh, status, state list|show|rm|mv|migrate, force-unlock
    run_import.py  import
    pull.py        pull
    tools.py       init, diff, fmt
    emulator.py    emulator (its options generated from EmulatorConfig), demo
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from reconciler import __version__
from reconciler.cli.options import err as _err
from reconciler.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, DfrError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(
    __version__, "--version", "-V", prog_name="dfr", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Config-as-code for Dataframer generation runs.

    Describe runs in YAML manifests, review what would change with `dfr plan`,
    submit with `dfr apply`; every run id and final status is recorded in a state file.
    """


def _register() -> None:
    import importlib

    for name in ("validate", "plan", "apply", "state", "run_import", "tools", "emulator", "pull"):
        for command in importlib.import_module(f"reconciler.cli.{name}").COMMANDS:
            cli.add_command(command)


_register()


def run(argv: Sequence[str] | None = None) -> int:
    """Run `dfr` and return its exit code; the only place errors become messages."""
    try:
        rv = cli.main(
            args=list(argv) if argv is not None else None, prog_name="dfr", standalone_mode=False
        )
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
        # Messages quote paths, names and API text: one line each, never a CI command.
        from reconciler.textsafe import one_line

        _err().write(f"error: {one_line(exc.message)}\n")
        if exc.hint:
            _err().write(f"hint: {one_line(exc.hint)}\n")
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
        from reconciler.textsafe import one_line

        _err().write(
            f"internal error: {type(exc).__name__}: {one_line(exc)}\n"
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
