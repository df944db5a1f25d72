"""One command's settings, resolved once: `Invocation`.

The CLI (`reconciler.cli`) builds it from the command line's flags, the
environment and the project file `dfr.yaml`, and passes it to the command; from
there the settings travel as plain values. Nothing below the CLI reads click's
context or the environment for a setting that has a flag.

Precedence, for every setting: a flag, then its environment variable, then
dfr.yaml, then the built-in default (`Invocation.build`, tested as a table in
tests/unit/test_invocation.py). The state's location keeps how it was chosen
(`Given.level`): `engine.backends.open_backend` refuses a variable that selects
another state than dfr.yaml declares, which only a flag may override.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.project import Project

#: How a setting was given: its `Given.level`.
FLAG, ENV, FILE = 0, 1, 2

#: The variables of settings that only commands with the matching option read (their
#: flag's `envvar`); the CLI hands a command only those of the options it has.
OPTION_VARIABLES = {
    "state": "DFR_STATE",
    "backend": "DFR_BACKEND",
    "workspace": "DFR_WORKSPACE",
    "api_url": "DATAFRAMER_BASE_URL",
    "max_rps": "DFR_MAX_RPS",
}

DEFAULT_PARALLELISM = 10
DEFAULT_POLL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Given:
    """A value and how it was given: FLAG (the command line) or ENV (a variable)."""

    value: str
    level: int


@dataclass(frozen=True, slots=True)
class Flags:
    """What the command line said; None (or False) where it said nothing."""

    config: str | None = None  # --config FILE
    state: str | None = None  # --state FILE
    backend: str | None = None  # --backend URL
    workspace: str | None = None  # --workspace NAME
    api_url: str | None = None  # --api-url URL
    api_key_file: str | None = None  # --api-key-file FILE
    allow_insecure_http: bool = False  # --allow-insecure-http
    max_rps: float | None = None  # --max-rps N
    jobs: int | None = None  # --jobs N
    no_cache: bool = False  # --no-cache
    lock_timeout: str | None = None  # --lock-timeout DURATION, as typed
    parallelism: int | None = None  # --parallelism N
    poll_interval: str | None = None  # --poll-interval DURATION, as typed
    timeout: str | None = None  # --timeout DURATION, as typed


def _no_project() -> Project:
    from reconciler.project import Project

    return Project()


@dataclass(frozen=True, slots=True)
class Invocation:
    """The settings of one `dfr` command (see the module's docstring for precedence)."""

    project: Project = field(default_factory=_no_project)
    config: str | None = None  # the project file named by --config or DFR_CONFIG
    state: Given | None = None  # --state / DFR_STATE
    backend: Given | None = None  # --backend / DFR_BACKEND
    workspace: Given | None = None  # --workspace / DFR_WORKSPACE
    api_url: str | None = None  # None: the public API
    api_key_file: str | None = None  # None: the key is DATAFRAMER_API_KEY
    allow_insecure_http: bool = False
    max_rps: float | None = None  # None: the pace is learned from the first 429
    jobs: int = 1
    no_cache: bool = False
    lock_timeout: float = 0.0
    parallelism: int = DEFAULT_PARALLELISM
    poll_interval: float = DEFAULT_POLL_SECONDS
    timeout: float | None = None  # None: wait without limit

    @classmethod
    def build(
        cls,
        flags: Flags,
        environ: Mapping[str, str] | None = None,
        project: Project | None = None,
    ) -> Invocation:
        """Resolve every setting: flag > environment > `project` (dfr.yaml) > default."""
        env = os.environ if environ is None else environ
        file = _no_project() if project is None else project
        return cls(
            project=file,
            config=flags.config or _env(env, "DFR_CONFIG"),
            state=_given(flags.state, env, "DFR_STATE"),
            backend=_given(flags.backend, env, "DFR_BACKEND"),
            workspace=_given(flags.workspace, env, "DFR_WORKSPACE"),
            api_url=flags.api_url or _env(env, "DATAFRAMER_BASE_URL") or file.api_url,
            api_key_file=flags.api_key_file,
            allow_insecure_http=flags.allow_insecure_http,
            max_rps=_first(flags.max_rps, _env_rate(env), file.max_rps),
            jobs=flags.jobs if flags.jobs is not None else default_jobs(env),
            no_cache=flags.no_cache or _env_flag(env, "DFR_NO_CACHE"),
            lock_timeout=_seconds(flags.lock_timeout, "--lock-timeout") or 0.0,
            parallelism=flags.parallelism or file.parallelism or DEFAULT_PARALLELISM,
            poll_interval=(
                _seconds(flags.poll_interval, "--poll-interval")
                if flags.poll_interval is not None
                else file.poll_interval
            )
            or DEFAULT_POLL_SECONDS,
            timeout=(
                _seconds(flags.timeout, "--timeout") if flags.timeout is not None else file.timeout
            ),
        )


def default_jobs(environ: Mapping[str, str] | None = None) -> int:
    """Processes for parsing without `--jobs`: DFR_JOBS, else the usable CPUs."""
    env = os.environ if environ is None else environ
    text = env.get("DFR_JOBS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _env(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None  # an empty variable is no variable (as click reads it)


def _given(flag: str | None, env: Mapping[str, str], name: str) -> Given | None:
    if flag is not None:
        return Given(flag, FLAG)
    value = _env(env, name)
    return Given(value, ENV) if value is not None else None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _env_rate(env: Mapping[str, str]) -> float | None:
    text = _env(env, "DFR_MAX_RPS")
    if text is None:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate == float("inf"):
        raise UsageError(f"DFR_MAX_RPS={text!r}: expected a number of requests per second above 0")
    return rate


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _seconds(text: str | None, what: str) -> float | None:
    from reconciler.durations import parse_duration

    return parse_duration(text, what) if text is not None else None
