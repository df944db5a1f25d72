"""A fake clock for unit tests of what waits: time moves only when something sleeps."""

from __future__ import annotations


class FakeClock:
    """Call it for the time; `sleep` records the pause and moves the time on by it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
