"""The names of the specs a command's state records, for `spec_ref` checks.

A run's `spec_ref.name` must name a `kind: Spec` manifest or a spec adopted
into state (`dfr import spec`). The validate pass asks for the recorded names
only when some reference names no manifest, so a repository whose runs all
name their Spec manifests never reads state here (`dfr validate` stays
offline and quick).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reconciler.errors import DfrError

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


def recorded_spec_names(inv: Invocation) -> Callable[[], frozenset[str]]:
    """A function giving the spec names of this command's state (read when called).

    A state that cannot be read counts as naming no spec: the reference is then
    reported as unknown, and the command that needs the state says why it
    cannot read it.
    """

    def read() -> frozenset[str]:
        from reconciler.engine.backends import open_backend

        try:
            return frozenset(getattr(open_backend(inv).read(), "specs", {}))
        except DfrError:
            return frozenset()

    return read
