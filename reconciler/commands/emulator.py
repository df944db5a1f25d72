"""`dfr emulator` (serve the local API) and `dfr demo` (the whole loop against it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from reconciler.invocation import Invocation

DEMO_KEY = "emulator-demo-key"


@dataclass(frozen=True, slots=True)
class EmulatorArgs:
    knobs: dict[str, Any] = field(default_factory=dict)  # EmulatorConfig's fields


#: The manifests the demo runs when given none (a checkout's own, or the copy in the wheel).
EXAMPLES = os.path.join("examples", "manifests")


@dataclass(frozen=True, slots=True)
class DemoArgs:
    paths: tuple[str, ...] = ()  # none: the project's examples (`example_manifests`)
    keep_state: str | None = None


def example_manifests() -> str:
    """examples/manifests of the current folder (a checkout's top), else the examples
    installed with dfr: in the wheel, or in the checkout an editable install runs from."""
    if os.path.isdir(EXAMPLES):
        return EXAMPLES
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    installed = os.path.join(package, EXAMPLES)  # the wheel's copy
    if os.path.isdir(installed):
        return installed
    checkout = os.path.dirname(package)
    ours = os.path.join(checkout, EXAMPLES)
    if os.path.isfile(os.path.join(checkout, "pyproject.toml")) and os.path.isdir(ours):
        return ours
    raise UsageError(
        f"no {EXAMPLES} here and none installed with dfr: name the manifests to run the demo on"
    )


def run_emulator(inv: Invocation, args: EmulatorArgs, out: TextIO, err: TextIO) -> int:
    from dfr_emulator import Emulator, EmulatorConfig

    try:
        config = EmulatorConfig(**args.knobs)
    except ValueError as exc:
        raise UsageError(f"emulator: {exc}") from None
    emulator = Emulator(config)
    try:
        url = emulator.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{config.port}: {exc.strerror}") from None
    mode = " (legacy: the old reference page's API)" if config.legacy else ""
    key = (
        "  export DATAFRAMER_API_KEY=anything   # any non-empty key is accepted\n"
        if config.api_key is None
        else "  export DATAFRAMER_API_KEY=...        # the key given to --api-key\n"
    )
    err.write(
        f"Dataframer emulator{mode} listening on {url}\n"
        f"  export DATAFRAMER_BASE_URL={url}\n"
        f"{key}Press Ctrl-C to stop.\n"
    )
    err.flush()
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return EXIT_OK


@contextmanager
def _environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables for the block."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    inv: Invocation,
    args: DemoArgs,
    out: TextIO,
    err: TextIO,
    *,
    dfr: Callable[[Sequence[str]], int],
) -> int:
    """The whole loop against an emulator, in a temporary copy of the manifests (so
    the data `apply --pull` writes lands there, not in your checkout); `dfr` runs one
    dfr command line (the CLI's `run`, handed down so that this layer does not reach
    up into it)."""
    from dfr_emulator import Emulator, EmulatorConfig

    given = args.paths or (example_manifests(),)
    for path in given:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file or directory")
    keep_state = os.path.abspath(args.keep_state) if args.keep_state else None
    config = EmulatorConfig(pending_seconds=1.0, processing_seconds=2.0)
    with tempfile.TemporaryDirectory(prefix="dfr-demo-") as tmp, Emulator(config) as emulator:
        project = os.path.join(tmp, "project")
        paths = _copy_project(given, project)
        state = keep_state or os.path.join(tmp, "dfr.state.json")
        # The demo's own state only: a backend or workspace chosen in the
        # environment (a team database, say) must not receive emulator runs.
        env: dict[str, str | None] = {
            "DATAFRAMER_BASE_URL": emulator.base_url,
            "DATAFRAMER_API_KEY": DEMO_KEY,
            "DFR_STATE": state,
            "DFR_BACKEND": None,
            "DFR_WORKSPACE": None,
            "DFR_CONFIG": None,
        }
        out.write(
            f"Started a Dataframer emulator at {emulator.base_url}; state: {state}\n"
            f"Working in a copy of the manifests: {project}\n"
        )
        with _environment(env), _working_directory(project):
            code = _demo_steps(paths, out, err, dfr)
        if code != EXIT_OK:
            return code
    out.write(
        "\nThe whole loop ran against the emulator: specs and runs submitted, ids "
        "recorded,\nfinal statuses seen, the data pulled and verified, and the second plan "
        "shows nothing left to do.\n"
    )
    return EXIT_OK


def _copy_project(paths: Sequence[str], project: str) -> list[str]:
    """Copy each PATH into `project` (relative paths keep their place; others go in by
    their base name); the paths to use from `project`."""
    import shutil

    os.makedirs(project, exist_ok=True)
    copied = []
    for path in paths:
        relative = os.path.relpath(path)
        inside = relative != os.curdir and not relative.startswith(os.pardir)
        target = relative if inside else os.path.basename(os.path.abspath(path))
        destination = os.path.join(project, target)
        if os.path.isdir(path):
            shutil.copytree(path, destination, symlinks=False, dirs_exist_ok=True)
        else:
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.copyfile(path, destination)
        copied.append(target)
    return copied


def _demo_steps(
    paths: Sequence[str], out: TextIO, err: TextIO, dfr: Callable[[Sequence[str]], int]
) -> int:
    steps = [
        ["validate", *paths],
        ["plan", *paths],
        ["apply", "--auto-approve", "--pull", "--poll-interval", "1s", *paths],
        ["status"],
        ["pull", "--check"],
        ["plan", *paths],
    ]
    for step in steps:
        out.write(f"\n$ dfr {' '.join(step)}\n")
        out.flush()
        err.flush()
        code = dfr(step)
        if code != EXIT_OK:
            out.write(f"\n`dfr {step[0]}` exited {code}; the demo stops here.\n")
            return code
    return EXIT_OK


@contextmanager
def _working_directory(path: str) -> Iterator[None]:
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
