"""The spec endpoints of the client (`reconciler.api.specs`), through an injected transport.

Creating a spec and updating it are never sent twice unless surely refused;
answers are parsed tolerantly; version N is the Nth entry of `versions`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from reconciler.api import DataframerClient, RetryPolicy
from reconciler.api.specs import SpecDetail, SpecNameTaken
from reconciler.errors import OutcomeUnknown, RequestRejected

KEY = "sk-test-SECRET-7f3a9c0e5b"
BASE = "https://api.example.test"
SPECS = "/api/dataframer/specs/"
SPEC_ID = "0d3c7f8e-1111-4222-8333-944455556666"


def client(handler: Callable[[httpx.Request], httpx.Response]) -> DataframerClient:
    return DataframerClient(
        BASE,
        KEY,
        retry=RetryPolicy(max_retries=3, sleep=lambda _s: None),
        transport=httpx.MockTransport(handler),
    )


class Recorder:
    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_create_posts_the_body_once_and_reads_the_spec() -> None:
    rec = Recorder(httpx.Response(202, json={"id": SPEC_ID, "status": "PROCESSING", "name": "s"}))
    spec = client(rec).create_spec({"name": "s", "generation_objectives": "tickets"})
    assert (spec.id, spec.status, spec.name) == (SPEC_ID, "PROCESSING", "s")
    (request,) = rec.requests
    assert request.method == "POST" and request.url.path == SPECS
    assert json.loads(request.content) == {"name": "s", "generation_objectives": "tickets"}


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(502),
        httpx.Response(500),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("x"),
    ],
)
def test_a_create_or_update_that_may_have_acted_is_sent_once_and_outcome_unknown(
    failure: httpx.Response | Exception,
) -> None:
    rec = Recorder(failure)
    with pytest.raises(OutcomeUnknown, match="the spec may or may not have been created"):
        client(rec).create_spec({"name": "s"})
    assert len(rec.requests) == 1
    rec = Recorder(failure)
    with pytest.raises(OutcomeUnknown, match="the spec may or may not have been changed"):
        client(rec).update_spec(SPEC_ID, "spec:\n  description: x\n")
    assert len(rec.requests) == 1 and rec.requests[0].method == "PUT"
    assert json.loads(rec.requests[0].content) == {"content_yaml": "spec:\n  description: x\n"}


def test_a_refused_connection_or_429_is_sent_again() -> None:
    rec = Recorder(
        httpx.ConnectError("refused"),
        httpx.Response(429),
        httpx.Response(201, json={"id": SPEC_ID}),
    )
    assert client(rec).create_spec({"name": "s"}).id == SPEC_ID
    assert len(rec.requests) == 3


def test_409_on_create_is_spec_name_taken_with_the_apis_reason() -> None:
    rec = Recorder(httpx.Response(409, json={"detail": "a spec named 's' already exists"}))
    with pytest.raises(SpecNameTaken, match="already exists") as info:
        client(rec).create_spec({"name": "s"})
    assert info.value.status_code == 409 and isinstance(info.value, RequestRejected)


def test_a_2xx_create_without_an_id_is_an_unknown_outcome() -> None:
    rec = Recorder(httpx.Response(201, json={"status": "PROCESSING"}))
    with pytest.raises(OutcomeUnknown, match="without a spec id"):
        client(rec).create_spec({"name": "s"})


def test_versions_are_numbered_oldest_first_and_parsed_tolerantly() -> None:
    body = {
        "id": SPEC_ID,
        "status": "SUCCEEDED",
        "content_yaml": "spec:\n  description: b\n",
        "runtime_params": "not a dict",
        "versions": [
            {"content_yaml": "spec:\n  description: a\n", "created_at": "2026-01-01T00:00:00Z"},
            {"content_yaml": None, "created_at": 7},
            "junk",
        ],
    }
    rec = Recorder(httpx.Response(200, json=body))
    spec = client(rec).get_spec_versions(SPEC_ID)
    assert rec.requests[0].url.params["include_versions"] == "true"
    assert spec.runtime_params is None and spec.versions is not None
    assert [v.number for v in spec.versions] == [1, 2, 3]
    assert spec.versions[0].content_yaml == "spec:\n  description: a\n"
    assert spec.versions[1].created_at == "7" and spec.latest is not None
    assert spec.latest.number == 3 and spec.latest.content_yaml is None
    assert SpecDetail.from_json({}, fallback_id="x").versions is None


def test_find_specs_matches_the_exact_name_only() -> None:
    listed = [
        {"id": "1", "name": "tickets"},
        {"id": "2", "name": "Tickets"},
        {"id": "3", "name": "tickets-2"},
        {"name": "tickets"},  # no id: cannot be used
    ]
    rec = Recorder(httpx.Response(200, json=listed))
    assert [s.id for s in client(rec).find_specs("tickets")] == ["1"]
