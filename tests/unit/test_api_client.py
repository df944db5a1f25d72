"""Unit tests of the API client, through an injected `httpx.MockTransport`.

No real sleeping: a fake clock whose `sleep` only records and moves time.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support.clocks import FakeClock

from reconciler.api import (
    DEFAULT_TIMEOUT,
    CreateAnswerUnreadable,
    DataframerClient,
    Pacer,
    PacingConfig,
    RetryPolicy,
    Run,
    Spec,
    client_from_env,
    normalize_status,
    timeouts,
)
from reconciler.errors import (
    APIError,
    APIUnavailable,
    AuthError,
    BadAnswer,
    NotFoundError,
    OutcomeUnknown,
    RequestRejected,
    UsageError,
)

KEY = "sk-test-SECRET-7f3a9c0e5b"
BASE = "https://api.example.test"
RUNS = "/api/dataframer/runs/"
RUN_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
BODY = {"spec_id": RUN_ID, "number_of_samples": 10}

Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """A transport handler answering from a list, recording every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def ok(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=data)


def status(code: int, data: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    if data is None:
        return httpx.Response(code, headers=headers)
    return httpx.Response(code, json=data, headers=headers)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(clock: FakeClock) -> Iterator[Callable[..., DataframerClient]]:
    clients: list[DataframerClient] = []

    def factory(
        script: Handler,
        *,
        base_url: str = BASE,
        pacing: Pacer | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        **retry: Any,
    ) -> DataframerClient:
        """A client of `script` on the fake clock; other keywords are RetryPolicy's."""
        client = DataframerClient(
            base_url,
            KEY,
            transport=httpx.MockTransport(script),
            retry=RetryPolicy(**{"sleep": clock.sleep, "rng": random.Random(1234), **retry}),
            pacing=Pacer(clock=clock, sleep=clock.sleep) if pacing is None else pacing,
            timeout=timeout,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


# --------------------------------------------------------------------------
# The happy paths: methods, paths, headers, parsing


def test_create_run_posts_body_and_returns_id(make: Callable[..., DataframerClient]) -> None:
    script = Script(ok({"id": RUN_ID}, 201))
    client = make(script)
    assert client.create_run(BODY).id == RUN_ID
    (request,) = script.requests
    assert request.method == "POST"
    assert request.url.path == RUNS
    assert json.loads(request.content) == BODY
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["User-Agent"].startswith("dfr/")
    assert request.headers["Content-Type"] == "application/json"


def test_every_call_uses_its_path_and_method(make: Callable[..., DataframerClient]) -> None:
    run = {"id": RUN_ID, "status": "PENDING"}
    spec = {"id": "s1", "name": "tickets", "status": "SUCCEEDED"}
    script = Script(
        ok(run), ok([run]), status(200, {}), status(204), ok(spec), ok({**spec, "versions": []})
    )
    script.answers.append(ok([spec]))
    client = make(script)
    assert client.get_run(RUN_ID).status == "PENDING"
    assert [r.id for r in client.list_runs()] == [RUN_ID]
    client.cancel_run(RUN_ID)
    client.delete_run(RUN_ID)
    assert client.get_spec("s1").versions is None
    assert client.get_spec("s1", include_versions=True).versions == ()
    assert [s.name for s in client.list_specs()] == ["tickets"]
    seen = [(r.method, r.url.path, str(r.url.query, "ascii")) for r in script.requests]
    assert seen == [
        ("GET", f"{RUNS}{RUN_ID}/", ""),
        ("GET", RUNS, ""),
        ("POST", f"{RUNS}{RUN_ID}/cancel/", ""),
        ("DELETE", f"{RUNS}{RUN_ID}/", ""),
        ("GET", "/api/dataframer/specs/s1/", ""),
        ("GET", "/api/dataframer/specs/s1/", "include_versions=true"),
        ("GET", "/api/dataframer/specs/", ""),
    ]


def test_ids_are_one_quoted_path_segment(make: Callable[..., DataframerClient]) -> None:
    script = Script(ok({"status": "PENDING"}))
    client = make(script)
    run = client.get_run("../specs/x?y")
    assert script.requests[0].url.raw_path == b"/api/dataframer/runs/..%2Fspecs%2Fx%3Fy/"
    assert run.id == "../specs/x?y"  # filled in from the request when absent


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_run_id_is_refused_before_any_request(
    make: Callable[..., DataframerClient], bad: str
) -> None:
    script = Script(ok({}))
    with pytest.raises(UsageError):
        make(script).get_run(bad)
    assert script.requests == []


def test_base_url_path_prefix_is_kept(make: Callable[..., DataframerClient]) -> None:
    script = Script(ok([]))
    make(script, base_url="https://gw.example.test/prefix/").list_runs()
    assert script.requests[0].url.path == "/prefix/api/dataframer/runs/"


@pytest.mark.parametrize(
    "base_url",
    [
        "https://df-api.dataframer.ai/api/dataframer",
        "https://df-api.dataframer.ai/api/dataframer/",
        "https://df-api.dataframer.ai/api/dataframer/runs/",
        "https://gw.example.test/prefix/api/dataframer",
        "https://df-api.dataframer.ai/api/data-plane",
    ],
)
def test_a_base_url_holding_the_api_path_is_refused_before_any_request(base_url: str) -> None:
    """dfr adds /api/dataframer/... itself: with it in the base every call misses, and a
    404 on a spec reads as 'spec not found' for every run."""
    with pytest.raises(UsageError) as caught:
        DataframerClient(base_url, KEY)
    message = str(caught.value)
    assert "holds the API's own path" in message
    assert "https://" + base_url.split("/")[2] in message  # the address to give instead
    assert KEY not in message


def test_list_accepts_a_results_wrapper(make: Callable[..., DataframerClient]) -> None:
    client = make(Script(ok({"results": [{"id": "a"}, {"id": "b"}]})))
    assert [r.id for r in client.list_runs()] == ["a", "b"]


# --------------------------------------------------------------------------
# Status codes on reads


@pytest.mark.parametrize("code", [401, 403])
def test_auth_errors_name_the_variable(make: Callable[..., DataframerClient], code: int) -> None:
    script = Script(status(code, {"detail": "Invalid token"}))
    with pytest.raises(AuthError) as info:
        make(script).get_run(RUN_ID)
    assert "DATAFRAMER_API_KEY" in str(info.value)
    assert str(code) in str(info.value)
    assert info.value.status_code == code
    assert len(script.requests) == 1


def test_auth_error_message_reads_well(make: Callable[..., DataframerClient]) -> None:
    with pytest.raises(AuthError) as info:
        make(Script(status(401))).list_runs()
    assert str(info.value) == (
        f"the API refused the key in DATAFRAMER_API_KEY (401 Unauthorized for GET {RUNS})"
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_run(RUN_ID),
        lambda c: c.cancel_run(RUN_ID),
        lambda c: c.delete_run(RUN_ID),
        lambda c: c.get_spec("s1"),
    ],
)
def test_404_is_not_found(
    make: Callable[..., DataframerClient], call: Callable[[DataframerClient], Any]
) -> None:
    script = Script(status(404, {"detail": "Not found."}))
    with pytest.raises(NotFoundError) as info:
        call(make(script))
    assert "not found" in str(info.value)
    assert info.value.status_code == 404
    assert len(script.requests) == 1


def test_404_on_a_list_points_at_the_url(make: Callable[..., DataframerClient]) -> None:
    with pytest.raises(NotFoundError, match="check the API URL"):
        make(Script(status(404))).list_specs()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "detail": [
                    {
                        "loc": ["body", "number_of_samples"],
                        "msg": "must be <= 20000",
                        "type": "value_error",
                    }
                ]
            },
            "number_of_samples: must be <= 20000",
        ),
        ({"detail": "Spec is not in SUCCEEDED status"}, "Spec is not in SUCCEEDED status"),
        ({"error": "run is already finished"}, "run is already finished"),
        ({"error": {"message": "quota exceeded"}}, "quota exceeded"),
        ({"message": "bad things"}, "bad things"),
        (
            {"number_of_samples": ["Ensure this value is less than or equal to 20000."]},
            "number_of_samples: Ensure this value is less than or equal to 20000.",
        ),
        ({"non_field_errors": ["spec and version mismatch"]}, "spec and version mismatch"),
        (
            {
                "detail": [
                    {"loc": ["body", "a"], "msg": "x"},
                    {"loc": ["body", "b", 0], "msg": "y"},
                ]
            },
            "a: x; b.0: y",
        ),
    ],
)
def test_rejections_carry_the_api_message(
    make: Callable[..., DataframerClient], body: Any, expected: str
) -> None:
    script = Script(status(422, body))
    with pytest.raises(RequestRejected) as info:
        make(script).create_run(BODY)
    assert str(info.value) == f"POST {RUNS} was rejected (422 Unprocessable Entity): {expected}"
    assert info.value.status_code == 422
    assert len(script.requests) == 1


