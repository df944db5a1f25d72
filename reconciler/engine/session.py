"""A command's connection to the world: the API client and the state, locked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.api import DataframerClient
    from reconciler.state.backend import Backend, Store


@dataclass(frozen=True, slots=True)
class Session:
    client: DataframerClient
    backend: Backend
    store: Store


@contextmanager
def session(
    state: str | None,
    lock_reason: str,
    *,
    api_url: str | None,
    allow_insecure_http: bool = False,
    lock_timeout: float = 0.0,
    backend: Backend | None = None,
) -> Iterator[Session]:
    """The client and the locked store of a command that talks to the API and writes state
    (`backend`: this one instead of the command's, e.g. plan --refresh's in memory)."""
    from reconciler.engine.backends import open_backend
    from reconciler.engine.client import make_client

    chosen = open_backend(state) if backend is None else backend
    with (
        make_client(api_url, allow_insecure_http=allow_insecure_http) as client,
        chosen.lock(lock_reason, timeout=lock_timeout) as store,
    ):
        yield Session(client, chosen, store)
