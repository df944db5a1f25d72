"""A run's outputs over real HTTP: files and their bytes, the ZIP, expiry, every fault knob.

Each test has its own emulator on 127.0.0.1 (API and file host) with a
manual clock: time moves only by `emu.advance`, so a URL expires, a ZIP gets
built and an evaluation finishes exactly when the test says. Downloads go
to the file host with a client that carries no credentials, and the file
host's counters prove that no request there carried an Authorization header
or the API key.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.emulators import KEY, SUPPORT, EmulatorProcess
from support.manual_api import authorized, serve

from dfr_emulator import Emulator, ManualClock
from dfr_emulator.evaluations import largest_gap
from dfr_emulator.fileserver import WRONG_SIZE_EXTRA

RUNS = "/api/dataframer/runs/"
EVALUATIONS = "/api/dataframer/evaluations/"
AUTH = {"Authorization": f"Bearer {KEY}"}
MIB = 1 << 20


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock, api_key=KEY, seed=11)


@pytest.fixture
def api(emu: Emulator) -> Iterator[httpx.Client]:
    yield from authorized(emu, KEY, timeout=10.0)


@pytest.fixture
def files() -> Iterator[httpx.Client]:
    """The client of the file host: no base URL, no headers of ours."""
    with httpx.Client(timeout=10.0) as client:
        yield client


def zip_path(run: dict[str, Any]) -> str:
    """Where the ZIP of all of `run`'s files is asked for."""
    return f"{RUNS}{run['id']}/files/download/"


def finished_run(api: httpx.Client, emu: Emulator, samples: int = 30) -> dict[str, Any]:
    created = api.post(RUNS, json={"spec_id": SUPPORT, "number_of_samples": samples})
    assert created.status_code == 201
    emu.advance(60)
    run: dict[str, Any] = api.get(f"{RUNS}{created.json()['id']}/").json()
    assert run["status"] == "SUCCEEDED"
    return run


def url_of(api: httpx.Client, run: dict[str, Any], file: dict[str, Any]) -> str:
    answer = api.get(f"{RUNS}{run['id']}/files/{file['id']}/download/")
    assert answer.status_code == 200, answer.text
    url: str = answer.json()["download_url"]
    return url


