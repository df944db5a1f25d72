"""Client-side pacing shared by every thread that uses one API client.

`Pacer` decides how long a thread must wait before it sends a request. It
combines two things:

- a shared pause: after a 429 the server has told us when it will accept
  requests again (`Retry-After`). Every thread waits until that moment, not
  only the one that got the 429, so that thirty-two threads of `apply` do not
  each spend a request (and a 429) learning the same fact;
- an optional token bucket (`max_requests_per_second`), so a large apply can
  stay under a known quota instead of discovering it by 429s. With
  `adaptive=True` the rate halves on each 429 and creeps back up on success
  (additive increase, multiplicative decrease, as TCP does).

The clock and the sleep function are injected so that tests run without
waiting; the pacer never sleeps while holding its lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Pacer"]

# A bounded number of re-checks after sleeping: with an injected sleep that does
# not move the clock, an unbounded "sleep until the clock says so" would spin.
_MAX_RECHECKS = 8


class Pacer:
    """Thread-safe pause-after-429 plus an optional token bucket."""

    def __init__(
        self,
        *,
        max_requests_per_second: float | None = None,
        adaptive: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests_per_second is not None and not max_requests_per_second > 0:
            raise ValueError("max_requests_per_second must be a positive number")
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._ceiling = max_requests_per_second
        self._rate = max_requests_per_second
        self._adaptive = adaptive and max_requests_per_second is not None
        # Burst of at most one second's worth of requests (and at least one).
        self._capacity = max(1.0, max_requests_per_second or 1.0)
        self._tokens = self._capacity
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._pause_generation = 0
        self.waited_seconds = 0.0

    @property
    def rate(self) -> float | None:
        """The current requests-per-second limit (None: no limit)."""
        with self._lock:
            return self._rate

    def pause_until(self, deadline: float) -> None:
        """Hold every thread until `deadline` (on the pacer's clock)."""
        with self._lock:
            if deadline > self._paused_until:
                self._paused_until = deadline
                self._pause_generation += 1

    def pause_for(self, seconds: float) -> None:
        self.pause_until(self._clock() + max(0.0, seconds))

    def on_rate_limited(self) -> None:
        """A 429 arrived: with adaptive pacing, halve the rate."""
        if not self._adaptive:
            return
        with self._lock:
            assert self._rate is not None and self._ceiling is not None
            self._rate = max(self._ceiling / 64.0, self._rate / 2.0)

    def on_success(self) -> None:
        """A request went through: with adaptive pacing, regain 5% of the ceiling."""
        if not self._adaptive:
            return
        with self._lock:
            assert self._rate is not None and self._ceiling is not None
            if self._rate < self._ceiling:
                self._rate = min(self._ceiling, self._rate + self._ceiling / 20.0)

    def acquire(self) -> float:
        """Wait until this thread may send one request; return the seconds waited."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            if self._rate is not None:
                # Reservation style: the token is taken now, even on credit, and
                # the debt says how long to wait. Threads queue up fairly without
                # holding the lock while they sleep.
                elapsed = max(0.0, now - self._refilled_at)
                self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
                self._refilled_at = now
                self._tokens -= 1.0
                if self._tokens < 0:
                    wait = max(wait, -self._tokens / self._rate)
            generation = self._pause_generation
        waited = 0.0
        for _ in range(_MAX_RECHECKS):
            if wait > 0:
                self._sleep(wait)
                waited += wait
            with self._lock:
                # Only a pause announced while we slept (another thread's 429)
                # makes us wait again; otherwise trust the sleep we did.
                if self._pause_generation == generation:
                    break
                generation = self._pause_generation
                wait = max(0.0, self._paused_until - self._clock())
        if waited:
            with self._lock:
                self.waited_seconds += waited
        return waited
