"""When a request may be sent again, and how long to wait before it is.

Every attempt at a request ends in one `Outcome`; `next_step` is the one rule
that turns it into a `Step`. It is pure (no I/O, no clock) and is tested as a
table in tests/unit/test_api_retry.py.

Reads (GET) and the idempotent writes (cancel, delete) are sent again after
any failure that another attempt may cure: a connection that was never made,
a connection lost or timed out after the request may have left, a 5xx, a 429.

Creating a run costs money and the API has no idempotency key, so a create is
sent again only when the server surely did not act on it:

- the connection was never made (ConnectError, ConnectTimeout, PoolTimeout):
  no byte of the request left this process;
- 429: a rate-limit refusal is given instead of processing the request.

After anything else that may have reached the server (a read timeout, a reset,
a protocol error, any 5xx) its outcome is unknown: the run may exist, and the
caller must look for it before it submits again. This is the rule the whole
project rests on.

`RetryPolicy` holds the numbers (how many retries, the backoff) and the sleep
and random source, injected so that tests run without waiting.
"""

from __future__ import annotations

import email.utils
import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from reconciler.api.models import as_float
from reconciler.errors import UsageError

__all__ = [
    "MAY_HAVE_ACTED",
    "SURELY_NOT_ACTED",
    "Outcome",
    "RetryPolicy",
    "Step",
    "next_step",
    "outcome_of_error",
    "outcome_of_status",
    "retry_after",
]


class Outcome(enum.Enum):
    """What became of one attempt at a request."""

    ANSWERED = "answered"  # any status but 429 and 5xx: the caller maps it
    NOT_CONNECTED = "not connected"  # no byte of the request left this process
    RATE_LIMITED = "rate limited"  # 429: refused instead of processed
    SERVER_ERROR = "server error"  # 5xx: may come after the server acted
    LOST = "lost"  # the connection failed after the request may have left
    UNSENDABLE = "unsendable"  # our own error (a bad URL scheme, an unsendable header)


class Step(enum.Enum):
    """What the client does after an attempt."""

    RETURN = "return the answer to the caller"
    SEND_AGAIN = "wait, then send the request again"
    OUTCOME_UNKNOWN = "raise OutcomeUnknown: the server may have acted"
    GIVE_UP = "raise APIUnavailable: the retries are spent"
    CANNOT_SEND = "raise APIUnavailable at once: sending again cannot help"


#: The only failures after which a create may be sent again.
SURELY_NOT_ACTED = frozenset({Outcome.NOT_CONNECTED, Outcome.RATE_LIMITED})
#: Failures after which the server may have acted on the request unseen.
MAY_HAVE_ACTED = frozenset({Outcome.SERVER_ERROR, Outcome.LOST})

# Connection errors raised before any byte of the request was written.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Errors of our own making (bad URL scheme, unsendable header): retrying cannot help.
_LOCAL = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def next_step(outcome: Outcome, *, idempotent: bool, attempt: int, max_retries: int) -> Step:
    """The rule: what follows attempt number `attempt` (1 for the first) of a request.

    `idempotent` is False for a create: it is sent again only after an outcome
    in SURELY_NOT_ACTED; after one in MAY_HAVE_ACTED its outcome is unknown.
    """
    if outcome is Outcome.ANSWERED:
        return Step.RETURN
    if outcome is Outcome.UNSENDABLE:
        return Step.CANNOT_SEND
    if not idempotent and outcome not in SURELY_NOT_ACTED:
        return Step.OUTCOME_UNKNOWN
    return Step.SEND_AGAIN if attempt <= max_retries else Step.GIVE_UP


def outcome_of_status(status_code: int) -> Outcome:
    if status_code == 429:
        return Outcome.RATE_LIMITED
    if status_code >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.ANSWERED


def outcome_of_error(exc: httpx.TransportError) -> Outcome:
    if isinstance(exc, _LOCAL):
        return Outcome.UNSENDABLE
    if isinstance(exc, _NOT_SENT):
        return Outcome.NOT_CONNECTED
    return Outcome.LOST


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a client sends a request again.

    `max_retries` retries after the first attempt (0: one attempt only); the
    wait before retry N is `Retry-After` when the server sent one, else full
    jitter (AWS architecture blog): uniform in [0, min(backoff_max,
    backoff_base * 2**(N-1))]. A `Retry-After` is capped at `backoff_max` too.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)  # jitter, not crypto

    def __post_init__(self) -> None:
        # Settings may come from flags: refuse bad ones as usage errors, not tracebacks.
        if self.max_retries < 0:
            raise UsageError(f"max_retries must be 0 or more, not {self.max_retries}")

    def next_step(self, outcome: Outcome, *, idempotent: bool, attempt: int) -> Step:
        return next_step(
            outcome, idempotent=idempotent, attempt=attempt, max_retries=self.max_retries
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after attempt number `attempt` failed."""
        if retry_after is not None:
            return min(self.backoff_max, max(0.0, retry_after))
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or HTTP-date), or None."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    seconds = as_float(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    # Measure against the server's own clock when it sends one, so that
    # our clock's skew does not stretch or cut the wait.
    now = time.time()
    date = response.headers.get("Date")
    if date:
        try:
            server_now = email.utils.parsedate_to_datetime(date)
            if server_now.tzinfo is not None:
                now = server_now.timestamp()
        except (TypeError, ValueError, IndexError):
            pass
    return max(0.0, when.timestamp() - now)