def big(run: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = max(run["generated_files"], key=lambda f: f["size_bytes"])
    return found


def clean(emu: Emulator) -> None:
    stats = emu.stats()["file_host"]
    assert (stats["authorization_headers"], stats["api_key_seen"]) == (0, 0)


def test_every_file_is_its_size_and_the_same_each_time(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu)
    expected = emu.run_files(run["id"])
    assert set(expected) == {f["path"] for f in run["generated_files"]}
    for file in run["generated_files"]:
        got = files.get(url_of(api, run, file))
        assert got.status_code == 200
        assert len(got.content) == file["size_bytes"] == int(got.headers["content-length"])
        assert got.content == expected[file["path"]]
        assert got.headers["content-type"] == file["file_type"]
        assert files.get(url_of(api, run, file)).content == got.content  # deterministic
    first_lines = expected["data/part-0001.jsonl"].splitlines()
    assert json.loads(first_lines[0])["id"] == "sample-000001"
    other = finished_run(api, emu)
    assert emu.run_files(other["id"])["data/part-0001.jsonl"] != expected["data/part-0001.jsonl"]
    clean(emu)


def test_the_large_file_streams_and_serves_ranges(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu, samples=4)
    file = big(run)
    assert file["size_bytes"] > MIB
    url = url_of(api, run, file)
    digest, chunks = hashlib.sha256(), 0
    with files.stream("GET", url) as response:
        for chunk in response.iter_bytes(chunk_size=64 * 1024):
            digest.update(chunk)
            chunks += 1
    whole = emu.run_files(run["id"])[file["path"]]
    assert chunks > 1 and digest.hexdigest() == hashlib.sha256(whole).hexdigest()
    tail = files.get(url, headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == whole[1000:]
    assert tail.headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert files.get(url, headers={"Range": f"bytes={len(whole)}-"}).status_code == 416
    assert files.head(url).headers["content-length"] == str(len(whole))


def test_unknown_and_unfinished_runs_and_deleted_files(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    pending = api.post(RUNS, json={"spec_id": SUPPORT, "number_of_samples": 5}).json()
    for path in ("files/download/", "files/x/download/"):
        answer = api.get(f"{RUNS}{pending['id']}/{path}")
        assert answer.status_code == 400 and "SUCCEEDED" in answer.json()["detail"]
        unknown = api.get(f"{RUNS}00000000-0000-4000-8000-000000000000/{path}")
        assert unknown.status_code == 404 and unknown.json() == {"detail": "Not found."}
    run = finished_run(api, emu)
    assert api.get(f"{RUNS}{run['id']}/files/nope/download/").status_code == 404
    url = url_of(api, run, run["generated_files"][0])
    assert api.delete(f"{RUNS}{run['id']}/").status_code == 204
    gone = files.get(url)
    assert gone.status_code == 404 and b"<Code>NoSuchKey</Code>" in gone.content
    forged = files.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
    assert forged.status_code == 403 and b"SignatureDoesNotMatch" in forged.content


def test_the_zip_is_202_then_200_and_holds_every_file(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu, samples=8)
    emu.configure(zip_build_polls=3, zip_build_seconds=5)
    path = zip_path(run)
    answers = [api.get(path) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert answers[0].headers["retry-after"] == "1"
    assert api.get(path).status_code == 202  # polls done, but 5 s have not passed
    emu.advance(5)
    ready = api.get(path)
    assert ready.status_code == 200
    data = files.get(ready.json()["download_url"]).content
    assert len(data) == ready.json()["size_bytes"]
    archive = zipfile.ZipFile(io.BytesIO(data))
    expected = emu.run_files(run["id"])
    for name, content in expected.items():
        assert archive.read(name) == content
        meta = json.loads(archive.read(f"{name}.metadata"))
        assert meta["sha256"] == hashlib.sha256(content).hexdigest()
        assert meta["size_bytes"] == len(content) and meta["classifications"] == {}
    top = json.loads(archive.read("top_level.metadata"))
    assert (top["run_id"], top["evaluation"]) == (run["id"], None)
    assert sorted(top["files"]) == sorted(expected)
    assert set(archive.namelist()) == {*expected, *(f"{n}.metadata" for n in expected)} | {
        "top_level.metadata"
    }
    # Asked again: the same ZIP, at once.
    again = api.get(path)
    assert again.status_code == 200 and again.json()["size_bytes"] == len(data)
    clean(emu)


def test_a_new_evaluation_rebuilds_the_zip_with_its_summary(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu, samples=6)
    emu.configure(zip_build_polls=0, evaluation_gap=4.0)
    path = zip_path(run)
    assert api.get(path).status_code == 200
    evaluation = api.post(EVALUATIONS, json={"run_id": run["id"]}).json()
    emu.advance(10)
    emu.configure(zip_build_polls=1)
    assert api.get(path).status_code == 202
    ready = api.get(path).json()
    archive = zipfile.ZipFile(io.BytesIO(files.get(ready["download_url"]).content))
    summary = json.loads(archive.read("top_level.metadata"))["evaluation"]
    assert summary["evaluation_id"] == evaluation["id"] and summary["status"] == "SUCCEEDED"
    assert largest_gap(summary["distribution_analysis"])[1] == pytest.approx(4.0, abs=0.011)
    meta = json.loads(archive.read("data/part-0001.jsonl.metadata"))
    assert set(meta["classifications"]) == set(meta["samples"]) and meta["samples"]


def test_urls_expire_after_the_ttl(api: httpx.Client, files: httpx.Client, emu: Emulator) -> None:
    run = finished_run(api, emu)
    emu.configure(download_url_ttl=120)
    file = run["generated_files"][-1]
    url = url_of(api, run, file)
    assert "X-Amz-Expires=120" in url
    emu.advance(119)
    assert files.get(url).status_code == 200
    emu.advance(1)
    expired = files.get(url)
    assert expired.status_code == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.content
    assert files.get(url_of(api, run, file)).status_code == 200  # a fresh URL works


def test_expired_urls_are_refused_from_their_first_use(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu)
    file = run["generated_files"][0]
    emu.configure(expired_urls=1)
    stale = url_of(api, run, file)
    assert emu.config.expired_urls == 0  # used up by the URL just handed out
    assert files.get(stale).status_code == 403
    assert files.get(stale).status_code == 403  # expired stays expired
    fresh = files.get(url_of(api, run, file))
    assert fresh.status_code == 200 and len(fresh.content) == file["size_bytes"]
    injected = emu.stats()["file_host"]["injected"]
    assert injected == {"expired_url": 1, "expired_url_refused": 2}


def test_truncated_downloads_stop_short_then_close(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu, samples=2)
    file = big(run)
    emu.configure(truncated_downloads=1, truncate_after_bytes=100_000)
    url = url_of(api, run, file)
    received = 0
    with pytest.raises(httpx.RemoteProtocolError), files.stream("GET", url) as response:
        assert response.headers["content-length"] == str(file["size_bytes"])
        for chunk in response.iter_bytes():
            received += len(chunk)
    assert received == 100_000
    assert emu.config.truncated_downloads == 0
    whole = files.get(url)
    assert len(whole.content) == file["size_bytes"]
    assert emu.stats()["file_host"]["injected"] == {"truncated": 1}
    # A small file is cut in half when it is smaller than the setting.
    small = min(run["generated_files"], key=lambda f: f["size_bytes"])
    emu.configure(truncated_downloads=1)
    with pytest.raises(httpx.RemoteProtocolError):
        files.get(url_of(api, run, small))


def test_wrong_size_downloads_serve_other_bytes(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu)
    file = run["generated_files"][2]
    emu.configure(wrong_size_downloads=1)
    wrong = files.get(url_of(api, run, file))
    assert wrong.status_code == 200  # a complete HTTP answer ...
    assert len(wrong.content) == file["size_bytes"] + len(WRONG_SIZE_EXTRA)  # ... of other bytes
    right = files.get(url_of(api, run, file))
    assert len(right.content) == file["size_bytes"]
    assert emu.stats()["file_host"]["injected"] == {"wrong_size": 1}


def test_the_file_host_takes_no_credentials(
    api: httpx.Client, files: httpx.Client, emu: Emulator
) -> None:
    run = finished_run(api, emu)
    url = url_of(api, run, run["generated_files"][0])
    assert not url.startswith(emu.base_url) and url.startswith(emu.file_base_url)
    assert files.get(url).status_code == 200
    clean(emu)
    refused = files.get(url, headers=AUTH)  # a client that sends the API key along
    assert refused.status_code == 400 and b"InvalidArgument" in refused.content
    stats = emu.stats()["file_host"]
    assert (stats["authorization_headers"], stats["api_key_seen"]) == (1, 1)
    files.get(url, headers={"X-Api-Key": KEY})
    assert emu.file_host_stats()["api_key_seen"] == 2
    assert emu.file_host_stats()["authorization_headers"] == 1
    emu.reset_stats()
    assert emu.file_host_stats()["requests"] == 0


def test_evaluation_lifecycle_and_failure(api: httpx.Client, emu: Emulator) -> None:
    run = finished_run(api, emu)
    emu.configure(evaluation_pending_seconds=2, evaluation_processing_seconds=3)
    created = api.post(EVALUATIONS, json={"run_id": run["id"]})
    assert created.status_code == 201
    evaluation_id = created.json()["id"]

    def status() -> str:
        answer: str = api.get(f"{EVALUATIONS}{evaluation_id}/").json()["status"]
        return answer

    assert status() == "PENDING"
    emu.advance(2)
    assert status() == "PROCESSING"
    emu.advance(3)
    assert status() == "SUCCEEDED"
    emu.configure(evaluation_fail_next=1)
    failed_id = api.post(EVALUATIONS, json={"run_id": run["id"]}).json()["id"]
    emu.advance(5)
    failed = api.get(f"{EVALUATIONS}{failed_id}/").json()
    assert failed["status"] == "FAILED" and failed["error_message"]
    assert failed["distribution_analysis"] is None and failed["sample_classifications"] == []
    listed = api.get(f"{RUNS}{run['id']}/evaluations/").json()
    assert [(e["id"], e["status"]) for e in listed] == [
        (failed_id, "FAILED"),
        (evaluation_id, "SUCCEEDED"),
    ]
    assert emu.stats()["evaluations_created"] == 2
    assert [e["id"] for e in emu.evaluations()] == [failed_id, evaluation_id]


def test_gaps_are_set_by_the_knob_or_fixed_per_run(api: httpx.Client, emu: Emulator) -> None:
    run = finished_run(api, emu)
    emu.configure(evaluation_pending_seconds=0, evaluation_processing_seconds=0)

    def evaluate() -> tuple[str, float]:
        created = api.post(EVALUATIONS, json={"run_id": run["id"]}).json()
        done = api.get(f"{EVALUATIONS}{created['id']}/").json()
        return largest_gap(done["distribution_analysis"])

    per_run = evaluate()
    assert per_run == evaluate()  # the same run: the same gap
    assert 0.5 <= per_run[1] < 8.0
    emu.configure(evaluation_gap=15)
    prop, gap = evaluate()
    assert prop == "priority" and gap == pytest.approx(15, abs=0.011)
    emu.configure(evaluation_gap=0)
    assert evaluate()[1] == pytest.approx(0, abs=0.011)


@pytest.mark.parametrize(
    ("knob", "created", "outcome"),
    [
        ({"ambiguous_evaluation_posts": 1}, 1, "dropped"),
        ({"ambiguous_evaluation_post_rate": 1.0}, 1, "dropped"),
        ({"evaluation_5xx_after_create_rate": 1.0}, 1, "5xx"),
        ({"evaluation_5xx_before_create_rate": 1.0}, 0, "5xx"),
    ],
)
def test_evaluation_posts_lose_answers(
    api: httpx.Client, emu: Emulator, knob: dict[str, Any], created: int, outcome: str
) -> None:
    run = finished_run(api, emu)
    emu.configure(**knob)
    if outcome == "dropped":
        with pytest.raises(httpx.TransportError):
            api.post(EVALUATIONS, json={"run_id": run["id"]})
    else:
        assert api.post(EVALUATIONS, json={"run_id": run["id"]}).status_code in (500, 502, 503)
    # What the client must do: look before posting again.
    assert len(api.get(f"{RUNS}{run['id']}/evaluations/").json()) == created
    assert emu.stats()["evaluations_created"] == created
    assert emu.stats()["injected_total"] == 1


def test_a_process_emulator_has_the_file_host_and_its_flags(
    start_emulator: Any, files: httpx.Client
) -> None:
    proc: EmulatorProcess = start_emulator(
        api_key=KEY,
        pending_seconds=0,
        processing_seconds=0,
        zip_build_polls=0,
        wrong_size_downloads=1,
        download_url_ttl=30,
    )
    with httpx.Client(base_url=proc.url, headers=AUTH, timeout=10.0) as api:
        run_id = api.post(RUNS, json={"spec_id": SUPPORT, "number_of_samples": 3}).json()["id"]
        run = api.get(f"{RUNS}{run_id}/").json()
        file = run["generated_files"][-1]
        url = url_of(api, run, file)
        assert "X-Amz-Expires=30" in url
        assert len(files.get(url).content) != file["size_bytes"]  # the flag's fault
        assert len(files.get(url).content) == file["size_bytes"]
        zipped = api.get(f"{RUNS}{run_id}/files/download/")
        assert zipped.status_code == 200
    stats = proc.stats()["file_host"]
    assert stats["downloads"] == 2 and stats["injected"] == {"wrong_size": 1}
    assert (stats["authorization_headers"], stats["api_key_seen"]) == (0, 0)
