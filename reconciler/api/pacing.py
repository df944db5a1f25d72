"""Client-side pacing shared by every thread that uses one API client.

`PacingConfig` is the setting (a rate, adaptive or learned, a burst) as the CLI
and dfr.yaml give it; `Pacer` is the running pacer made from it, with its
state. A client is given either (`DataframerClient(pacing=...)`): one `Pacer`
handed to several clients paces them together.

`Pacer` decides how long a thread must wait before it sends a request. It
combines two things:

- a shared pause: after a 429 the server has told us when it will accept
  requests again (`Retry-After`). Every thread waits until that moment, not
  only the one that got the 429, so that thirty-two threads of `apply` do not
  each spend a request (and a 429) learning the same fact;
- an optional token bucket (`max_requests_per_second`), so a large apply can
  stay under a known quota instead of discovering it by 429s. With
  `adaptive=True` the rate halves on each 429 and creeps back up on success
  (additive increase, multiplicative decrease, as TCP does). `burst=1` spaces
  requests evenly, which a server counting requests over a sliding window
  needs (a full bucket plus a second of refill is twice the quota in 1 s);
- with `learn=True` and no rate given, the first 429 sets the rate: the
  requests the server accepted over the last second, less a small margin,
  evenly spaced. So only the first 429 (and those already in flight with it)
  is spent learning the quota; a 429 for a request sent before the rate last
  changed says nothing new and is ignored; a later one lowers the rate again.
  A rate given by the caller is a ceiling: a 429 lowers the pace below it the
  same way (the quota is lower than the caller thought), never above it.

Requests paced by the token bucket start once a pause is over: a thread that
queues during a pause gets its turn after the pause, spaced from the others,
so the end of a pause is not a burst.

The clock and the sleep function are injected so that tests run without
waiting; the pacer never sleeps while holding its lock.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from reconciler.errors import UsageError

__all__ = ["Pacer", "PacingConfig"]

# A bounded number of re-checks after sleeping: with an injected sleep that does
# not move the clock, an unbounded "sleep until the clock says so" would spin.
_MAX_RECHECKS = 8

#: Learning: the server's window is taken to be one second, and the rate is set
#: a little under what it accepted in it, so that the jitter of arrival times
#: does not push a window over the quota.
LEARN_WINDOW = 1.0
LEARN_MARGIN = 0.96
#: A later 429 at a learned rate lowers it by this factor (at least).
LEARN_BACKOFF = 0.9
_MIN_RATE = 0.1


@dataclass(frozen=True)
class PacingConfig:
    """How a client paces its requests (see the module docstring).

    `max_requests_per_second`: a token bucket at that rate (None: no bucket);
    `adaptive`: halve it on a 429, regain it on success; `learn`: without a
    rate, set one from the first 429; `burst`: the bucket's size (default one
    second's worth; 1 spaces requests evenly).
    """

    max_requests_per_second: float | None = None
    adaptive: bool = False
    learn: bool = False
    burst: float | None = None

    def __post_init__(self) -> None:
        # Settings may come from flags: refuse bad ones as usage errors, not tracebacks.
        rate = self.max_requests_per_second
        if rate is not None and not rate > 0:
            raise UsageError(f"the request rate limit must be above 0 per second, not {rate}")


class Pacer:
    """Thread-safe pause-after-429 plus an optional token bucket."""

    @classmethod
    def from_config(
        cls,
        config: PacingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Pacer:
        return cls(
            max_requests_per_second=config.max_requests_per_second,
            adaptive=config.adaptive,
            learn=config.learn,
            burst=config.burst,
            clock=clock,
            sleep=sleep,
        )

    def __init__(
        self,
        *,
        max_requests_per_second: float | None = None,
        adaptive: bool = False,
        learn: bool = False,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_requests_per_second is not None and not max_requests_per_second > 0:
            raise ValueError("max_requests_per_second must be a positive number")
        if burst is not None and not burst >= 1:
            raise ValueError("burst must be 1 or more")
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._ceiling = max_requests_per_second
        self._rate = max_requests_per_second
        self._adaptive = adaptive and max_requests_per_second is not None
        # Burst of at most one second's worth of requests (and at least one).
        self._capacity = burst if burst is not None else max(1.0, max_requests_per_second or 1.0)
        self._tokens = self._capacity
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._pause_generation = 0
        self.waited_seconds = 0.0
        self._learn = learn and not self._adaptive
        self._accepted: collections.deque[float] = collections.deque()  # last LEARN_WINDOW
        self._rate_changed_at = float("-inf")
        #: How the rate was last set by learning (for reports): None until a 429.
        self.learned_rate: float | None = None

    @property
    def clock(self) -> Callable[[], float]:
        """The pacer's clock: `on_rate_limited(sent_at)` takes its readings."""
        return self._clock

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

    def on_rate_limited(self, sent_at: float | None = None) -> None:
        """A 429 arrived for a request sent at `sent_at` (the pacer's clock; None: now).

        Adaptive pacing halves the rate; learning sets it from what the server
        accepted in the last second. A request sent before the rate last
        changed was paced by the old rate: its 429 is ignored.
        """
        if not (self._adaptive or self._learn):
            return
        with self._lock:
            if sent_at is not None and sent_at < self._rate_changed_at:
                return
            now = self._clock()
            if self._adaptive:
                assert self._rate is not None and self._ceiling is not None
                self._rate = max(self._ceiling / 64.0, self._rate / 2.0)
                self._rate_changed_at = now
                return
            self._forget_before(now - LEARN_WINDOW)
            accepted = len(self._accepted)
            if accepted == 0 and self._rate is None:
                return  # nothing to learn from yet: the pause alone
            if self._rate is None:
                rate = accepted / LEARN_WINDOW * LEARN_MARGIN
            else:
                rate = min(self._rate, accepted / LEARN_WINDOW) * LEARN_BACKOFF
            self._rate = max(_MIN_RATE, rate)
            self._capacity = 1.0
            self._tokens = min(self._tokens, 1.0)
            self._rate_changed_at = now
            self.learned_rate = self._rate

    def _forget_before(self, moment: float) -> None:
        while self._accepted and self._accepted[0] <= moment:
            self._accepted.popleft()

    def on_success(self) -> None:
        """A request went through: with adaptive pacing, regain 5% of the ceiling."""
        if self._learn:
            with self._lock:
                now = self._clock()
                self._accepted.append(now)
                self._forget_before(now - LEARN_WINDOW)
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
            spacing = 0.0  # this thread's turn after the end of any pause
            if self._rate is not None:
                # Reservation style: the token is taken now, even on credit, and
                # the debt says how long to wait. Threads queue up fairly without
                # holding the lock while they sleep. During a pause the bucket
                # runs from the pause's end, so the turns are spaced after it.
                start = max(now, self._paused_until)
                elapsed = max(0.0, start - self._refilled_at)
                self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
                self._refilled_at = max(self._refilled_at, start)
                self._tokens -= 1.0
                if self._tokens < 0:
                    spacing = -self._tokens / self._rate
                    wait = start - now + spacing
            generation = self._pause_generation
        waited = 0.0
        for _ in range(_MAX_RECHECKS):
            if wait > 0:
                self._sleep(wait)
                waited += wait
            with self._lock:
                # Only a pause announced while we slept (another thread's 429)
                # makes us wait again (keeping our turn after it); otherwise
                # trust the sleep we did.
                if self._pause_generation == generation:
                    break
                generation = self._pause_generation
                wait = max(0.0, self._paused_until - self._clock()) + spacing
        if waited:
            with self._lock:
                self.waited_seconds += waited
        return waited
