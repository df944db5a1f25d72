"""Seeded fault decisions, the rate limiter and the request counters.

Each kind of decision draws from its own `random.Random` seeded with
`(seed, kind)`, so turning one knob on does not shift what another knob
decides: a test that sets `failure_rate` sees the same 5xx pattern whether or
not `garbage_rate` is also set. For a given seed and request order every
decision is the same on every run of the test.
"""

from __future__ import annotations

import collections
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class Dice:
    """Independent seeded random streams, one per decision kind. Thread-safe."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._streams: dict[str, random.Random] = {}

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._seed = seed
            self._streams.clear()

    def _stream(self, kind: str) -> random.Random:
        stream = self._streams.get(kind)
        if stream is None:
            stream = self._streams[kind] = random.Random(f"{self._seed}/{kind}")
        return stream

    def roll(self, kind: str, rate: float) -> bool:
        """True with probability `rate`; a rate of 0 never draws (stays reproducible)."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._stream(kind).random() < rate

    def uniform(self, kind: str, low: float, high: float) -> float:
        with self._lock:
            return self._stream(kind).uniform(low, high)

    def choice(self, kind: str, options: Sequence[T]) -> T:
        with self._lock:
            return self._stream(kind).choice(options)

    def sample(self, kind: str, options: Sequence[T], k: int) -> list[T]:
        with self._lock:
            return self._stream(kind).sample(list(options), k)


@dataclass(frozen=True)
class WriteFaults:
    """The knobs of one paid, non-idempotent write: what makes it lose its answer or 5xx.

    Fields name `EmulatorConfig` knobs (`lost_next` counts down, the others are
    rates), the dice streams they draw from and the `injected` counters they
    bump. A lost answer and a 5xx "after" hit a write that took effect (answered
    `success`); a 5xx "before" refuses it untouched.
    """

    success: int
    lost_next: str
    lost_rate: str
    after_rate: str
    lost_dice: str
    after_dice: str
    lost_stat: str
    after_stat: str
    before_rate: str | None = None
    before_stat: str = ""

    def before(self, dice: Dice, stats: Stats, config: Any) -> bool:
        """Whether to answer 5xx before acting (then counted as injected)."""
        if self.before_rate is None or not dice.roll(
            self.before_stat, getattr(config, self.before_rate)
        ):
            return False
        stats.injected(self.before_stat)
        return True


def _spec_write(success: int, verb: str) -> WriteFaults:
    return WriteFaults(
        success=success,
        lost_next=f"spec_ambiguous_{verb}s",
        lost_rate=f"spec_ambiguous_{verb}_rate",
        after_rate=f"spec_5xx_after_{verb}_rate",
        lost_dice=f"spec_{verb}_lost",
        after_dice=f"spec_{verb}_5xx_after",
        lost_stat=f"spec_{verb}_lost",
        after_stat=f"spec_{verb}_5xx_after",
        before_rate=f"spec_5xx_before_{verb}_rate",
        before_stat=f"spec_{verb}_5xx_before",
    )


#: Route kind -> its write faults. The run create's dice and counter names are
#: the historical ones, so seeded tests keep seeing the same decisions.
WRITE_FAULTS: dict[str, WriteFaults] = {
    "runs.create": WriteFaults(
        success=201,
        lost_next="ambiguous_posts",
        lost_rate="ambiguous_post_rate",
        after_rate="post_5xx_after_create_rate",
        lost_dice="ambiguous",
        after_dice="post_5xx",
        lost_stat="ambiguous_post",
        after_stat="post_5xx_after_create",
    ),
    "specs.create": _spec_write(201, "create"),
    "specs.update": _spec_write(200, "update"),
    "evaluations.create": WriteFaults(
        success=201,
        lost_next="ambiguous_evaluation_posts",
        lost_rate="ambiguous_evaluation_post_rate",
        after_rate="evaluation_5xx_after_create_rate",
        lost_dice="evaluation_lost",
        after_dice="evaluation_5xx_after",
        lost_stat="evaluation_create_lost",
        after_stat="evaluation_create_5xx_after",
        before_rate="evaluation_5xx_before_create_rate",
        before_stat="evaluation_create_5xx_before",
    ),
}