def test_rejection_with_a_text_body_is_one_line(make: Callable[..., DataframerClient]) -> None:
    script = Script(httpx.Response(409, text="run is\n  not cancellable " + "x" * 500))
    with pytest.raises(RequestRejected) as info:
        make(script).cancel_run(RUN_ID)
    message = str(info.value)
    assert "\n" not in message
    assert "409 Conflict): run is not cancellable" in message
    assert len(message) < 400


@pytest.mark.parametrize("code", [400, 405, 409, 410, 422])
def test_other_4xx_are_rejections_without_retry(
    make: Callable[..., DataframerClient], code: int
) -> None:
    script = Script(status(code, {"detail": "no"}))
    with pytest.raises(RequestRejected) as info:
        make(script).get_run(RUN_ID)
    assert info.value.status_code == code
    assert len(script.requests) == 1


def test_redirect_is_reported_not_followed(make: Callable[..., DataframerClient]) -> None:
    script = Script(status(301, headers={"Location": "https://elsewhere.test/api/"}))
    with pytest.raises(BadAnswer, match=r"redirect to https://elsewhere\.test/api/"):
        make(script).create_run(BODY)
    assert len(script.requests) == 1


@pytest.mark.parametrize("code", [500, 502, 503, 504, 429])
def test_reads_retry_5xx_and_429_then_succeed(
    make: Callable[..., DataframerClient], clock: FakeClock, code: int
) -> None:
    script = Script(status(code), status(code), ok({"id": RUN_ID, "status": "SUCCEEDED"}))
    client = make(script)
    assert client.get_run(RUN_ID).status == "SUCCEEDED"
    assert len(script.requests) == 3
    assert len(clock.sleeps) == 2
    stats = client.stats()
    assert stats.retries == 2
    assert stats.requests == {"GET": 3}
    assert stats.rate_limited == (2 if code == 429 else 0)
    assert stats.server_errors == (0 if code == 429 else 2)


