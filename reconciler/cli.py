"""The `dfr` command line: parse, wire the objects, call the core, map to an exit code.

Commands are thin. Each returns an exit code; `run` is the one place that turns
expected errors (`DfrError`) into a one-line message and exit 1, Ctrl-C into
130, and anything unexpected into a short "internal error" line: no traceback
reaches a user unless they ask for it with DFR_DEBUG=1.

Heavy modules (jsonschema, httpx) are imported inside the commands
that need them, so `dfr --version` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO, TypeVar, cast

import click

from reconciler import __version__
from reconciler.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    DfrError,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


F = TypeVar("F", bound=Callable[..., Any])


def _err() -> TextIO:
    return cast(TextIO, sys.stderr)


def _out() -> TextIO:
    return cast(TextIO, sys.stdout)


@click.group(context_settings=CONTEXT)
@click.version_option(
    __version__, "--version", "-V", prog_name="dfr", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Config-as-code for Dataframer generation runs.

    Describe runs in YAML manifests, review what would change with `dfr plan`,
    submit with `dfr apply`; every run id and final status is recorded in a state file.
    """


def _format_option(*formats: str) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats)),
        default="text",
        show_default=True,
        help="Output format.",
    )


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    """A click callback that keeps an option's value in `ctx.meta[key]` when it is given.

    Readers: "dfr.config" reconciler.project.current(); "dfr.no_cache"
    reconciler.vcache.from_cli(); "dfr.jobs" reconciler.validate.jobs_from_cli();
    "dfr.api_key_file" and "dfr.max_rps" engine.client.make_client (so `plan`
    without --refresh never opens the key file).
    """

    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            ctx.meta[key] = value

    return callback


def _config_option(f: Any) -> Any:
    f = click.option(
        "--jobs",
        type=click.IntRange(min=1),
        envvar="DFR_JOBS",
        metavar="N",
        expose_value=False,
        callback=_remember("dfr.jobs"),
        help="Processes that parse and check manifest files when at least 1,000 are not "
        "in the cache (env DFR_JOBS; default: the CPU count; 1: this process only).",
    )(f)
    f = click.option(
        "--no-cache",
        is_flag=True,
        expose_value=False,
        callback=_remember("dfr.no_cache"),
        help="Parse and check every manifest file again instead of using the cache of "
        "unchanged files (env DFR_NO_CACHE=1; cache in $XDG_CACHE_HOME/dfr or DFR_CACHE_DIR).",
    )(f)
    return click.option(
        "--config",
        metavar="FILE",
        expose_value=False,
        callback=_remember("dfr.config"),
        help="Project file (env DFR_CONFIG; default: dfr.yaml in the current directory or "
        "the nearest parent up to the git root).",
    )(f)


@cli.command()
# readable=False: an unreadable path is a FILE:LINE:COL diagnostic among the
# others, not a usage error that stops the whole run.
@click.argument("paths", nargs=-1, type=click.Path(readable=False))
@_format_option("text", "json", "github", "gitlab", "auto")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--skip-non-manifests",
    is_flag=True,
    help="Skip documents of named files that are not manifests, as in directories "
    "(for hooks that pass every YAML file).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@_config_option
def validate(
    paths: tuple[str, ...], fmt: str, as_json: bool, skip_non_manifests: bool, quiet: bool
) -> int:
    """Check manifests against the schema, without state or network.

    PATHS are files or directories (default: the current directory). Every
    problem in every file is reported as FILE:LINE:COL: error: MESSAGE.
    Exit 0 when valid (warnings allowed), 1 on any error. --format github:
    annotations (auto: github inside GitHub Actions, else text); gitlab: a Code
    Quality report on stdout.
    """
    from reconciler import diagnostics as diag
    from reconciler.project import validate_with_project
    from reconciler.views import resolve_format

    result = validate_with_project(paths, skip_non_manifests=skip_non_manifests)
    fmt = resolve_format(fmt)
    if as_json or fmt == "json":
        diag.write_json(result.to_json(), _out())
    elif fmt == "github":
        from reconciler.views.github import write_diagnostics

        write_diagnostics(result.diagnostics, _out(), _err())
    elif fmt == "gitlab":
        from reconciler.views.gitlab import write_code_quality

        write_code_quality(result.diagnostics, _out(), _err())
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
@click.option("--project-schema", is_flag=True, help="Print dfr.yaml's schema instead.")
def schema(state_schema: bool, project_schema: bool) -> int:
    """Print the manifest JSON Schema (for editors and other tools)."""
    from reconciler.schema import schema_text

    name = "state.schema.json" if state_schema else "generation-run.schema.json"
    _out().write(schema_text("project.schema.json" if project_schema else name))
    return EXIT_OK