class RateLimiter:
    """At most `limit` admitted requests in any sliding 1-second window.

    Runs on real time, not the lifecycle clock: clients back off in real seconds.
    Refused requests do not use up the window, so a client that honours
    `Retry-After` gets through.
    """

    WINDOW = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: collections.deque[float] = collections.deque()

    def admit(self, limit: float) -> float | None:
        """None when admitted, else the seconds until a slot frees up."""
        capacity = max(1, math.floor(limit))
        with self._lock:
            now = self._clock()
            while self._admitted and self._admitted[0] <= now - self.WINDOW:
                self._admitted.popleft()
            if len(self._admitted) < capacity:
                self._admitted.append(now)
                return None
            return self._admitted[0] + self.WINDOW - now

    def reset(self) -> None:
        with self._lock:
            self._admitted.clear()


def retry_after_header(wait: float) -> str:
    """`Retry-After` in whole seconds, never 0 (a 0 invites a hot retry loop)."""
    return str(max(1, math.ceil(wait)))


class Stats:
    """Counters of what the emulator saw and did. Thread-safe.

    `requests` is keyed by route kind, which fixes the method for every API
    route: runs.create (POST), runs.get (GET), runs.list (GET), runs.cancel
    (POST), runs.delete (DELETE), specs.get, specs.list (GET), specs.create
    (POST), specs.update (PUT), specs.delete (DELETE); plus
    `unknown` (no such path) and `method_not_allowed`. `requests_by_method`
    counts the same requests by HTTP method. Admin requests are counted apart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: collections.Counter[str] = collections.Counter()
            self._methods: collections.Counter[str] = collections.Counter()
            self._responses: collections.Counter[str] = collections.Counter()
            self._injected: collections.Counter[str] = collections.Counter()
            self._runs: collections.Counter[str] = collections.Counter()
            self._specs: collections.Counter[str] = collections.Counter()
            self._admin = 0

    def request(self, method: str, kind: str) -> None:
        with self._lock:
            self._requests[kind] += 1
            self._methods[method] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[str(status)] += 1

    def injected(self, fault: str, count: int = 1) -> None:
        with self._lock:
            self._injected[fault] += count

    def run_event(self, event: str) -> None:
        with self._lock:
            self._runs[event] += 1

    def spec_event(self, event: str) -> None:
        with self._lock:
            self._specs[event] += 1

    def admin(self) -> None:
        with self._lock:
            self._admin += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "requests_by_method": dict(self._methods),
                "requests_total": sum(self._requests.values()),
                "responses": dict(self._responses),
                "injected": dict(self._injected),
                "injected_total": sum(self._injected.values()),
                "runs_created": self._runs["created"],
                "runs_canceled": self._runs["canceled"],
                "runs_deleted": self._runs["deleted"],
                "runs_forgotten": self._runs["forgotten"],
                "specs_created": self._specs["created"],
                "specs_updated": self._specs["updated"],
                "specs_deleted": self._specs["deleted"],
                "admin_requests": self._admin,
            }


#: What `garbage_rate` answers instead of JSON: (content type, body).
GARBAGE: tuple[tuple[str, bytes], ...] = (
    ("text/html", b"<html><body><h1>Welcome to nginx!</h1></body></html>"),
    ("application/json", b'{"id": "3c90c3cc-0d44-4b50-88'),
    ("text/plain", b"OK"),
    ("application/json", b""),
)

BAD_GATEWAY = (
    b"<html><head><title>502 Bad Gateway</title></head><body>"
    b"<center><h1>502 Bad Gateway</h1></center></body></html>"
)
