"""Client-side pacing: learning the API's rate from the first 429, even spacing,
turns kept after a pause. A fake clock moves only when the client sleeps, so
every figure here is exact."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from support.clocks import FakeClock

from dfr_emulator.faults import RateLimiter, retry_after_header
from reconciler.api import DataframerClient, Pacer, RetryPolicy
from reconciler.api.pacing import LEARN_BACKOFF, LEARN_MARGIN
from reconciler.apply import Applier, ApplyOptions
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import RunRecord

BASE = "https://api.example.com"
KEY = "test-key"


def test_first_429_sets_the_rate_from_what_was_accepted() -> None:
    clock = FakeClock()
    pacer = Pacer(learn=True, clock=clock, sleep=clock.sleep)
    for _ in range(40):
        pacer.acquire()
        pacer.on_success()
        clock.now += 0.04  # 25 per second
    clock.now -= 0.02
    assert pacer.rate is None  # nothing learned before a 429
    pacer.on_rate_limited(sent_at=clock.now)
    # The last second holds 25 accepted requests (at t-0.02, t-0.06, ..., t-0.98).
    assert pacer.rate == pytest.approx(25 * LEARN_MARGIN)
    assert pacer.learned_rate == pacer.rate


def test_429s_of_requests_sent_before_the_rate_was_learned_are_ignored() -> None:
    clock = FakeClock()
    pacer = Pacer(learn=True, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        pacer.on_success()
    in_flight = clock.now
    clock.now += 0.01
    pacer.on_rate_limited(sent_at=clock.now)
    learned = pacer.rate
    assert learned is not None
    assert learned == pytest.approx(10 * LEARN_MARGIN)
    for _ in range(15):  # the rest of the burst that was already on the wire
        pacer.on_rate_limited(sent_at=in_flight)
    assert pacer.rate == learned
    # A 429 for a request paced by the learned rate lowers it again.
    clock.now += 0.5
    pacer.on_rate_limited(sent_at=clock.now)
    assert pacer.rate == pytest.approx(learned * LEARN_BACKOFF)


def test_explicit_rate_is_a_ceiling_that_a_429_lowers() -> None:
    clock = FakeClock()
    pacer = Pacer(max_requests_per_second=5.0, learn=True, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        pacer.on_success()
    pacer.on_rate_limited(sent_at=clock.now)
    assert pacer.rate == pytest.approx(5.0 * LEARN_BACKOFF)  # never up to the 50 seen
    clock.now += 1.5  # the 50 have left the window
    for _ in range(3):
        pacer.on_success()
    pacer.on_rate_limited(sent_at=clock.now)
    assert pacer.rate == pytest.approx(3 * LEARN_BACKOFF)  # the API took only 3 in a second


def test_burst_of_one_spaces_requests_evenly() -> None:
    clock = FakeClock()
    pacer = Pacer(max_requests_per_second=4.0, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.acquire()
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_turns_queued_during_a_pause_are_spaced_after_it() -> None:
    clock = FakeClock()
    pacer = Pacer(max_requests_per_second=4.0, burst=1, clock=clock, sleep=clock.sleep)
    pacer.acquire()  # the one token
    pacer.pause_for(2.0)
    start = clock.now
    sent = []
    for _ in range(3):
        pacer.acquire()
        sent.append(clock.now - start)
    # Not three at once when the pause ends: 2.0, then one every 0.25 s.
    assert sent == pytest.approx([2.0, 2.25, 2.5])


def sliding_window_api(clock: FakeClock, limit: int) -> tuple[httpx.MockTransport, list[int]]:
    """An API that admits `limit` requests per sliding second, as the emulator does."""
    limiter = RateLimiter(clock)
    codes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        wait = limiter.admit(limit)
        if wait is not None:
            codes.append(429)
            return httpx.Response(429, headers={"Retry-After": retry_after_header(wait)})
        codes.append(200)
        clock.now += 0.001  # the answer takes a moment
        return httpx.Response(200, json=[])

    return httpx.MockTransport(handler), codes


def _paced_client(
    clock: FakeClock, transport: httpx.MockTransport, **pacing: Any
) -> DataframerClient:
    """A client on `transport` whose retries and pacing wait on the fake `clock`."""
    return DataframerClient(
        BASE,
        KEY,
        transport=transport,
        retry=RetryPolicy(sleep=clock.sleep),
        pacing=Pacer(**pacing, clock=clock, sleep=clock.sleep),
    )


@pytest.mark.parametrize("limit", [5, 50])
def test_learning_client_spends_only_the_first_429(limit: int) -> None:
    clock = FakeClock()
    transport, codes = sliding_window_api(clock, limit)
    with _paced_client(clock, transport, learn=True) as client:
        for _ in range(6 * limit):
            client.list_runs()
        assert client.stats().rate_limited == 1
    assert codes.count(429) == 1 and codes.count(200) == 6 * limit


def test_client_with_an_even_rate_at_the_quota_gets_no_429() -> None:
    clock = FakeClock()
    transport, codes = sliding_window_api(clock, 10)
    with _paced_client(clock, transport, max_requests_per_second=9.5, burst=1) as client:
        for _ in range(60):
            client.list_runs()
    assert 429 not in codes


def test_without_learning_a_429_only_pauses() -> None:
    clock = FakeClock()
    transport, codes = sliding_window_api(clock, 5)
    with _paced_client(clock, transport) as c:
        for _ in range(30):
            c.list_runs()
    # No pace: every window opens with a burst that ends in a 429.
    assert codes.count(429) > 1


def test_wait_pauses_grow_with_the_age_of_the_youngest_run() -> None:
    clock = FakeClock()
    applier = Applier(
        client=None,  # type: ignore[arg-type]
        store=InMemoryBackend(),  # type: ignore[arg-type]
        options=ApplyOptions(poll_min=0.5, poll_max=30.0, poll_share=0.25),
        clock=clock,
    )
    runs = [
        RunRecord.new(n, spec={}, run_id=f"id-{n}", now="2026-01-01T00:00:00.000Z") for n in "ab"
    ]
    start = clock.now
    applier.submitted_at = {"a": start - 8.0, "b": start - 1.0}
    assert applier._poll_pause(runs[:1], clock.now, start) == 2.0  # a quarter of 8 s
    assert applier._poll_pause(runs, clock.now, start) == 0.5  # b is young: the floor
    # Runs of an earlier apply count from the start of the wait.
    assert applier._poll_pause([RunRecord.new("c", spec={}, run_id="x")], start + 40, start) == 10
    assert applier._poll_pause(runs, start + 1000, start) == 30.0  # --poll-interval caps it
    # 30 s of waiting costs a number of rounds that grows with the log of the duration.
    t, rounds = 0.0, 0
    while t < 30.0:
        t += max(0.5, min(30.0, 0.25 * t))
        rounds += 1
    assert rounds <= 4 + math.ceil(math.log(30 / 2) / math.log(1.25))
