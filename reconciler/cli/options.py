"""The options commands share, and the one place an `Invocation` is built.

Shared options (state, api, lock, config) are plain click options on each
command; `invocation()` takes them out of the command's arguments and builds
the `Invocation` the command receives: a value given on the command line is a
flag, one click read from its environment variable is left to
`Invocation.build`, which resolves flag > environment > dfr.yaml > default.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

import click

if TYPE_CHECKING:
    from reconciler.invocation import Invocation

F = TypeVar("F", bound=Callable[..., Any])


def out() -> TextIO:
    return cast(TextIO, sys.stdout)


def err() -> TextIO:
    return cast(TextIO, sys.stderr)


def format_option(*formats: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats)),
        default="text",
        show_default=True,
        help="Output format.",
    )


def config_options(f: F) -> F:
    f = click.option(
        "--jobs",
        type=click.IntRange(min=1),
        envvar="DFR_JOBS",
        metavar="N",
        help="Processes that parse and check manifest files when at least 1,000 are not "
        "in the cache (env DFR_JOBS; default: the CPU count; 1: this process only).",
    )(f)
    f = click.option(
        "--no-cache",
        is_flag=True,
        help="Parse and check every manifest file again instead of using the cache of "
        "unchanged files (env DFR_NO_CACHE=1; cache in $XDG_CACHE_HOME/dfr or DFR_CACHE_DIR).",
    )(f)
    return click.option(
        "--config",
        metavar="FILE",
        help="Project file (env DFR_CONFIG; default: dfr.yaml in the current directory or "
        "the nearest parent up to the git root).",
    )(f)


def state_options(f: F) -> F:
    f = config_options(f)
    f = click.option(
        "--workspace",
        envvar="DFR_WORKSPACE",
        metavar="NAME",
        help="Workspace in a postgres backend: one state per name (env DFR_WORKSPACE; "
        "default 'default').",
    )(f)
    f = click.option(
        "--backend",
        envvar="DFR_BACKEND",
        metavar="URL",
        help="Where state lives: postgresql://USER@HOST:PORT/DB for a shared database, or a "
        "state file (env DFR_BACKEND; default: the --state file).",
    )(f)
    return click.option(
        "--state",
        envvar="DFR_STATE",
        metavar="FILE",
        help="State file (env DFR_STATE; default dfr.state.json in the current directory).",
    )(f)


def api_options(f: F) -> F:
    f = click.option(
        "--max-rps",
        type=click.FloatRange(min=0, min_open=True),
        envvar="DFR_MAX_RPS",
        metavar="N",
        help="Send at most N API requests per second, evenly spaced (env DFR_MAX_RPS; "
        "default: max_rps in dfr.yaml). Without it, the first 429 sets the pace from what "
        "the API accepted.",
    )(f)
    f = click.option(
        "--api-key-file",
        metavar="FILE",
        help="Read the API key from FILE (e.g. a mounted CI secret) instead of DATAFRAMER_API_KEY.",
    )(f)
    f = click.option(
        "--allow-insecure-http",
        is_flag=True,
        help="Allow sending the API key over plain http:// to a host that is not loopback.",
    )(f)
    return click.option(
        "--api-url",
        envvar="DATAFRAMER_BASE_URL",
        metavar="URL",
        help="Dataframer API base URL (env DATAFRAMER_BASE_URL; default "
        "https://df-api.dataframer.ai). The key is read from DATAFRAMER_API_KEY.",
    )(f)


def lock_option(f: F) -> F:
    return click.option(
        "--lock-timeout",
        default="0",
        metavar="DURATION",
        show_default=True,
        help="How long to wait for another process's lock on the state (e.g. 30s, 5m).",
    )(f)


switch_api_option = click.option(
    "--switch-api",
    is_flag=True,
    help="The state's runs belong to another API URL than this one, and that is meant "
    "(the service moved): record them as this API's instead of refusing.",
)

policy_change_option = click.option(
    "--policy-change",
    is_flag=True,
    help="This command's dfr.yaml policy differs from the one in force for the state, "
    "and that is meant: plan under it, and apply records it in state.",
)


def session_options(f: F) -> F:
    """The options of the commands that bring the state in line with the API (pull,
    refresh): the state, the API, --switch-api and --lock-timeout."""
    return state_options(api_options(switch_api_option(lock_option(f))))


def parallelism_option(help: str) -> Callable[[F], F]:
    return click.option("--parallelism", type=click.IntRange(1, 256), default=None, help=help)


def no_progress_option(help: str) -> Callable[[F], F]:
    return click.option("--no-progress", is_flag=True, help=help)


def change_options(f: F) -> F:
    """The options of the commands that plan changes (plan, apply): the state, the API,
    --switch-api and --policy-change."""
    return state_options(api_options(switch_api_option(policy_change_option(f))))


def invocation(*, project: str = "strict") -> Callable[[F], F]:
    """Build the command's `Invocation` from its shared options and pass it first.

    `project`: "strict" reads dfr.yaml and stops on its errors (reported on stderr),
    "lenient" reads it and leaves its problems to the command (`validate`, the
    pre-commit hook), "none" does not read it (init, fmt, schema, emulator).
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            return command(build(kwargs, project), **kwargs)

        return cast(F, wrapper)

    return decorate


def build(kwargs: dict[str, Any], project: str) -> Invocation:
    """Pop the shared options out of `kwargs` (a command's arguments) into an Invocation."""
    import dataclasses

    from reconciler.invocation import OPTION_VARIABLES, Flags, Invocation

    ctx = click.get_current_context()
    # A variable counts only for a command that has its option (`dfr validate` never
    # looked at DFR_MAX_RPS, and must not start refusing a bad one).
    unread = {var for name, var in OPTION_VARIABLES.items() if name not in kwargs}
    environ = {k: v for k, v in os.environ.items() if k not in unread}
    given: dict[str, Any] = {}
    for field in dataclasses.fields(Flags):
        if field.name not in kwargs:
            continue
        value = kwargs.pop(field.name)
        if ctx.get_parameter_source(field.name) != click.core.ParameterSource.ENVIRONMENT:
            given[field.name] = value  # from the environment: Invocation.build reads it
    flags = Flags(**given)
    loaded = None
    if project != "none":
        from reconciler.project import discover, require

        loaded = discover(flags.config)
        if project == "strict":
            require(loaded, err())
    return Invocation.build(flags, environ, loaded)
