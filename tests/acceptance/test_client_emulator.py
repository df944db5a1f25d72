"""The API client against the real emulator, over HTTP on 127.0.0.1.

Every fault here is the emulator's own (dropped connections, hangs, 5xx,
429 with Retry-After, garbage bodies); the client runs with its real
transport, real sockets and real sleeps kept short by a tiny backoff.
The invariant checked throughout: a create is sent again only when the
server certainly did not act, so the emulator never holds a run that the
client does not either know about or report as OutcomeUnknown.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.manual_api import serve

pytest.importorskip("dfr_emulator")

from dfr_emulator import (
    SPEC_INSURANCE_CLAIMS,
    SPEC_LEGAL_CONTRACTS,
    SPEC_SUPPORT_TICKETS,
    Emulator,
    EmulatorConfig,
    ManualClock,
)
from reconciler.api import (
    CreateAnswerUnreadable,
    DataframerClient,
    PacingConfig,
    RetryPolicy,
    timeouts,
)
from reconciler.errors import (
    APIUnavailable,
    AuthError,
    BadAnswer,
    NotFoundError,
    OutcomeUnknown,
    RequestRejected,
)

KEY = "dfr-acceptance-key-5d41402abc"
BODY = {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 10}

MakeClient = Callable[..., DataframerClient]


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock, api_key=KEY, seed=11)


@pytest.fixture
def make(emu: Emulator) -> Iterator[MakeClient]:
    clients: list[DataframerClient] = []

    def factory(
        *,
        base_url: str | None = None,
        key: str = KEY,
        timeout: float = 5.0,
        pacing: PacingConfig | None = None,
        **retry: Any,
    ) -> DataframerClient:
        """A client of the emulator with a tiny backoff; other keywords are RetryPolicy's."""
        client = DataframerClient(
            base_url or emu.base_url,
            key,
            retry=RetryPolicy(**{"backoff_base": 0.005, "backoff_max": 2.0, **retry}),
            pacing=pacing,
            timeout=timeouts(timeout),
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def creates_seen(emu: Emulator) -> int:
    requests: dict[str, int] = emu.stats()["requests"]
    return requests.get("runs.create", 0)


def in_threads(work: Callable[[], None], count: int) -> list[BaseException]:
    """Run `work` in `count` threads at once; what any of them raised."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            work()
        except BaseException as exc:  # pragma: no cover - reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return errors


def assert_sent_once(emu: Emulator, created: int) -> None:
    """The create was sent exactly once, and the emulator made `created` runs of it."""
    assert creates_seen(emu) == 1
    assert emu.stats()["runs_created"] == created


def test_the_whole_run_lifecycle(emu: Emulator, make: MakeClient) -> None:
    client = make()
    created = client.create_run({**BODY, "spec_id": SPEC_SUPPORT_TICKETS.upper()})
    run_id = created.id
    run = client.get_run(run_id)
    assert (run.id, run.status, run.spec_id) == (run_id, "PENDING", SPEC_SUPPORT_TICKETS)
    # The create answer is the whole run, as get shows it.
    assert created.raw == run.raw
    assert created.runtime_params is not None
    assert created.runtime_params["revision_model"] is None  # revisions are off
    emu.advance(3)
    assert client.get_run(run_id).status == "PROCESSING"
    emu.advance(10)
    done = client.get_run(run_id)
    assert done.status == "SUCCEEDED" and done.is_terminal
    assert done.samples_completed is not None
    assert done.total_cost is not None and done.total_cost > 0
    assert done.runtime_params is not None
    assert done.runtime_params["number_of_samples"] == 10
    assert [r.id for r in client.list_runs()] == [run_id]

    second = client.create_run(BODY).id
    client.cancel_run(second)
    assert client.get_run(second).status == "CANCELED"
    client.delete_run(second)
    with pytest.raises(NotFoundError):
        client.get_run(second)
    with pytest.raises(NotFoundError):
        client.delete_run(second)
    assert client.stats().retries == 0


def test_specs(make: MakeClient) -> None:
    client = make()
    specs = {spec.id: spec for spec in client.list_specs()}
    assert specs[SPEC_SUPPORT_TICKETS].status == "SUCCEEDED"
    spec = client.get_spec(SPEC_SUPPORT_TICKETS, include_versions=True)
    assert spec.name and spec.versions
    assert spec.latest_version is None
    # Unnumbered versions (the SDK's): counted, version N is the Nth by created_at.
    assert spec.version_numbers() == {1: None, 2: None, 3: None}
    assert client.get_spec(SPEC_SUPPORT_TICKETS).versions is None
    claims = client.get_spec(SPEC_INSURANCE_CLAIMS, include_versions=True)
    assert claims.status == "SUCCEEDED"
    assert claims.content_unavailable_reason == "spec_content_in_data_plane"
    assert claims.version_numbers() == {1: None, 2: None}
    with pytest.raises(NotFoundError):
        client.get_spec("00000000-0000-4000-8000-000000000000")


def test_in_progress_spelling_reads_as_processing(emu: Emulator, make: MakeClient) -> None:
    emu.configure(status_spelling="IN_PROGRESS")
    client = make()
    run_id = client.create_run(BODY).id
    emu.advance(3)
    run = client.get_run(run_id)
    assert (run.status, run.raw_status) == ("PROCESSING", "IN_PROGRESS")


def test_failed_run_has_no_reason_field(emu: Emulator, make: MakeClient) -> None:
    emu.configure(fail_next=1)
    client = make()
    run_id = client.create_run(BODY).id
    emu.advance(60)
    run = client.get_run(run_id)
    assert run.status == "FAILED"
    assert "failure_reason" not in run.raw and "error" not in run.raw


def test_lists_are_followed_page_by_page(emu: Emulator, make: MakeClient) -> None:
    client = make()
    ids = [client.create_run(BODY).id for _ in range(5)]
    emu.configure(page_size=2)
    assert [r.id for r in client.list_runs()] == ids[::-1]
    assert len(client.list_specs()) == 6
    assert emu.stats()["requests"]["runs.list"] == 3


def test_the_legacy_api(clock: ManualClock) -> None:
    """The old page's API: `{"id"}` on create, IN_PROGRESS, failure_reason, numbered versions."""
    config = EmulatorConfig(clock=clock, api_key=KEY, legacy=True)
    with Emulator(config) as emu:
        client = DataframerClient(
            emu.base_url, KEY, retry=RetryPolicy(backoff_base=0.005), timeout=timeouts(5.0)
        )
        try:
            created = client.create_run(BODY)
            assert set(created.raw) == {"id"}
            emu.advance(3)
            run = client.get_run(created.id)
            assert (run.status, run.raw_status) == ("PROCESSING", "IN_PROGRESS")
            assert run.runtime_params is not None
            assert run.runtime_params["enable_revisions"] is False
            emu.force_status(created.id, "FAILED", reason="model outage")
            failed = client.get_run(created.id)
            assert failed.status == "FAILED"
            assert failed.raw["failure_reason"] == "model outage"
            spec = client.get_spec(SPEC_SUPPORT_TICKETS, include_versions=True)
            assert spec.latest_version == 3
            assert spec.version_numbers() == {1: "SUCCEEDED", 2: "SUCCEEDED", 3: "SUCCEEDED"}
        finally:
            client.close()


def test_wrong_key_is_an_auth_error(make: MakeClient) -> None:
    wrong = "not-the-key-0000"
    with pytest.raises(AuthError) as info:
        make(key=wrong).list_runs()
    assert info.value.status_code == 403
    assert "DATAFRAMER_API_KEY" in str(info.value)
    assert wrong not in str(info.value) and KEY not in str(info.value)


def test_invalid_body_is_rejected_with_the_field(emu: Emulator, make: MakeClient) -> None:
    with pytest.raises(RequestRejected) as info:
        make().create_run({"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 50000})
    assert info.value.status_code == 422
    assert "number_of_samples" in str(info.value)
    assert "\n" not in str(info.value)
    assert emu.stats()["runs_created"] == 0


def test_spec_not_ready_is_rejected(emu: Emulator, make: MakeClient) -> None:
    with pytest.raises(RequestRejected) as info:
        make().create_run({"spec_id": SPEC_LEGAL_CONTRACTS, "number_of_samples": 10})
    assert info.value.status_code is not None and 400 <= info.value.status_code < 500
    assert emu.stats()["runs_created"] == 0


# ---------------------------------------------------------------------------
# Faults on reads: retried until they succeed


def test_reads_ride_out_5xx_and_resets(emu: Emulator, make: MakeClient) -> None:
    client = make(max_retries=12)
    run_id = client.create_run(BODY).id
    emu.configure(failure_rate=0.4, reset_rate=0.2)
    for _ in range(20):
        assert client.get_run(run_id).id == run_id
    stats = client.stats()
    assert stats.retries > 0
    assert stats.server_errors > 0 and stats.transport_errors > 0


def test_garbage_answer_on_a_read_is_bad_answer(emu: Emulator, make: MakeClient) -> None:
    emu.configure(garbage_rate=1.0)
    with pytest.raises(BadAnswer) as info:
        make().list_runs()
    assert len(str(info.value)) < 300


def test_missing_fields_and_unknown_status_are_tolerated(emu: Emulator, make: MakeClient) -> None:
    client = make()
    run_id = client.create_run(BODY).id
    emu.configure(missing_fields_rate=1.0, unknown_status_rate=1.0, unknown_status_value="QUEUED")
    run = client.get_run(run_id)
    assert run.id == run_id  # filled in from the request if the answer lost it
    assert run.status in (None, "QUEUED")
    assert not run.is_terminal


def test_hung_read_times_out_and_is_reported(emu: Emulator, make: MakeClient) -> None:
    emu.configure(hang_rate=1.0, hang_seconds=1.0)
    with pytest.raises(APIUnavailable) as info:
        make(timeout=0.2, max_retries=1).list_runs()
    assert "read timeout" in str(info.value)
    assert "after 2 attempts" in str(info.value)


def test_nothing_listening_is_unavailable_for_reads_and_creates(make: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make(base_url=f"http://127.0.0.1:{port}", max_retries=2)
    with pytest.raises(APIUnavailable, match="could not connect"):
        client.get_run("x")
    with pytest.raises(APIUnavailable, match="no run was created"):
        client.create_run(BODY)
    assert client.stats().requests == {"GET": 3, "POST": 3}


# ---------------------------------------------------------------------------
# Faults on create: never a duplicate


def test_dropped_create_is_outcome_unknown_and_sent_once(emu: Emulator, make: MakeClient) -> None:
    emu.configure(ambiguous_posts=1)
    client = make()
    with pytest.raises(OutcomeUnknown, match="may or may not have been created"):
        client.create_run(BODY)
    assert_sent_once(emu, created=1)  # it was created: the caller must look for it


def test_5xx_after_create_is_outcome_unknown_and_sent_once(emu: Emulator, make: MakeClient) -> None:
    emu.configure(post_5xx_after_create_rate=1.0)
    with pytest.raises(OutcomeUnknown) as info:
        make().create_run(BODY)
    assert info.value.status_code in (500, 502, 503)
    assert_sent_once(emu, created=1)


def test_hung_create_is_outcome_unknown_and_sent_once(emu: Emulator, make: MakeClient) -> None:
    emu.configure(hang_rate=1.0, hang_seconds=1.0)
    with pytest.raises(OutcomeUnknown, match="read timeout"):
        make(timeout=0.2).create_run(BODY)
    assert_sent_once(emu, created=1)


def test_garbage_create_answer_is_unknown_and_sent_once(emu: Emulator, make: MakeClient) -> None:
    emu.configure(garbage_rate=1.0)
    with pytest.raises(CreateAnswerUnreadable):
        make().create_run(BODY)
    assert_sent_once(emu, created=1)


def test_reset_before_acting_is_still_unknown_for_a_create(emu: Emulator, make: MakeClient) -> None:
    # The client cannot tell this reset from one after the run was made.
    emu.configure(reset_rate=1.0)
    with pytest.raises(OutcomeUnknown):
        make().create_run(BODY)
    assert_sent_once(emu, created=0)


def test_create_under_faults_never_duplicates(emu: Emulator, make: MakeClient) -> None:
    emu.configure(
        failure_rate=0.2, ambiguous_post_rate=0.2, post_5xx_after_create_rate=0.1, reset_rate=0.1
    )
    client = make()
    known, unknown = 0, 0
    for _ in range(40):
        try:
            client.create_run(BODY)
            known += 1
        except OutcomeUnknown:
            unknown += 1
    assert known > 0 and unknown > 0
    # Each call sent exactly one POST (no 429s or refused connections here).
    assert creates_seen(emu) == 40
    assert known <= emu.stats()["runs_created"] <= known + unknown


# ---------------------------------------------------------------------------
# Rate limits: 429 with Retry-After, shared across threads


def test_rate_limited_threads_all_get_through(emu: Emulator, make: MakeClient) -> None:
    emu.configure(rate_limit=5)
    client = make(max_retries=10, backoff_max=1.5)
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        run_id = client.create_run(BODY).id
        client.get_run(run_id)
        with lock:
            ids.append(run_id)

    assert in_threads(work, 8) == []
    assert len(set(ids)) == 8
    stats = client.stats()
    assert stats.rate_limited > 0
    # 429s were retried, and no create was duplicated by it.
    assert emu.stats()["runs_created"] == 8
    # The shared pause keeps 429s from multiplying: far fewer than one per retry.
    assert stats.rate_limited < 8 * 4


def test_client_side_rate_limit_avoids_429s(emu: Emulator, make: MakeClient) -> None:
    emu.configure(rate_limit=20)
    client = make(pacing=PacingConfig(max_requests_per_second=15.0))
    run_id = client.create_run(BODY).id
    for _ in range(15):
        client.get_run(run_id)
    assert client.stats().rate_limited == 0


def test_one_client_many_threads(emu: Emulator, make: MakeClient) -> None:
    client = make()
    run_id = client.create_run(BODY).id

    def work() -> None:
        for _ in range(5):
            assert client.get_run(run_id).id == run_id

    assert in_threads(work, 32) == []
    assert client.stats().requests == {"POST": 1, "GET": 160}
    assert emu.stats()["requests"]["runs.get"] == 160
