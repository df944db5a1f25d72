"""What happens during an apply, as events for observers (progress displays, tests).

`Applier` reports to an `ApplyEvents` object besides its `say(line)` callback:
`say` is for people reading a log, events are for code that keeps its own
picture (counts by status, the slowest runs). Every method is a no-op here,
so an observer overrides only what it needs. Methods may be called from the
submission threads: observers must be thread-safe.

This module is imported by `reconciler.apply`; it imports nothing heavy.
"""

from __future__ import annotations

from reconciler.state.model import RunRecord


class ApplyEvents:
    """The observer interface of an apply; the base class ignores everything."""

    def submitted(self, name: str, run_id: str) -> None:
        """A create POST answered with `run_id` (already recorded in state)."""

    def adopted(self, name: str, run_id: str) -> None:
        """The run of an unconfirmed submission was found and recorded."""

    def rejected(self, name: str, message: str) -> None:
        """The API refused the create (or it never left); nothing was created."""

    def unresolved(self, name: str, message: str) -> None:
        """The outcome of a submission is unknown; it was not submitted again."""

    def waiting(self, records: list[RunRecord]) -> None:
        """Waiting for final statuses starts (or goes on) with these unfinished runs."""

    def status_changed(self, before: RunRecord, after: RunRecord) -> None:
        """A run's record changed while waiting: status, drift, samples or cost."""

    def polled(self, records: list[RunRecord]) -> None:
        """One round of status checks ended; `records` were still unfinished before it."""


#: The observer used when none is given.
NO_EVENTS = ApplyEvents()
