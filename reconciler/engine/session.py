"""A command's connection to the world: the API client and the state, locked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.api import DataframerClient
    from reconciler.invocation import Invocation
    from reconciler.state.backend import Backend, Store


@dataclass(frozen=True, slots=True)
class Session:
    client: DataframerClient
    backend: Backend
    store: Store


@contextmanager
def session(
    inv: Invocation, lock_reason: str, *, backend: Backend | None = None
) -> Iterator[Session]:
    """The client and the locked store of a command that talks to the API and writes state
    (`backend`: this one instead of the command's, e.g. plan --refresh's in memory)."""
    from reconciler.engine.backends import open_backend
    from reconciler.engine.client import make_client

    chosen = open_backend(inv) if backend is None else backend
    with (
        make_client(inv) as client,
        chosen.lock(lock_reason, timeout=inv.lock_timeout) as store,
    ):
        yield Session(client, chosen, store)