def test_exhausted_retries_say_what_happened(make: Callable[..., DataframerClient]) -> None:
    script = Script(status(503))
    with pytest.raises(APIUnavailable) as info:
        make(script).list_runs()
    assert str(info.value) == f"GET {RUNS}: 503 Service Unavailable after 6 attempts"
    assert info.value.status_code == 503
    assert len(script.requests) == 6


def test_max_retries_zero_means_one_attempt(make: Callable[..., DataframerClient]) -> None:
    script = Script(status(502))
    with pytest.raises(APIUnavailable, match="after 1 attempts"):
        make(script, max_retries=0).get_run(RUN_ID)
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("pool"),
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_reads_retry_transport_errors(
    make: Callable[..., DataframerClient], exc: Exception
) -> None:
    script = Script(exc, ok({"id": RUN_ID}))
    client = make(script)
    assert client.get_run(RUN_ID).id == RUN_ID
    assert len(script.requests) == 2
    assert client.stats().transport_errors == 1


def test_connection_refused_message(make: Callable[..., DataframerClient]) -> None:
    script = Script(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(APIUnavailable) as info:
        make(script, max_retries=2).get_spec("s1")
    assert str(info.value) == (
        "GET /api/dataframer/specs/s1/: could not connect to api.example.test"
        " ([Errno 111] Connection refused) after 3 attempts"
    )


def test_read_timeout_message(make: Callable[..., DataframerClient]) -> None:
    script = Script(httpx.ReadTimeout("timed out"))
    with pytest.raises(APIUnavailable, match=r"no answer within 2 s \(read timeout\)"):
        make(script, timeout=timeouts(2.0), max_retries=1).list_runs()


def test_delete_whose_first_answer_was_lost_counts_404_as_done(
    make: Callable[..., DataframerClient],
) -> None:
    script = Script(httpx.ReadTimeout("timed out"), status(404))
    make(script).delete_run(RUN_ID)
    assert len(script.requests) == 2


# --------------------------------------------------------------------------
# Backoff, jitter, Retry-After


def test_full_jitter_stays_within_the_exponential_ceiling(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    for seed in range(20):
        clock.sleeps.clear()
        client = make(
            Script(status(503)),
            rng=random.Random(seed),
            max_retries=8,
            backoff_base=0.5,
            backoff_max=10.0,
        )
        with pytest.raises(APIUnavailable):
            client.list_runs()
        assert len(clock.sleeps) == 8
        for attempt, delay in enumerate(clock.sleeps):
            assert 0.0 <= delay <= min(10.0, 0.5 * 2**attempt)


def test_jitter_is_random_but_seeded(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    def run(seed: int) -> list[float]:
        clock.sleeps.clear()
        with pytest.raises(APIUnavailable):
            make(Script(status(500)), rng=random.Random(seed), max_retries=3).list_runs()
        return list(clock.sleeps)

    assert run(7) == run(7)
    assert run(7) != run(8)
    assert len(set(run(9))) == 3  # not a constant step


def test_retry_after_seconds_is_honoured(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    script = Script(status(429, headers={"Retry-After": "7"}), ok([]))
    assert make(script).list_runs() == []
    assert clock.sleeps == [7.0]


def test_retry_after_on_503_is_honoured(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    script = Script(status(503, headers={"Retry-After": "2.5"}), ok([]))
    make(script).list_runs()
    assert clock.sleeps == [2.5]


def test_retry_after_http_date_uses_the_servers_date(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    server_now = 1_700_000_000.0
    headers = {
        "Date": email.utils.formatdate(server_now, usegmt=True),
        "Retry-After": email.utils.formatdate(server_now + 12, usegmt=True),
    }
    script = Script(status(429, headers=headers), ok([]))
    make(script).list_runs()
    assert clock.sleeps == [12.0]


def test_retry_after_http_date_without_date_uses_our_clock(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    retry_at = email.utils.formatdate(time.time() + 20, usegmt=True)
    script = Script(status(503, headers={"Retry-After": retry_at}), ok([]))
    make(script).list_runs()
    (delay,) = clock.sleeps
    assert 17.0 <= delay <= 20.0


def test_retry_after_is_capped_and_past_dates_are_zero(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    script = Script(
        status(429, headers={"Retry-After": "3600"}),
        status(429, headers={"Retry-After": past}),
        ok([]),
    )
    make(script, backoff_max=30.0).list_runs()
    assert clock.sleeps == [30.0]  # and a zero wait is not slept at all


def test_unreadable_retry_after_falls_back_to_jitter(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    script = Script(status(429, headers={"Retry-After": "soon-ish"}), ok([]))
    make(script, backoff_base=0.5).list_runs()
    (delay,) = clock.sleeps
    assert 0.0 <= delay <= 0.5


# --------------------------------------------------------------------------
# create_run: never sent twice unless the server surely did not act


@pytest.mark.parametrize("code", [500, 502, 503, 504, 599])
def test_create_is_not_retried_on_5xx(make: Callable[..., DataframerClient], code: int) -> None:
    script = Script(status(code), ok({"id": RUN_ID}))
    with pytest.raises(OutcomeUnknown) as info:
        make(script).create_run(BODY)
    assert len(script.requests) == 1
    assert "may or may not have been created" in str(info.value)
    assert "look for it before submitting again" in str(info.value)
    assert info.value.status_code == code


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.WriteTimeout("timed out"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
        httpx.WriteError("[Errno 32] Broken pipe"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.NetworkError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_create_is_not_retried_after_the_request_may_have_left(
    make: Callable[..., DataframerClient], exc: Exception
) -> None:
    script = Script(exc, ok({"id": RUN_ID}))
    client = make(script)
    with pytest.raises(OutcomeUnknown, match="may or may not have been created"):
        client.create_run(BODY)
    assert len(script.requests) == 1
    assert client.stats().retries == 0


def test_create_outcome_unknown_message(make: Callable[..., DataframerClient]) -> None:
    with pytest.raises(OutcomeUnknown) as info:
        make(Script(httpx.ReadTimeout("timed out")), timeout=timeouts(30.0)).create_run(BODY)
    assert str(info.value) == (
        f"POST {RUNS}: no answer within 30 s (read timeout); the run may or may not have"
        " been created, and dfr will look for it before submitting again"
    )


def test_create_is_retried_on_429_with_retry_after(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    script = Script(status(429, headers={"Retry-After": "3"}), ok({"id": RUN_ID}, 201))
    client = make(script)
    assert client.create_run(BODY).id == RUN_ID
    assert len(script.requests) == 2
    assert clock.sleeps == [3.0]
    assert client.stats().rate_limited == 1


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.PoolTimeout("no free connection"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_create_is_retried_when_never_sent(
    make: Callable[..., DataframerClient], exc: Exception
) -> None:
    script = Script(exc, ok({"id": RUN_ID}))
    assert make(script).create_run(BODY).id == RUN_ID
    assert len(script.requests) == 2


def test_create_429_forever_says_nothing_was_created(
    make: Callable[..., DataframerClient],
) -> None:
    script = Script(status(429))
    with pytest.raises(APIUnavailable) as info:
        make(script).create_run(BODY)
    assert str(info.value) == (
        f"POST {RUNS}: 429 Too Many Requests after 6 attempts; no run was created"
    )
    assert not isinstance(info.value, OutcomeUnknown)
    assert len(script.requests) == 6


def test_create_429_then_5xx_is_unknown(make: Callable[..., DataframerClient]) -> None:
    script = Script(status(429), status(502), ok({"id": RUN_ID}))
    with pytest.raises(OutcomeUnknown):
        make(script).create_run(BODY)
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    "exc",
    [httpx.UnsupportedProtocol("no such scheme"), httpx.LocalProtocolError("bad header")],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize("create", [True, False], ids=["create", "read"])
def test_a_request_we_cannot_send_is_not_sent_again(
    make: Callable[..., DataframerClient], exc: Exception, create: bool
) -> None:
    """Our own error (a bad scheme, an unsendable header): no byte left, and retrying
    cannot help. Nothing was created, so it is no OutcomeUnknown."""
    script = Script(exc, ok({"id": RUN_ID}))
    client = make(script)
    with pytest.raises(APIUnavailable) as info:
        client.create_run(BODY) if create else client.get_run(RUN_ID)
    assert "could not send the request" in str(info.value)
    assert not isinstance(info.value, OutcomeUnknown)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(script.requests) == 1
    assert client.stats().retries == 0 and client.stats().transport_errors == 0


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(201, text="<html>created</html>"),
        httpx.Response(201, json={"run": RUN_ID}),
        httpx.Response(201, json=[RUN_ID]),
        httpx.Response(201, json={"id": ""}),
        httpx.Response(204),
    ],
    ids=["html", "no-id", "list", "empty-id", "no-body"],
)
def test_create_2xx_without_id_is_unknown_and_bad(
    make: Callable[..., DataframerClient], answer: httpx.Response
) -> None:
    script = Script(answer)
    with pytest.raises(CreateAnswerUnreadable) as info:
        make(script).create_run(BODY)
    assert isinstance(info.value, OutcomeUnknown)
    assert isinstance(info.value, BadAnswer)
    assert "probably created" in str(info.value)
    assert len(script.requests) == 1


def test_create_accepts_a_numeric_id(make: Callable[..., DataframerClient]) -> None:
    assert make(Script(ok({"id": 42}))).create_run(BODY).id == "42"


@pytest.mark.parametrize("code", [401, 403, 404, 400])
def test_create_refusals(make: Callable[..., DataframerClient], code: int) -> None:
    script = Script(status(code, {"detail": "Spec not found"}))
    with pytest.raises((AuthError, RequestRejected)) as info:
        make(script).create_run(BODY)
    assert isinstance(info.value, AuthError if code in (401, 403) else RequestRejected)
    assert len(script.requests) == 1


# --------------------------------------------------------------------------
# Bad answers


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (httpx.Response(200, text="<html>Bad gateway</html>"), lambda c: c.get_run(RUN_ID)),
        (httpx.Response(200, text=""), lambda c: c.list_runs()),
        (httpx.Response(200, content=b"\xff\xfe\x00garbage"), lambda c: c.get_spec("s")),
        (httpx.Response(200, json=[{"id": RUN_ID}]), lambda c: c.get_run(RUN_ID)),
        (httpx.Response(200, json={"id": RUN_ID}), lambda c: c.list_runs()),
        (httpx.Response(200, json=["a", "b"]), lambda c: c.list_specs()),
        (httpx.Response(200, json="PENDING"), lambda c: c.get_run(RUN_ID)),
    ],
    ids=["html", "empty", "binary", "list-for-object", "object-for-list", "strings", "scalar"],
)
def test_bad_answers(
    make: Callable[..., DataframerClient],
    answer: httpx.Response,
    call: Callable[[DataframerClient], Any],
) -> None:
    with pytest.raises(BadAnswer) as info:
        call(make(Script(answer)))
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 300
    assert not isinstance(info.value, OutcomeUnknown)


def test_bad_answer_shows_a_short_excerpt_only(make: Callable[..., DataframerClient]) -> None:
    body = "<html><body>" + "lorem ipsum " * 1000 + "</body></html>"
    answer = httpx.Response(200, text=body, headers={"X-Secret-Header": "hdr-value"})
    with pytest.raises(BadAnswer) as info:
        make(Script(answer)).get_run(RUN_ID)
    message = str(info.value)
    assert "<html><body>lorem ipsum" in message
    assert "hdr-value" not in message
    assert len(message) < 250


# --------------------------------------------------------------------------
# Secrets and URLs


def _every_error(make: Callable[..., DataframerClient]) -> list[BaseException]:
    echo = {"detail": f"bad token {KEY}", "headers": {"authorization": f"Bearer {KEY}"}}
    cases: list[tuple[Any, Callable[[DataframerClient], Any]]] = [
        (status(401, echo), lambda c: c.get_run(RUN_ID)),
        (status(403, echo), lambda c: c.list_runs()),
        (status(404, echo), lambda c: c.get_run(RUN_ID)),
        (status(404, echo), lambda c: c.list_runs()),
        (status(422, echo), lambda c: c.create_run(BODY)),
        (status(409, echo), lambda c: c.cancel_run(RUN_ID)),
        (status(503, echo), lambda c: c.list_runs()),
        (status(503, echo), lambda c: c.create_run(BODY)),
        (status(429, echo), lambda c: c.create_run(BODY)),
        (httpx.Response(200, text=f"oops Bearer {KEY}"), lambda c: c.get_run(RUN_ID)),
        (httpx.Response(201, text=f"oops Bearer {KEY}"), lambda c: c.create_run(BODY)),
        (status(302, headers={"Location": f"https://x.test/?k={KEY}"}), lambda c: c.list_runs()),
        (httpx.ReadTimeout(f"timeout {KEY}"), lambda c: c.create_run(BODY)),
        (httpx.ConnectError(f"refused {KEY}"), lambda c: c.get_run(RUN_ID)),
        (httpx.RemoteProtocolError(f"closed {KEY}"), lambda c: c.delete_run(RUN_ID)),
    ]
    errors: list[BaseException] = []
    for answer, call in cases:
        with pytest.raises(APIError) as info:
            call(make(Script(answer), max_retries=1))
        errors.append(info.value)
    return errors


def test_the_key_never_leaks(
    make: Callable[..., DataframerClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors = _every_error(make)
    assert len({type(e) for e in errors}) >= 6
    client = make(Script(ok([])))
    texts = [repr(client), str(client), repr(client.stats())]
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), str(error.__cause__)]
        texts.append(str(getattr(error, "hint", "")))
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert caplog.records  # the retries were logged
    for text in texts:
        assert KEY not in text


def test_errors_do_not_chain_transport_exceptions(make: Callable[..., DataframerClient]) -> None:
    # A chained httpx exception would put its request (and headers) in tracebacks.
    with pytest.raises(OutcomeUnknown) as info:
        make(Script(httpx.ReadTimeout("t"))).create_run(BODY)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com",
        "http://10.0.0.5:8080",
        "http://[2001:db8::1]/",
        "http://localhostx",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    with pytest.raises(UsageError) as info:
        DataframerClient(url, KEY)
    assert "https://" in str(info.value)
    assert "DATAFRAMER_API_KEY" in str(info.value)
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080",
        "http://127.9.9.9",
        "http://localhost:5000/",
        "http://LOCALHOST",
        "http://[::1]:8080",
        "https://api.example.com",
    ],
)
def test_loopback_http_and_https_are_allowed(url: str) -> None:
    with DataframerClient(url, KEY) as client:
        assert client.base_url.startswith(("http://", "https://"))
        assert not client.base_url.endswith("/")


def test_insecure_http_can_be_allowed_explicitly() -> None:
    with DataframerClient("http://api.example.com", KEY, allow_insecure_http=True) as client:
        assert client.base_url == "http://api.example.com"


@pytest.mark.parametrize(
    "url", ["ftp://api.example.com", "api.example.com", "", "https://user:pw@api.example.com"]
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        DataframerClient(url, KEY)


@pytest.mark.parametrize("key", ["", "   ", "\n"])
def test_empty_key_is_refused(key: str) -> None:
    with pytest.raises(UsageError, match="DATAFRAMER_API_KEY"):
        DataframerClient(BASE, key)


@pytest.mark.parametrize("key", ["abc def", "abc\ndef", "clé-secrète"])
def test_unsendable_key_is_refused_without_echo(key: str) -> None:
    with pytest.raises(UsageError, match="DATAFRAMER_API_KEY") as info:
        DataframerClient(BASE, key)
    assert key not in str(info.value)


@pytest.mark.parametrize("key", ["k", "abc1234", "  sk-12\n"])
def test_a_key_shorter_than_8_characters_is_refused(key: str) -> None:
    """A key that short is a mistake (a placeholder, a cut-off paste), and it cannot be
    told apart from ordinary text when it is scrubbed from messages."""
    with pytest.raises(UsageError, match="shorter than 8 characters") as info:
        DataframerClient(BASE, key)
    assert "DATAFRAMER_API_KEY" in str(info.value)
    if len(key.strip()) > 1:
        assert key.strip() not in str(info.value)


def _rejection(key: str, detail: str) -> str:
    """The message of a 400 whose body echoes `detail`, from a client holding `key`."""
    answer = httpx.Response(400, json={"detail": detail})
    transport = httpx.MockTransport(lambda request: answer)
    with (
        DataframerClient(
            BASE, key, transport=transport, retry=RetryPolicy(max_retries=0)
        ) as client,
        pytest.raises(RequestRejected) as info,
    ):
        client.create_run(BODY)
    return str(info.value)


def test_the_key_is_redacted_as_a_whole_token_never_inside_words() -> None:
    key = "anything"  # the emulator's documented key: also an English word
    message = _rejection(
        key, "anything goes: Bearer anything, token=anything&x=%3Danything; anythingelse, nothing"
    )
    assert "*** goes: Bearer ***, token=***&x=%3D***; anythingelse, nothing" in message


def test_our_own_words_survive_a_key_that_is_part_of_them() -> None:
    """Substring redaction turned "dfr will look for it" into "dfr will loo*** for it"."""
    message = _rejection("ataframe", "refused")
    assert "POST /api/dataframer/runs/ was rejected" in message and "***" not in message


def test_a_long_key_is_redacted_even_inside_a_longer_token() -> None:
    """A key of 16 characters or more is no ordinary word: it goes wherever it is."""
    message = _rejection(KEY, f"x{KEY}y {KEY}{KEY} %2F{KEY}")
    assert KEY not in message and "x***y ****** %2F***" in message


def test_key_is_stripped_of_surrounding_newline(make: Callable[..., DataframerClient]) -> None:
    script = Script(ok([]))
    with DataframerClient(BASE, KEY + "\n", transport=httpx.MockTransport(script)) as client:
        client.list_runs()
    assert script.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_repr_shows_the_url_not_the_key() -> None:
    with DataframerClient(BASE, KEY) as client:
        assert repr(client) == f"DataframerClient(base_url='{BASE}')"


@pytest.mark.parametrize(
    "kw",
    [
        lambda: {"retry": RetryPolicy(max_retries=-1)},
        lambda: {"pacing": PacingConfig(max_requests_per_second=0.0)},
        lambda: {"pool_size": 0},
    ],
    ids=["max_retries", "max_requests_per_second", "pool_size"],
)
def test_bad_settings_are_usage_errors(kw: Callable[[], dict[str, Any]]) -> None:
    with pytest.raises(UsageError):
        DataframerClient(BASE, KEY, **kw())


def test_client_from_env() -> None:
    env = {"DATAFRAMER_API_KEY": KEY, "DATAFRAMER_BASE_URL": "https://env.example.test"}
    with client_from_env(None, environ=env) as client:
        assert client.base_url == "https://env.example.test"
    with client_from_env("http://127.0.0.1:9", environ=env) as client:
        assert client.base_url == "http://127.0.0.1:9"
    with client_from_env(None, environ={"DATAFRAMER_API_KEY": KEY}) as client:
        assert client.base_url == "https://df-api.dataframer.ai"
    with pytest.raises(UsageError, match="DATAFRAMER_API_KEY"):
        client_from_env(None, environ={})
    with pytest.raises(UsageError):
        client_from_env("http://api.example.com", environ=env)
    with client_from_env("http://api.example.com", environ=env, allow_insecure_http=True) as c:
        assert c.base_url == "http://api.example.com"


def test_context_manager_closes_the_pool() -> None:
    with DataframerClient(BASE, KEY) as client:
        pass
    assert client._http.is_closed


# --------------------------------------------------------------------------
# Tolerant parsing


FULL_RUN = {
    "id": RUN_ID,
    "status": "SUCCEEDED",
    "spec_id": "spec-1",
    "spec_name": "tickets",
    "spec_version": 2,
    "created_at": "2026-01-02T03:04:05Z",
    "completed_at": "2026-01-02T04:00:00Z",
    "created_by_email": "a@example.test",
    "dataset_id": "ds-1",
    "dataset_name": "support",
    "dataset_type": "SINGLE_FILE",
    "samples_completed": 10,
    "samples_failed": 0,
    "total_cost": 1.25,
    "generated_files": [{"id": "f1", "path": "out.jsonl", "file_type": "jsonl", "size_bytes": 9}],
    "runtime_params": {"number_of_samples": 10, "generation_model": "openai/gpt-oss-120b"},
    "brand_new_field": {"x": 1},
}


def test_full_run_parses() -> None:
    run = Run.from_json(FULL_RUN)
    assert run.id == RUN_ID
    assert run.status == "SUCCEEDED" and run.is_terminal
    assert run.spec_version == 2
    assert run.total_cost == 1.25
    assert run.generated_files[0].path == "out.jsonl"
    assert run.generated_files[0].size_bytes == 9
    assert run.runtime_params == FULL_RUN["runtime_params"]
    assert run.extra == {"brand_new_field": {"x": 1}}
    assert run.raw == FULL_RUN


def test_empty_run_parses_to_nones() -> None:
    run = Run.from_json({})
    assert run.id == ""
    assert run.status is None and not run.is_terminal
    assert run.generated_files == () and run.runtime_params is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IN_PROGRESS", "PROCESSING"),
        ("PROCESSING", "PROCESSING"),
        ("in_progress", "PROCESSING"),
        ("PENDING", "PENDING"),
        ("SUCCEEDED", "SUCCEEDED"),
        ("FAILED", "FAILED"),
        ("CANCELED", "CANCELED"),
        ("CANCELLED", "CANCELED"),
        ("QUEUED_FOR_GPU", "QUEUED_FOR_GPU"),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_status_normalisation(raw: Any, expected: str | None) -> None:
    assert normalize_status(raw) == expected
    assert Run.from_json({"status": raw}).status == expected


def test_both_status_spellings_through_get_run(make: Callable[..., DataframerClient]) -> None:
    client = make(Script(ok({"status": "IN_PROGRESS"}), ok({"status": "PROCESSING"})))
    first, second = client.get_run("a"), client.get_run("b")
    assert first.status == second.status == "PROCESSING"
    assert (first.raw_status, second.raw_status) == ("IN_PROGRESS", "PROCESSING")
    assert not first.is_terminal


def test_a_failed_run_has_no_reason_field_and_none_is_invented() -> None:
    # The SDK's run model has no failure reason: keys an old API sent are only extras.
    run = Run.from_json({"status": "FAILED", "error": "boom", "samples_failed": 3})
    assert not hasattr(run, "failure_reason")
    assert run.extra == {"error": "boom"} and run.samples_failed == 3


@pytest.mark.parametrize(
    ("raw", "as_int", "as_float"),
    [
        ("12", 12, 12.0),
        (" 12 ", 12, 12.0),
        ("1.5", None, 1.5),
        ("12abc", None, None),
        ("$1.20", None, None),
        ("NaN", None, None),
        ("", None, None),
        (True, None, None),
        (12.0, 12, 12.0),
        (float("inf"), None, None),
        ([1], None, None),
        (None, None, None),
    ],
)
def test_numbers_are_coerced_only_when_clean(
    raw: Any, as_int: int | None, as_float: float | None
) -> None:
    run = Run.from_json({"samples_completed": raw, "total_cost": raw, "spec_version": raw})
    assert run.samples_completed == as_int
    assert run.spec_version == as_int
    assert run.total_cost == as_float


def test_wrong_typed_fields_become_none() -> None:
    run = Run.from_json(
        {"id": 7, "spec_id": ["x"], "runtime_params": "n=10", "generated_files": "a.jsonl"}
    )
    assert run.id == "7"
    assert run.spec_id is None
    assert run.runtime_params is None
    assert run.generated_files == ()


def test_spec_parses_tolerantly() -> None:
    spec = Spec.from_json(
        {
            "id": "s1",
            "name": "tickets",
            "status": "SUCCEEDED",
            "latest_version": "3",
            "versions": [{"version": 1, "created_at": "t1"}, {"version_number": "2"}, 3],
            "owner": "team-a",
        }
    )
    assert spec.status == "SUCCEEDED"
    assert spec.latest_version == 3
    assert spec.versions is not None
    assert [v.version for v in spec.versions] == [1, 2, 3]
    assert spec.extra == {"owner": "team-a"}
    assert Spec.from_json({}, fallback_id="s9").id == "s9"


def test_list_keeps_unknown_statuses(make: Callable[..., DataframerClient]) -> None:
    runs = make(Script(ok([{"id": "a", "status": "ARCHIVED"}, {"id": "b"}]))).list_runs()
    assert [r.status for r in runs] == ["ARCHIVED", None]


# --------------------------------------------------------------------------
# Pacing, counters, threads


def test_pacer_holds_every_caller_until_the_pause_ends(clock: FakeClock) -> None:
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    assert pacer.acquire() == 0.0
    pacer.pause_for(5.0)
    assert pacer.acquire() == 5.0
    assert pacer.acquire() == 0.0
    assert clock.sleeps == [5.0]


def test_token_bucket_paces_requests(clock: FakeClock) -> None:
    pacer = Pacer(max_requests_per_second=2.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        pacer.acquire()
    # Two in the first burst, then one every half second.
    assert clock.sleeps == [0.5, 0.5, 0.5]


def test_adaptive_rate_halves_on_429_and_recovers(clock: FakeClock) -> None:
    pacer = Pacer(max_requests_per_second=8.0, adaptive=True, clock=clock, sleep=clock.sleep)
    pacer.on_rate_limited()
    pacer.on_rate_limited()
    assert pacer.rate == 2.0
    for _ in range(100):
        pacer.on_success()
    assert pacer.rate == 8.0


def test_invalid_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(max_requests_per_second=0)


def test_client_rate_limit_is_applied(
    make: Callable[..., DataframerClient], clock: FakeClock
) -> None:
    client = make(
        Script(ok([])), pacing=Pacer(max_requests_per_second=1.0, clock=clock, sleep=clock.sleep)
    )
    for _ in range(3):
        client.list_runs()
    assert clock.sleeps == [1.0, 1.0]
    assert client.stats().waited_seconds == 2.0


def test_a_429_pauses_the_other_threads_too() -> None:
    """Real threads and a real (short) clock: B must not send during A's pause."""
    first_429_sent = threading.Event()
    times: dict[str, list[float]] = {"a": [], "b": []}

    def handler(request: httpx.Request) -> httpx.Response:
        who = request.url.path.split("/")[-2]
        times[who].append(time.monotonic())
        if who == "a" and len(times["a"]) == 1:
            first_429_sent.set()
            return status(429, headers={"Retry-After": "0.3"})
        return ok({"id": who})

    with DataframerClient(BASE, KEY, transport=httpx.MockTransport(handler)) as client:
        thread = threading.Thread(target=client.get_run, args=("a",))
        thread.start()
        assert first_429_sent.wait(5)
        time.sleep(0.02)  # let A record the pause
        client.get_run("b")
        thread.join(5)
        assert client.stats().rate_limited == 1
    assert times["b"][0] - times["a"][0] >= 0.25
    assert len(times["a"]) == 2 and len(times["b"]) == 1


def test_stats_count_by_method(make: Callable[..., DataframerClient]) -> None:
    script = Script(status(429), ok({"id": RUN_ID}), ok({}), status(204), ok({}))
    client = make(script)
    client.create_run(BODY)
    client.get_run(RUN_ID)
    client.delete_run(RUN_ID)
    client.cancel_run(RUN_ID)
    stats = client.stats()
    assert stats.requests == {"POST": 3, "GET": 1, "DELETE": 1}
    assert stats.total_requests == 5
    assert stats.retries == 1 and stats.rate_limited == 1
    assert stats.as_dict()["total_requests"] == 5


def test_one_client_serves_many_threads(make: Callable[..., DataframerClient]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return ok({"id": request.url.path.split("/")[-2], "status": "PENDING"})

    client = make(Script(handler))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                assert client.get_run(f"r{n}-{i}").id == f"r{n}-{i}"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert client.stats().requests == {"GET": 320}


# -- lists: a plain array (the SDK's shape) or pages followed to the end -----------------------


def test_a_paged_list_is_followed_to_the_end(make: Callable[..., DataframerClient]) -> None:
    script = Script(
        ok({"results": [{"id": "a"}, {"id": "b"}], "next": f"{BASE}{RUNS}?page=2"}),
        ok({"results": [{"id": "c"}], "next": "/api/dataframer/runs/?page=3"}),  # relative
        ok({"results": [], "next": None}),
    )
    assert [r.id for r in make(script).list_runs()] == ["a", "b", "c"]
    assert [str(r.url) for r in script.requests] == [
        f"{BASE}{RUNS}",
        f"{BASE}{RUNS}?page=2",
        f"{BASE}{RUNS}?page=3",
    ]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in script.requests)


def test_pages_under_a_base_url_with_a_path_keep_one_prefix(
    make: Callable[..., DataframerClient],
) -> None:
    base = "https://gw.example.test/dataframer-proxy"
    script = Script(
        ok({"results": [{"id": "a"}], "next": f"{base}{RUNS}?page=2"}),
        ok({"results": [{"id": "b"}], "next": None}),
    )
    assert [r.id for r in make(script, base_url=base).list_runs()] == ["a", "b"]
    assert str(script.requests[1].url) == f"{base}{RUNS}?page=2"


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example.test/api/dataframer/runs/?page=2",  # another host
        "http://api.example.test/api/dataframer/runs/?page=2",  # plain http
        "https://api.example.test:8443/api/dataframer/runs/?page=2",  # another port
    ],
)
def test_a_next_page_elsewhere_is_refused_and_never_sent_the_key(
    make: Callable[..., DataframerClient], link: str
) -> None:
    script = Script(ok({"results": [{"id": "a"}], "next": link}), ok([]))
    with pytest.raises(BadAnswer, match="next page is not on this API"):
        make(script).list_runs()
    assert len(script.requests) == 1


def test_pages_that_loop_are_refused(make: Callable[..., DataframerClient]) -> None:
    script = Script(ok({"results": [{"id": "a"}], "next": f"{BASE}{RUNS}"}))
    with pytest.raises(BadAnswer, match="do not end"):
        make(script).list_runs()
    assert len(script.requests) == 1


def test_a_create_answer_with_the_whole_run_is_parsed(
    make: Callable[..., DataframerClient],
) -> None:
    answer = {
        "id": RUN_ID,
        "status": "PENDING",
        "spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "spec_version": 3,
        "runtime_params": {"number_of_samples": 10, "revision_model": None},
    }
    run = make(Script(ok(answer, 201))).create_run(BODY)
    assert (run.id, run.status, run.spec_version) == (RUN_ID, "PENDING", 3)
    assert run.runtime_params == {"number_of_samples": 10, "revision_model": None}
