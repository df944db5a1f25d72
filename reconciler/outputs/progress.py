"""Progress of a pull, on stderr: a live display on a terminal, one line per run otherwise.

Both are `PullObserver`s (`reconciler.outputs.pull`), in the manner of
`reconciler.progress` for apply:

- `LivePullProgress` (stderr is a terminal, NO_COLOR unset): a rich display
  with a bar per run (bytes, files, rate) while it downloads; each run's
  outcome line scrolls above it when the run is done.
- `PlainPullProgress` (CI logs, pipes): only the outcome line of each run, as it
  ends: `NAME: pulled 5 files into data/x (3 downloaded, 2 reused), 12.4 MB in
  2.1s, 5.9 MB/s`.

Callbacks come from download threads: both are thread-safe. `rich` is imported
only when a live display is made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from reconciler.outputs.pull import CURRENT, FAILED, PULLED, PullResult
from reconciler.textsafe import one_line

__all__ = ["LivePullProgress", "PlainPullProgress", "human_bytes", "outcome_line"]


def human_bytes(count: float) -> str:
    """1.2 MB, 850 kB, 12 B (decimal units, as download tools show them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"  # pragma: no cover - the loop returns first


def outcome_line(result: PullResult, seconds: float | None) -> str:
    """The one line a run's pull ends with."""
    name = one_line(result.name)
    if result.outcome == CURRENT:
        return f"{name}: up to date ({result.files} files)"
    if result.outcome == FAILED:
        return f"{name}: failed: {one_line(result.message)}"
    if result.outcome != PULLED:
        return f"{name}: {result.outcome}: {one_line(result.message)}"
    path = one_line(result.record.path) if result.record is not None else "?"
    line = (
        f"{name}: pulled {result.files} files into {path}"
        f" ({result.downloaded} downloaded, {result.reused} reused), {human_bytes(result.bytes)}"
    )
    if seconds is not None and result.downloaded:
        rate = result.downloaded_bytes / seconds if seconds > 0 else 0.0
        line += f" in {seconds:.1f}s, {human_bytes(rate)}/s downloaded"
    return line


class PlainPullProgress:
    """One line per run as it ends (CI logs and pipes)."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}

    def __enter__(self) -> PlainPullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_started(self, name: str, files: int, to_download: int, size: int) -> None:
        with self._lock:
            self._started[name] = self._clock()

    def bytes_received(self, name: str, count: int) -> None:
        pass

    def file_done(self, name: str) -> None:
        pass

    def run_finished(self, result: PullResult) -> None:
        with self._lock:
            started = self._started.pop(result.name, None)
            seconds = None if started is None else self._clock() - started
            self._stream.write(outcome_line(result, seconds) + "\n")
            self._stream.flush()


class LivePullProgress(PlainPullProgress):
    """A rich display: a bar per downloading run (bytes, files, rate); lines above it."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=stream, highlight=False)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._files: dict[str, list[int]] = {}

    def __enter__(self) -> LivePullProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def run_started(self, name: str, files: int, to_download: int, size: int) -> None:
        super().run_started(name, files, to_download, size)
        with self._lock:
            self._files[name] = [files - to_download, files]
            self._tasks[name] = self._progress.add_task(
                one_line(name), total=size or None, files=self._files_text(name)
            )

    def _files_text(self, name: str) -> str:
        done, total = self._files.get(name, [0, 0])
        return f"{done}/{total} files"

    def bytes_received(self, name: str, count: int) -> None:
        task = self._tasks.get(name)
        if task is not None:
            self._progress.advance(task, count)

    def file_done(self, name: str) -> None:
        with self._lock:
            counts = self._files.get(name)
            task = self._tasks.get(name)
            if counts is None or task is None:
                return
            counts[0] += 1
            self._progress.update(task, files=self._files_text(name))

    def run_finished(self, result: PullResult) -> None:
        with self._lock:
            task = self._tasks.pop(result.name, None)
            started = self._started.pop(result.name, None)
        if task is not None:
            self._progress.remove_task(task)
        seconds = None if started is None else self._clock() - started
        self._progress.console.print(outcome_line(result, seconds), markup=False)
