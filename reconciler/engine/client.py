"""The API client of a command: its URL, key, pacing, and the check that a state's runs
belong to the API it talks to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reconciler.errors import UsageError

if TYPE_CHECKING:
    from reconciler.api import DataframerClient, PacingConfig
    from reconciler.invocation import Invocation


def make_client(inv: Invocation) -> DataframerClient:
    """The API client; the key comes from `--api-key-file` if given, else the environment."""
    from reconciler.api import client_from_env

    return client_from_env(
        inv.api_url,  # --api-url or DATAFRAMER_BASE_URL, then the project file, then the default
        allow_insecure_http=inv.allow_insecure_http,
        api_key=key_from_file(inv.api_key_file),
        pacing=pacing(inv.max_rps),
    )


def pacing(max_rps: float | None) -> PacingConfig:
    """Client pacing: `--max-rps N` (or DFR_MAX_RPS, or max_rps in dfr.yaml) spaces
    requests evenly at N per second; without it the client learns the API's rate
    from its first 429."""
    from reconciler.api import PacingConfig

    if max_rps is None:
        return PacingConfig(learn=True)
    return PacingConfig(max_requests_per_second=float(max_rps), burst=1.0)


def key_from_file(path: str | None) -> str | None:
    """The key in the file named by `--api-key-file`, or None when the flag was not given."""
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


def same_api(a: str, b: str) -> bool:
    """Do two API base URLs name the same service (case of scheme and host, a trailing
    slash and a default port aside)?"""
    import httpx

    def key(url: str) -> tuple[str, str, int | None, str]:
        parsed = httpx.URL(url.strip())
        default = {"https": 443, "http": 80}.get(parsed.scheme)
        port = None if parsed.port == default else parsed.port
        return parsed.scheme.lower(), (parsed.host or "").lower(), port, parsed.path.rstrip("/")

    try:
        return key(a) == key(b)
    except (httpx.InvalidURL, ValueError):
        return a.rstrip("/") == b.rstrip("/")


def check_api(state: Any, client: Any, *, switch: bool, store: Any = None) -> None:
    """Refuse to act on a state whose runs belong to another API URL, unless `switch`.

    A run id means nothing to another API: refreshing against a staging URL would
    mark every run gone, and the next apply would pay for them again. With
    `switch` (`--switch-api`), the new API must know the state's runs (one list,
    and a GET of up to three runs the list lacks) before they are recorded as its
    own (when a `store` is given: refresh and apply; plan --refresh only reads).
    """
    from reconciler.errors import NotFoundError, WrongAPIError

    api = client.base_url
    records = [r for r in state.runs.values() if r.api and (r.run_id or r.intent)]
    others = sorted({r.api for r in records if not same_api(r.api, api)})
    if not others:
        return
    if not switch:
        raise WrongAPIError(
            f"this state's runs belong to {others[0]}"
            + (f" (and {len(others) - 1} other API)" if len(others) > 1 else "")
            + f", not {api}: a run id means nothing to another API, and dfr would take "
            "them for gone. Check --api-url / DATAFRAMER_BASE_URL; if the service really "
            "moved, run the command again with --switch-api"
        )
    moving = [r for r in records if not same_api(r.api, api)]
    ids = [r.run_id for r in moving if r.run_id]
    if ids:
        listed = {run.id.lower() for run in client.list_runs()}
        known = any(i.lower() in listed for i in ids)
        for run_id in ids[:3]:
            if known:
                break
            try:
                client.get_run(run_id)
                known = True
            except NotFoundError:
                pass
        if not known:
            raise WrongAPIError(
                f"--switch-api: the API at {api} knows none of this state's runs (they belong "
                f"to {others[0]}); not switching. Check the URL and the key"
            )
    if store is not None:
        store.put_many([r.evolve(api=api) for r in moving])
