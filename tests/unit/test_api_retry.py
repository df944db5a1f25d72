"""The retry rule as a table: what follows each outcome of an attempt, for a read
(or an idempotent write) and for a create. A create is sent again only when the
server surely did not act on it (a connection never made, a 429)."""

from __future__ import annotations

import random

import httpx
import pytest

from reconciler.api import RetryPolicy
from reconciler.api.retry import (
    MAY_HAVE_ACTED,
    SURELY_NOT_ACTED,
    Outcome,
    Step,
    next_step,
    outcome_of_error,
    outcome_of_status,
)
from reconciler.errors import UsageError

#: outcome -> (step for a read, step for a create), attempts left.
RULE = {
    Outcome.ANSWERED: (Step.RETURN, Step.RETURN),
    Outcome.NOT_CONNECTED: (Step.SEND_AGAIN, Step.SEND_AGAIN),
    Outcome.RATE_LIMITED: (Step.SEND_AGAIN, Step.SEND_AGAIN),
    Outcome.SERVER_ERROR: (Step.SEND_AGAIN, Step.OUTCOME_UNKNOWN),
    Outcome.LOST: (Step.SEND_AGAIN, Step.OUTCOME_UNKNOWN),
    Outcome.UNSENDABLE: (Step.CANNOT_SEND, Step.CANNOT_SEND),
}

#: The same with the retries spent: only a retry turns into giving up.
RULE_SPENT = {
    Outcome.ANSWERED: (Step.RETURN, Step.RETURN),
    Outcome.NOT_CONNECTED: (Step.GIVE_UP, Step.GIVE_UP),
    Outcome.RATE_LIMITED: (Step.GIVE_UP, Step.GIVE_UP),
    Outcome.SERVER_ERROR: (Step.GIVE_UP, Step.OUTCOME_UNKNOWN),
    Outcome.LOST: (Step.GIVE_UP, Step.OUTCOME_UNKNOWN),
    Outcome.UNSENDABLE: (Step.CANNOT_SEND, Step.CANNOT_SEND),
}


def test_the_table_names_every_outcome() -> None:
    assert set(RULE) == set(RULE_SPENT) == set(Outcome)


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: o.name)
@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_the_rule_while_retries_remain(outcome: Outcome, attempt: int) -> None:
    read, create = RULE[outcome]
    assert next_step(outcome, idempotent=True, attempt=attempt, max_retries=3) is read
    assert next_step(outcome, idempotent=False, attempt=attempt, max_retries=3) is create


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: o.name)
@pytest.mark.parametrize(("attempt", "max_retries"), [(1, 0), (4, 3), (6, 5), (9, 5)])
def test_the_rule_once_retries_are_spent(outcome: Outcome, attempt: int, max_retries: int) -> None:
    read, create = RULE_SPENT[outcome]
    assert next_step(outcome, idempotent=True, attempt=attempt, max_retries=max_retries) is read
    assert next_step(outcome, idempotent=False, attempt=attempt, max_retries=max_retries) is create


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda o: o.name)
def test_a_create_is_sent_again_only_when_surely_not_acted_on(outcome: Outcome) -> None:
    """The rule the whole project rests on, stated once more on its own."""
    steps = {next_step(outcome, idempotent=False, attempt=1, max_retries=5)}
    assert (Step.SEND_AGAIN in steps) == (outcome in SURELY_NOT_ACTED)
    if outcome in MAY_HAVE_ACTED:
        assert steps == {Step.OUTCOME_UNKNOWN}


def test_the_two_sets_do_not_meet() -> None:
    assert not SURELY_NOT_ACTED & MAY_HAVE_ACTED


def test_the_policy_applies_the_rule_with_its_own_max_retries() -> None:
    policy = RetryPolicy(max_retries=2)
    assert policy.next_step(Outcome.LOST, idempotent=True, attempt=2) is Step.SEND_AGAIN
    assert policy.next_step(Outcome.LOST, idempotent=True, attempt=3) is Step.GIVE_UP
    assert policy.next_step(Outcome.LOST, idempotent=False, attempt=1) is Step.OUTCOME_UNKNOWN


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (200, Outcome.ANSWERED),
        (201, Outcome.ANSWERED),
        (204, Outcome.ANSWERED),
        (301, Outcome.ANSWERED),
        (404, Outcome.ANSWERED),
        (422, Outcome.ANSWERED),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.SERVER_ERROR),
        (503, Outcome.SERVER_ERROR),
        (599, Outcome.SERVER_ERROR),
    ],
)
def test_outcome_of_a_status(code: int, outcome: Outcome) -> None:
    assert outcome_of_status(code) is outcome


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ConnectError("refused"), Outcome.NOT_CONNECTED),
        (httpx.ConnectTimeout("timed out"), Outcome.NOT_CONNECTED),
        (httpx.PoolTimeout("no free connection"), Outcome.NOT_CONNECTED),
        (httpx.ReadTimeout("timed out"), Outcome.LOST),
        (httpx.WriteTimeout("timed out"), Outcome.LOST),
        (httpx.ReadError("reset"), Outcome.LOST),
        (httpx.WriteError("broken pipe"), Outcome.LOST),
        (httpx.RemoteProtocolError("disconnected"), Outcome.LOST),
        (httpx.NetworkError("something else"), Outcome.LOST),
        (httpx.ProxyError("proxy"), Outcome.LOST),
        (httpx.UnsupportedProtocol("ftp"), Outcome.UNSENDABLE),
        (httpx.LocalProtocolError("bad header"), Outcome.UNSENDABLE),
    ],
    ids=lambda v: type(v).__name__,
)
def test_outcome_of_a_transport_error(exc: httpx.TransportError, outcome: Outcome) -> None:
    assert outcome_of_error(exc) is outcome


def test_backoff_honours_retry_after_within_the_cap() -> None:
    policy = RetryPolicy(backoff_max=30.0)
    assert policy.backoff(1, 7.0) == 7.0
    assert policy.backoff(1, 3600.0) == 30.0
    assert policy.backoff(1, -5.0) == 0.0


def test_backoff_without_retry_after_is_full_jitter_under_the_ceiling() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=10.0, rng=random.Random(3))
    for attempt in range(1, 10):
        assert 0.0 <= policy.backoff(attempt, None) <= min(10.0, 0.5 * 2 ** (attempt - 1))


def test_a_negative_max_retries_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="max_retries must be 0 or more"):
        RetryPolicy(max_retries=-1)