# -- shared options ------------------------------------------------------------


def _remember_backend(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    # Read by engine.backends.open_backend, with where the value came from
    # (command line or environment) so that a flag beats a variable.
    if value is not None and param.name:
        ctx.meta[f"dfr.{param.name}"] = (value, ctx.get_parameter_source(param.name))


def _state_option(f: Any) -> Any:
    f = _config_option(f)
    f = click.option(
        "--workspace",
        envvar="DFR_WORKSPACE",
        metavar="NAME",
        expose_value=False,
        callback=_remember_backend,
        help="Workspace in a postgres backend: one state per name (env DFR_WORKSPACE; "
        "default 'default').",
    )(f)
    f = click.option(
        "--backend",
        envvar="DFR_BACKEND",
        metavar="URL",
        expose_value=False,
        callback=_remember_backend,
        help="Where state lives: postgresql://USER@HOST:PORT/DB for a shared database, or a "
        "state file (env DFR_BACKEND; default: the --state file).",
    )(f)
    return click.option(
        "--state",
        "state",
        envvar="DFR_STATE",
        metavar="FILE",
        help="State file (env DFR_STATE; default dfr.state.json in the current directory).",
    )(f)


_switch_api_option = click.option(
    "--switch-api",
    is_flag=True,
    help="The state's runs belong to another API URL than this one, and that is meant "
    "(the service moved): record them as this API's instead of refusing.",
)

_policy_change_option = click.option(
    "--policy-change",
    is_flag=True,
    help="This command's dfr.yaml policy differs from the one in force for the state, "
    "and that is meant: plan under it, and apply records it in state.",
)


def _api_options(f: Any) -> Any:
    f = click.option(
        "--max-rps",
        type=click.FloatRange(min=0, min_open=True),
        envvar="DFR_MAX_RPS",
        metavar="N",
        expose_value=False,
        callback=_remember("dfr.max_rps"),
        help="Send at most N API requests per second, evenly spaced (env DFR_MAX_RPS; "
        "default: max_rps in dfr.yaml). Without it, the first 429 sets the pace from what "
        "the API accepted.",
    )(f)
    f = click.option(
        "--api-key-file",
        metavar="FILE",
        expose_value=False,
        callback=_remember("dfr.api_key_file"),
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


def _lock_option(f: Any) -> Any:
    return click.option(
        "--lock-timeout",
        default="0",
        metavar="DURATION",
        show_default=True,
        help="How long to wait for another process's lock on the state (e.g. 30s, 5m).",
    )(f)


def _seconds(text: str, what: str = "--lock-timeout") -> float:
    from reconciler.durations import parse_duration

    return parse_duration(text, what) or 0.0


# -- plan and apply ------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_state_option
@_api_options
@_switch_api_option
@_policy_change_option
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
@_format_option("text", "json", "markdown", "github", "auto")
@click.option(
    "--summary-file",
    metavar="FILE",
    help='Also write {"create": N, "update": N, "delete": N} for GitLab\'s merge-request '
    "widget (artifacts: reports: terraform).",
)
def plan(
    paths: tuple[str, ...],
    state: str | None,
    api_url: str | None,
    allow_insecure_http: bool,
    switch_api: bool,
    policy_change: bool,
    refresh: bool,
    replace: tuple[str, ...],
    prune: bool,
    as_json: bool,
    detailed_exitcode: bool,
    out_file: str | None,
    fmt: str,
    summary_file: str | None,
) -> int:
    """Show what `dfr apply` would submit, without changing anything.

    Offline unless --refresh: manifests under PATHS (default: the current
    directory) are compared with the state file. --format markdown writes a
    pull-request comment; github adds annotations (auto: github inside GitHub
    Actions, else text).
    """
    from reconciler.commands.plan import PlanArgs, run_plan
    from reconciler.views import resolve_format

    return run_plan(
        PlanArgs(
            paths=paths,
            state=state,
            api_url=api_url,
            refresh=refresh,
            replace=replace,
            prune=prune,
            as_json=as_json,
            detailed_exitcode=detailed_exitcode,
            out_file=out_file,
            allow_insecure_http=allow_insecure_http,
            fmt="json" if as_json else resolve_format(fmt),
            summary_file=summary_file,
            switch_api=switch_api,
            policy_change=policy_change,
        ),
        _out(),
        _err(),
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@_state_option
@_api_options
@_switch_api_option
@_policy_change_option
@_lock_option
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--parallelism",
    type=click.IntRange(1, 256),
    default=None,
    help="Concurrent API calls while submitting (default: parallelism in dfr.yaml, else 10).",
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
    "--no-progress",
    is_flag=True,
    help="No live display on a terminal: plain progress lines, as in CI (also NO_COLOR).",
)
def apply(
    paths: tuple[str, ...],
    state: str | None,
    api_url: str | None,
    allow_insecure_http: bool,
    switch_api: bool,
    policy_change: bool,
    lock_timeout: str,
    auto_approve: bool,
    parallelism: int | None,
    wait: bool,
    timeout: str | None,
    poll_interval: str | None,
    replace: tuple[str, ...],
    prune: bool,
    no_progress: bool,
) -> int:
    """Submit what the manifests ask for, record each run id, wait for final statuses.

    PATHS are manifest files or directories (default: the current directory),
    or a single PLANFILE saved by `dfr plan --out`. Exit 0 when every desired
    run SUCCEEDED (with --no-wait: was submitted), 1 otherwise, 130 when
    interrupted (state is saved; run apply again to resume).
    """
    from reconciler.commands.apply import ApplyArgs, ask_yes, run_apply
    from reconciler.durations import parse_duration
    from reconciler.project import current

    settings = current()  # a flag beats dfr.yaml, which beats the built-in default
    poll = (
        _seconds(poll_interval, "--poll-interval")
        if poll_interval is not None
        else settings.poll_interval
    )
    return run_apply(
        ApplyArgs(
            paths=paths,
            state=state,
            api_url=api_url,
            auto_approve=auto_approve,
            parallelism=parallelism or settings.parallelism or 10,
            wait=wait,
            timeout=(
                parse_duration(timeout, "--timeout") if timeout is not None else settings.timeout
            ),
            poll_max=poll or 30.0,
            replace=replace,
            prune=prune,
            lock_timeout=_seconds(lock_timeout),
            allow_insecure_http=allow_insecure_http,
            no_progress=no_progress,
            switch_api=switch_api,
            policy_change=policy_change,
        ),
        _out(),
        _err(),
        interactive=sys.stdin.isatty(),
        confirm=ask_yes,
    )


# -- state -------------------------------------------------------------------------


@cli.command()
@_state_option
@_api_options
@_switch_api_option
@_lock_option
@click.option(
    "--confirm-gone",
    is_flag=True,
    help="When every run asked for answers 404, record them as gone (they were deleted) "
    "instead of suspecting the API URL or key.",
)
def refresh(
    state: str | None,
    api_url: str | None,
    allow_insecure_http: bool,
    switch_api: bool,
    lock_timeout: str,
    confirm_gone: bool,
) -> int:
    """Ask the API for every unfinished run in state and record its status."""
    from reconciler.commands.state import RefreshArgs, run_refresh

    args = RefreshArgs(
        state=state,
        api_url=api_url,
        lock_timeout=_seconds(lock_timeout),
        allow_insecure_http=allow_insecure_http,
        switch_api=switch_api,
        confirm_gone=confirm_gone,
    )
    return run_refresh(args, _out(), _err())


@cli.command()
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option(
    "-l",
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
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
def status(
    state: str | None, as_json: bool, labels: tuple[str, ...], sort: str, long_: bool
) -> int:
    """Show recorded runs: name, run id, status, samples, cost, age (offline).

    Totals follow the table; a FAILED run shows what the API says of it and the
    command that resubmits it. --long adds each run's fields as sent and as used.
    """
    from reconciler.commands.state import run_status

    for label in labels:
        if "=" not in label:
            raise click.BadParameter(f"{label!r}: use KEY=VALUE", param_hint="--label")
    return run_status(state, as_json, labels, _out(), sort=sort, long=long_)


@cli.group("state")
def state_group() -> None:
    """Read or edit the state."""


@state_group.command("list")
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def state_list(state: str | None, as_json: bool) -> int:
    """List recorded names with run id and status."""
    from reconciler.commands.state import run_state_list

    return run_state_list(state, as_json, _out())


@state_group.command("show")
@click.argument("name")
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def state_show(name: str, state: str | None, as_json: bool) -> int:
    """Show everything recorded for NAME."""
    from reconciler.commands.state import run_state_show

    return run_state_show(state, name, as_json, _out())


@state_group.command("rm")
@click.argument("names", nargs=-1, required=True)
@_state_option
@_lock_option
def state_rm(names: tuple[str, ...], state: str | None, lock_timeout: str) -> int:
    """Forget NAMES (the runs themselves are not touched)."""
    from reconciler.commands.state import run_state_rm

    return run_state_rm(state, names, _seconds(lock_timeout), _out())


@state_group.command("mv")
@click.argument("old")
@click.argument("new")
@_state_option
@_lock_option
def state_mv(old: str, new: str, state: str | None, lock_timeout: str) -> int:
    """Rename OLD's record to NEW: a renamed manifest keeps its run (nothing else changes)."""
    from reconciler.commands.state import run_state_mv

    return run_state_mv(state, old, new, _seconds(lock_timeout), _out())


@state_group.command("migrate")
@_state_option
@_lock_option
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
def state_migrate(
    state: str | None,
    lock_timeout: str,
    destination: str,
    to_workspace: str | None,
    force: bool,
) -> int:
    """Copy the state (every run, intents, lineage, serial) to another backend.

    Both sides stay locked during the copy, the destination is read back and
    compared; the source keeps its records and is marked as moved, so every
    later command on it refuses, naming the destination (migrating back clears
    the mark). Refused when the destination holds another state or a newer one,
    unless --force. File to database:
    `dfr state migrate --state dfr.state.json --to postgresql://...`; back:
    `dfr state migrate --backend postgresql://... --to dfr.state.json`.
    """
    from reconciler.commands.migrate import run_migrate

    return run_migrate(
        state, destination, to_workspace, force, _seconds(lock_timeout), _out(), _err()
    )


@cli.command("import")
@click.argument("name")
@click.argument("run_id")
@click.argument("paths", nargs=-1, type=click.Path())
@_state_option
@_api_options
@_lock_option
@click.option(
    "--force",
    is_flag=True,
    help="Adopt the run even where it differs from the manifest; the next plan shows "
    "the difference (as a replace).",
)
def import_(
    name: str,
    run_id: str,
    paths: tuple[str, ...],
    state: str | None,
    api_url: str | None,
    allow_insecure_http: bool,
    lock_timeout: str,
    force: bool,
) -> int:
    """Adopt the existing run RUN_ID for manifest NAME (found under PATHS).

    The run must exist and answer the manifest's spec (fields the manifest
    leaves out match anything); what differs is shown, and --force adopts it
    anyway.
    """
    from reconciler.commands.import_ import ImportArgs, run_import

    args = ImportArgs(
        name=name,
        run_id=run_id,
        paths=paths,
        state_path=state,
        api_url=api_url,
        lock_timeout=_seconds(lock_timeout),
        allow_insecure_http=allow_insecure_http,
        force=force,
    )
    return run_import(args, _out(), _err())


@cli.command("pre-commit", hidden=True)
@click.argument("files", nargs=-1, type=click.Path(readable=False))
@click.option(
    "--skip-non-manifests",
    is_flag=True,
    help="Skip documents of the files that are not manifests (for hooks that pass every "
    "YAML file).",
)
def pre_commit(files: tuple[str, ...], skip_non_manifests: bool) -> int:
    """Check FILES as a pre-commit hook: their findings, names across all manifests."""
    from reconciler.commands.precommit import run_hook

    return run_hook(files, skip_non_manifests, _err())


@cli.command("force-unlock")
@click.argument("lock_id")
@_state_option
def force_unlock(lock_id: str, state: str | None) -> int:
    """Remove a stale lock left by a process that is gone (LOCK_ID from the error)."""
    from reconciler.commands.state import run_force_unlock

    return run_force_unlock(state, lock_id, _out())


# -- helpers: init, diff, fmt ----------------------------------------------------------


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> int:
    """Write a starter manifest (with the schema modeline) under DIRECTORY/dataframer/.

    Never overwrites a file. Prints the .pre-commit-config.yaml snippet that
    checks manifests before each commit.
    """
    from reconciler.commands.init import run_init

    return run_init(directory, _out())


@cli.command()
@click.argument("name")
@click.argument("paths", nargs=-1, type=click.Path())
@_state_option
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when something differs (0 when not)."
)
def diff(name: str, paths: tuple[str, ...], state: str | None, detailed_exitcode: bool) -> int:
    """Show what differs between manifest NAME (under PATHS) and its recorded run (offline)."""
    from reconciler.commands.diff import run_diff

    return run_diff(name, paths, state, detailed_exitcode, _out(), _err())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--check", is_flag=True, help="Change nothing; exit 1 listing files that would change."
)
def fmt(paths: tuple[str, ...], check: bool) -> int:
    """Rewrite manifests in the canonical key order, keeping comments (ruamel.yaml).

    apiVersion, kind, metadata (name, labels), spec (spec_id, spec_version, then
    the schema's order). Files already in that order are not touched.
    """
    from reconciler.commands.fmt import run_fmt

    return run_fmt(paths, check, _out(), _err())


# -- emulator --------------------------------------------------------------------------


@cli.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--api-key",
    envvar="DFR_EMULATOR_API_KEY",
    default=None,
    help="Accept only this bearer token (default: any non-empty token).",
)
@click.option("--pending-seconds", type=float, default=2.0, show_default=True)
@click.option("--processing-seconds", type=float, default=5.0, show_default=True)
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Seconds added to every answer."
)
@click.option(
    "--failure-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of answers replaced by 5xx.",
)
@click.option("--rate-limit", type=float, default=None, help="Requests per second before 429.")
@click.option(
    "--retry-after/--no-retry-after",
    default=True,
    show_default=True,
    help="Send Retry-After with 429 answers.",
)
@click.option(
    "--fail-rate", type=float, default=0.0, show_default=True, help="Share of runs that end FAILED."
)
@click.option(
    "--legacy",
    is_flag=True,
    help="Answer as the old reference page did (11 fields, 12 models, {id} on create, "
    "failure_reason, numbered spec versions, IN_PROGRESS) instead of as the official SDK.",
)
@click.option(
    "--page-size",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Page the run and spec lists Django REST style ({results, next}); 0: plain arrays.",
)
@click.option(
    "--status-spelling",
    type=click.Choice(["PROCESSING", "IN_PROGRESS"]),
    default=None,
    help="Spelling of the running status (default: PROCESSING, IN_PROGRESS with --legacy).",
)
@click.option(
    "--ambiguous-post-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of create POSTs that create the run, then drop the connection.",
)
@click.option(
    "--reset-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests whose connection is dropped unanswered.",
)
@click.option(
    "--ambiguous-posts",
    type=int,
    default=0,
    show_default=True,
    help="The next N create POSTs create the run, then drop the connection.",
)
@click.option(
    "--post-5xx-after-create-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of create POSTs that create the run, then answer 5xx.",
)
@click.option(
    "--hang-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of requests answered only after --hang-seconds.",
)
@click.option(
    "--hang-seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="How long a hung answer waits.",
)
@click.option(
    "--garbage-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of answers replaced by a non-JSON 200.",
)
@click.option(
    "--missing-fields-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of run objects that lose some fields.",
)
@click.option(
    "--unknown-status-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of run objects showing --unknown-status-value.",
)
@click.option(
    "--fail-next",
    type=int,
    default=0,
    show_default=True,
    help="The next N runs created end FAILED.",
)
@click.option(
    "--time-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Lifecycle seconds per real second (10 makes runs 10x faster).",
)
@click.option("--unknown-status-value", default="QUEUED", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every fault.")
@click.option("--accept-any-spec", is_flag=True, help="Treat any UUID spec_id as a ready spec.")
@click.option("--log-requests", is_flag=True, help="One line per request on stderr.")
def emulator(**knobs: Any) -> int:
    """Serve a local Dataframer-compatible API on 127.0.0.1 until stopped.

    It answers as the official SDK (pydataframer 0.19.2) describes the API;
    --legacy answers as the old reference page did. Every flag is a knob of
    `dfr_emulator.EmulatorConfig`; the fault knobs are seeded, so a run
    of faults is repeatable with the same --seed.
    """
    from reconciler.commands.emulator import run_emulator

    return run_emulator(knobs, _err())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--keep-state", metavar="FILE", help="Write the demo's state here instead of a temporary file."
)
def demo(paths: tuple[str, ...], keep_state: str | None) -> int:
    """Run validate, plan, apply and status on PATHS against a built-in emulator.

    No account needed: an emulator starts in this process on a free port, runs
    finish in a few seconds, and the state goes to a temporary file.
    """
    from reconciler.commands.emulator import run_demo

    return run_demo(paths or ("examples/manifests",), keep_state, _out(), _err())


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
