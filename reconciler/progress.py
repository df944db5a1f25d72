"""Progress of an apply: a live display on a terminal, a plain line now and then otherwise.

Both are `ApplyEvents` observers that keep the same picture: the status of
every desired run, when each started, how long the apply has taken. They
differ only in how they show it, and only ever on stderr (stdout keeps the
plan and the report, so it stays clean for pipes):

- `LiveProgress` (stderr is a terminal, NO_COLOR unset, no --no-progress): a
  rich display redrawn a few times a second with the counts by status, the
  elapsed time and the slowest unfinished runs; the `say` lines (submitted,
  SUCCEEDED, FAILED with the reason) scroll above it. A run reaching a status
  that is not final (PROCESSING) is counted, not said, in both.
- `PlainProgress` (CI logs, pipes): the `say` lines as they come, plus one
  summary line when waiting starts, then at most one every `interval` seconds
  (30 by default; env DFR_PROGRESS_INTERVAL), never one per poll, and the
  final counts when waiting ends.

`rich` is imported only when a live display is made.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.events import ApplyEvents
from reconciler.plan import Action, Plan
from reconciler.recovery import parse_time
from reconciler.state.model import SUCCEEDED, TERMINAL, RunRecord
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from rich.console import RenderableType

#: A run the plan submits that is not submitted yet: dfr's own queue, not an API status
#: (hence lower case beside the API's PENDING, PROCESSING, ...).
TO_SUBMIT = "to submit"
#: Statuses in the order the counts are shown; others follow alphabetically.
ORDER = (TO_SUBMIT, "PENDING", "PROCESSING", "SUCCEEDED", "FAILED", "CANCELED")
DEFAULT_INTERVAL = 30.0


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m, 2d03h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _wall(stamp: str | None) -> float | None:
    when = parse_time(stamp)
    return None if when is None else when.timestamp()


class Tracker(ApplyEvents):
    """The statuses of an apply's runs, kept from its events (thread-safe)."""

    def __init__(
        self,
        plan: Plan,
        records: dict[str, RunRecord],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.clock = clock
        self.begun = clock()
        self.lock = threading.Lock()
        self.status: dict[str, str] = {}
        self.started: dict[str, float] = {}
        # Lines about a run reaching a status that is not final, which apply says
        # right after the event: the counts show them, the scrolling lines do not.
        self.unsaid: set[str] = set()
        offset = clock() - wall()  # wall time -> this clock
        for change in plan.changes:
            if change.action is Action.ORPHAN:
                continue
            record = records.get(change.name)
            if change.submits:
                self.status[change.name] = TO_SUBMIT
            elif record is not None:
                self.status[change.name] = _display(record)
                at = _wall(record.submitted_at or record.created_at)
                if at is not None:
                    self.started[change.name] = at + offset

    # -- events ------------------------------------------------------------------

    def submitted(self, name: str, run_id: str) -> None:
        with self.lock:
            self.status[name] = "PENDING"
            self.started[name] = self.clock()

    def adopted(self, name: str, run_id: str) -> None:
        self.submitted(name, run_id)

    def rejected(self, name: str, message: str) -> None:
        with self.lock:
            self.status[name] = "NOT SUBMITTED"

    def unresolved(self, name: str, message: str) -> None:
        with self.lock:
            self.status[name] = "UNCONFIRMED"

    def status_changed(self, before: RunRecord, after: RunRecord) -> None:
        with self.lock:
            self.status[after.name] = _display(after)
            if after.status != before.status and after.status not in TERMINAL:
                self.unsaid.add(f"{after.name}: {after.status}")

    def worth_saying(self, line: str) -> bool:
        """Not the line about a run reaching a status that is not final (PROCESSING):
        only submissions and final statuses scroll, one line each."""
        with self.lock:
            if line in self.unsaid:
                self.unsaid.discard(line)
                return False
            return True

    # -- the picture -------------------------------------------------------------

    def elapsed(self) -> float:
        return self.clock() - self.begun

    def counts(self) -> list[tuple[str, int]]:
        with self.lock:
            values = list(self.status.values())
        found = {s: values.count(s) for s in set(values)}
        known = [(s, found.pop(s)) for s in ORDER if s in found]
        return known + sorted(found.items())

    def slowest(self, n: int = 3) -> list[tuple[str, float]]:
        """Unfinished runs that have been going longest: (name, seconds)."""
        now = self.clock()
        with self.lock:
            going = [
                (name, now - self.started[name])
                for name, status in self.status.items()
                if status not in TERMINAL and status != TO_SUBMIT and name in self.started
            ]
        return sorted(going, key=lambda item: (-item[1], item[0]))[:n]

    def summary(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts()) or "no runs"
        line = f"progress: {counts} ({duration(self.elapsed())} elapsed)"
        slow = self.slowest()
        if slow:
            line += "; slowest: " + ", ".join(f"{n} ({duration(s)})" for n, s in slow)
        return line

    def done(self) -> int:
        with self.lock:
            return sum(1 for s in self.status.values() if s in TERMINAL)


def _display(record: RunRecord) -> str:
    if record.drift:
        return "GONE"
    # An unknown status is shown as the API sent it, on one line.
    return one_line(record.status) if record.status else ("PENDING" if record.run_id else TO_SUBMIT)


class PlainProgress(Tracker):
    """Lines for logs: every `say` line, plus a summary line now and then."""

    def __init__(
        self, plan: Plan, records: dict[str, RunRecord], err: TextIO, *, interval: float, **kw: Any
    ) -> None:
        super().__init__(plan, records, **kw)
        self.err = err
        self.interval = interval
        self.last: float | None = None
        self.said = ""
        self.write_lock = threading.Lock()

    def say(self, line: str) -> None:
        if not self.worth_saying(line):
            return
        with self.write_lock:
            self.err.write(one_line(line) + "\n")
            self.err.flush()

    def _maybe_summary(self) -> None:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        self.said = self.summary()
        self.say(self.said)

    def waiting(self, records: list[RunRecord]) -> None:
        self._maybe_summary()

    def polled(self, records: list[RunRecord]) -> None:
        self._maybe_summary()

    @contextmanager
    def showing(self) -> Iterator[PlainProgress]:
        yield self
        # Waiting ends with the final counts (unless the last line said just that).
        if self.last is not None and self.summary() != self.said:
            self.say(self.summary())


class LiveProgress(Tracker):
    """A rich live display on a terminal (stderr only), redrawn 4 times a second."""

    def __init__(self, plan: Plan, records: dict[str, RunRecord], err: TextIO, **kw: Any) -> None:
        super().__init__(plan, records, **kw)
        from rich.console import Console

        self.console = Console(file=err, stderr=True, highlight=False)
        self.total = len(self.status)

    def say(self, line: str) -> None:
        if self.worth_saying(line):
            self.console.print(one_line(line), markup=False, highlight=False, soft_wrap=True)

    def render(self) -> RenderableType:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        head = Text()
        head.append(f"dfr apply  {self.done()}/{self.total} finished  ", style="bold")
        for status, n in self.counts():
            head.append(f"{status} {n}", style=_STYLE.get(status, ""))
            head.append("  ")
        head.append(f"elapsed {duration(self.elapsed())}", style="dim")
        slow = self.slowest()
        if not slow:
            return head
        table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
        table.add_column("slowest runs")
        table.add_column("status")
        table.add_column("running for", justify="right")
        with self.lock:
            rows = [(name, self.status.get(name, "")) for name, _ in slow]
        for (name, status), (_, seconds) in zip(rows, slow, strict=True):
            table.add_row(name, Text(status, style=_STYLE.get(status, "")), duration(seconds))
        return Group(head, table)

    @contextmanager
    def showing(self) -> Iterator[LiveProgress]:
        from rich.live import Live

        with Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=4,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ):
            yield self
        # Leave the final counts on the terminal (the display itself is erased).
        self.console.print(self.summary(), markup=False, highlight=False)


_STYLE = {
    TO_SUBMIT: "dim",
    "PENDING": "yellow",
    "PROCESSING": "cyan",
    SUCCEEDED: "green",
    "FAILED": "bold red",
    "CANCELED": "red",
    "GONE": "red",
    "NOT SUBMITTED": "red",
    "UNCONFIRMED": "magenta",
}


def wants_live(err: TextIO, *, no_progress: bool) -> bool:
    """A live display only for a person: a terminal, colours allowed, not turned off."""
    if no_progress or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return err.isatty()
    except (AttributeError, ValueError):
        return False


def interval_from_env() -> float:
    try:
        value = float(os.environ.get("DFR_PROGRESS_INTERVAL", DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def make_progress(
    plan: Plan, records: dict[str, RunRecord], err: TextIO, *, no_progress: bool = False
) -> PlainProgress | LiveProgress:
    """The progress observer for this stream: live on a terminal, plain lines otherwise."""
    if wants_live(err, no_progress=no_progress):
        return LiveProgress(plan, records, err)
    return PlainProgress(plan, records, err, interval=interval_from_env())
