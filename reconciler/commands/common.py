"""Wiring shared by the commands: manifests, state backend, API client, durations."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from reconciler import diagnostics as diag
from reconciler.errors import UsageError, ValidationFailed

if TYPE_CHECKING:
    from reconciler.client import DataframerClient
    from reconciler.manifests import Manifest
    from reconciler.state.backend import Backend

DEFAULT_STATE = "dfr.state.json"
DEFAULT_API_URL = "https://df-api.dataframer.ai"


def load_manifests(paths: Sequence[str], err: TextIO) -> list[Manifest]:
    """Valid manifests, or ValidationFailed after every problem was reported on `err`.

    No PATHS: the project file's `manifests`, else the current directory. The
    project's policy is checked on every manifest (`reconciler.policy`).
    """
    from reconciler.project import current
    from reconciler.validate import validate_paths

    project = current()
    result = validate_paths(project.manifest_paths(paths), checks=project.checks())
    diag.write_text(result.diagnostics, err)
    if not result.ok:
        raise ValidationFailed(
            f"{result.errors} error{'s' if result.errors != 1 else ''} in the manifests; "
            "nothing was planned or submitted"
        )
    return result.manifests


def open_backend(state: str | None) -> Backend:
    from reconciler.project import current
    from reconciler.state.local import LocalBackend

    # --state or DFR_STATE, then the project file, then the default.
    return LocalBackend(state or current().state or DEFAULT_STATE)


def make_client(api_url: str | None, *, allow_insecure_http: bool = False) -> DataframerClient:
    """The API client; the key comes from `--api-key-file` if given, else the environment."""
    from reconciler.client import client_from_env
    from reconciler.project import current

    # --api-url or DATAFRAMER_BASE_URL, then the project file, then the default.
    api_url = api_url or os.environ.get("DATAFRAMER_BASE_URL") or current().api_url
    return client_from_env(
        api_url, allow_insecure_http=allow_insecure_http, api_key=_key_from_file()
    )


def _key_from_file() -> str | None:
    """The key in the file named by `--api-key-file`, or None when the flag was not given."""
    import click

    ctx = click.get_current_context(silent=True)
    path = ctx.meta.get("dfr.api_key_file") if ctx is not None else None
    if path is None:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read(64 * 1024)
    except OSError as exc:
        raise UsageError(f"cannot read the API key file {path}: {exc.strerror or exc}") from None
    try:
        key = data.decode("ascii").strip()
    except UnicodeDecodeError:
        key = ""
    # Never echo the contents: say what is wrong, not what it holds.
    if not key or not key.isprintable() or any(c.isspace() for c in key):
        raise UsageError(
            f"the API key file {path} must hold the key alone on one line (ASCII, no spaces)"
        )
    return key


_DURATION = re.compile(r"^\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str | None) -> float | None:
    """'90', '90s', '15m', '2h', '1h30m' -> seconds; None or '0' -> None (no limit)."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(
            f"invalid duration {text!r}: use seconds or forms like 90s, 15m, 2h, 1h30m"
        )
    hours, minutes, seconds = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    return total or None


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
