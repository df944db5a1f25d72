"""Specs made through the emulator, over real HTTP: names, lifecycle, versions, fault knobs.

Each test starts its own emulator on an ephemeral 127.0.0.1 port with a
manual clock (the spec lifecycle moves only with `emu.advance`); one test runs
it as `python -m dfr_emulator` with the spec knobs as flags.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from support.emulators import EmulatorProcess
from support.manual_api import authorized, serve

from dfr_emulator import (
    SPEC_INSURANCE_CLAIMS,
    SPEC_SUPPORT_TICKETS,
    Emulator,
    EmulatorConfig,
    ManualClock,
)

SPECS = "/api/dataframer/specs/"
RUNS = "/api/dataframer/runs/"
AUTH = {"Authorization": "Bearer test-key"}
BODY: dict[str, Any] = {"name": "tickets-v2", "generation_objectives": "Support tickets, terse."}
#: Longer than any spec_processing_seconds used here.
LATER = 60.0


@pytest.fixture
def emu(clock: ManualClock) -> Iterator[Emulator]:
    yield from serve(clock, seed=11)


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    yield from authorized(emu, "test-key")


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post(SPECS, json={**BODY, **fields})
    assert response.status_code == 201, response.text
    spec: dict[str, Any] = response.json()
    return spec


def get(client: httpx.Client, spec_id: str) -> dict[str, Any]:
    response = client.get(f"{SPECS}{spec_id}/", params={"include_versions": "true"})
    assert response.status_code == 200, response.text
    spec: dict[str, Any] = response.json()
    return spec


def update(client: httpx.Client, spec_id: str, content: str) -> httpx.Response:
    return client.put(f"{SPECS}{spec_id}/", json={"content_yaml": content})


def content(description: str) -> str:
    return f"spec:\n  description: {description}\n  requirements: Short.\n"


#: Nine to the ninth values through nine levels of aliases: a few hundred bytes of YAML.
BOMB = (
    "spec:\n  selected_sql_query_columns: &a [x, x, x, x, x, x, x, x, x]\n"
    + "  data_property_variations:\n"
    + "".join(
        f"  - &{c} [{', '.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
)


def named(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    return [item for item in client.get(SPECS).json() if item["name"] == name]


# ----- names -------------------------------------------------------------------------


def test_a_name_is_unique_among_all_specs(client: httpx.Client, emu: Emulator) -> None:
    first = create(client)
    again = client.post(SPECS, json={**BODY, "generation_objectives": "other"})
    assert again.status_code == 409
    assert again.json() == {"detail": "A spec named 'tickets-v2' already exists"}
    seeded = {"name": "x", "dataset_id": "0b7c4a52-3f1e-4d8a-9c61-2e5f8a7b9d10"}
    assert client.post(SPECS, json={**seeded, "name": BODY["name"]}).status_code == 409
    assert client.post(SPECS, json={**BODY, "name": "support-tickets"}).status_code == 409
    assert client.post(SPECS, json={**BODY, "name": "Tickets-V2"}).status_code == 201
    assert len(named(client, "tickets-v2")) == 1
    assert emu.stats()["specs_created"] == 2

    # A FAILED spec keeps its name until it is deleted.
    emu.configure(spec_fail_next=1)
    assert client.post(SPECS, json=BODY).status_code == 409
    assert emu.config.spec_fail_next == 1  # a refused create decides no outcome
    doomed = create(client, name="doomed")
    emu.advance(LATER)
    assert get(client, doomed["id"])["status"] == "FAILED"
    assert client.post(SPECS, json={**BODY, "name": "doomed"}).status_code == 409
    assert client.delete(f"{SPECS}{doomed['id']}/").status_code == 204
    assert create(client, name="doomed")["id"] != doomed["id"]
    assert first["id"] in {s["id"] for s in emu.specs()}


def test_delete_refuses_a_spec_with_runs_unless_forced(client: httpx.Client, emu: Emulator) -> None:
    spec_id = create(client)["id"]
    emu.advance(LATER)
    run = client.post(RUNS, json={"spec_id": spec_id, "number_of_samples": 3}).json()
    refused = client.delete(f"{SPECS}{spec_id}/")
    assert refused.status_code == 400 and "force" in refused.json()["detail"]
    assert client.delete(f"{SPECS}{spec_id}/", params={"force": "true"}).status_code == 204
    assert client.get(f"{RUNS}{run['id']}/").status_code == 404
    assert client.get(f"{SPECS}{spec_id}/").status_code == 404
    assert client.delete(f"{SPECS}{spec_id}/").status_code == 404


# ----- lifecycle -------------------------------------------------------------------------


def test_a_new_spec_is_processing_then_succeeded(client: httpx.Client, emu: Emulator) -> None:
    created = create(client)
    assert created["status"] == "PROCESSING"
    emu.advance(EmulatorConfig().spec_processing_seconds - 0.5)
    waiting = get(client, created["id"])
    assert waiting["status"] == "PROCESSING"
    assert waiting["content_yaml"] is None and waiting["versions"] == []
    assert waiting["updated_at"] == waiting["created_at"]
    emu.advance(1.0)
    done = get(client, created["id"])
    assert done["status"] == "SUCCEEDED"
    document = yaml.safe_load(done["content_yaml"])
    assert document["spec"]["requirements"] == BODY["generation_objectives"]
    assert document["spec"]["data_property_variations"]
    assert document["metadata"]["name"] == BODY["name"]
    assert done["dataset_id"] is None and done["dataset_type"] == "MULTI_FILE"
    assert done["updated_at"] == done["versions"][0]["created_at"] > done["created_at"]


def test_the_generated_content_is_a_function_of_the_body(clock: ManualClock) -> None:
    seeded: dict[str, Any] = {
        "name": "reviews-like",
        "dataset_id": "1C8D5B63-4A2F-4E9B-8D72-3F6A9B8C0E21",  # product-reviews' dataset
        "generate_conditional_distributions": True,
    }
    texts = []
    for _ in range(2):
        with (
            Emulator(EmulatorConfig(clock=clock, spec_processing_seconds=0)) as emu,
            httpx.Client(base_url=emu.base_url, headers=AUTH) as c,
        ):
            spec = create(c, **seeded)
            texts.append(get(c, spec["id"])["content_yaml"])
            assert spec["dataset_name"] == "product-reviews-seed"
            assert spec["dataset_id"] == seeded["dataset_id"].lower()
            other = get(c, create(c, name="other")["id"])["content_yaml"]
    assert texts[0] == texts[1] != other
    variations = yaml.safe_load(texts[0])["spec"]["data_property_variations"]
    assert "conditional_distributions" in variations[1]


def test_runs_on_a_new_spec(client: httpx.Client, emu: Emulator) -> None:
    spec_id = create(client)["id"]
    refused = client.post(RUNS, json={"spec_id": spec_id, "number_of_samples": 2})
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("Spec must be in SUCCEEDED status")
    emu.advance(LATER)
    assert update(client, spec_id, content("second")).status_code == 200
    for version in (1, 2):
        body = {"spec_id": spec_id.upper(), "number_of_samples": 2, "spec_version": version}
        run = client.post(RUNS, json=body).json()
        assert (run["spec_id"], run["spec_version"]) == (spec_id, version)
        assert run["spec_name"] == BODY["name"]
    latest = client.post(RUNS, json={"spec_id": spec_id, "number_of_samples": 2}).json()
    assert latest["spec_version"] == 2
    beyond = client.post(RUNS, json={"spec_id": spec_id, "number_of_samples": 2, "spec_version": 3})
    assert beyond.status_code == 400 and "versions 1..2" in beyond.json()["detail"]
    emu.advance(LATER)
    assert client.get(f"{RUNS}{latest['id']}/").json()["status"] == "SUCCEEDED"


# ----- versions -------------------------------------------------------------------------


def test_each_update_appends_a_version_oldest_first(client: httpx.Client, emu: Emulator) -> None:
    spec_id = create(client)["id"]
    emu.advance(LATER)
    first = get(client, spec_id)["content_yaml"]
    for n in range(2, 6):  # the clock does not move: versions must still be ordered
        response = update(client, spec_id, content(f"v{n}") + "metadata:\n  name: ignored\n")
        assert response.status_code == 200, response.text
        assert "versions" not in response.json()
    spec = get(client, spec_id)
    versions = spec["versions"]
    assert [yaml.safe_load(v["content_yaml"])["spec"]["description"] for v in versions[1:]] == [
        "v2",
        "v3",
        "v4",
        "v5",
    ]
    assert versions[0]["content_yaml"] == first
    times = [v["created_at"] for v in versions]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert spec["content_yaml"] == versions[-1]["content_yaml"]
    assert spec["updated_at"] == times[-1]
    # The metadata section sent is ignored: the stored one is the spec's own.
    assert yaml.safe_load(spec["content_yaml"])["metadata"]["name"] == BODY["name"]
    assert all(set(v) == {"content_yaml", "content_location", "created_at"} for v in versions)
    assert emu.stats()["specs_updated"] == 4


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("spec: [unclosed", "not valid YAML"),
        ("description: no root\n", "'spec' root key"),
        ("spec: just text\n", "'spec' root key"),
        ("spec: {}\n", "one or more editable fields"),
        ("spec:\n  colour: blue\n", "non-editable field(s): colour"),
        ("spec:\n  requirements: [1]\n", "spec.requirements must be a string"),
        ("spec:\n  description: x\nextra: 1\n", "unknown root key(s): extra"),
        ("spec:\n  data_property_variations: &r [*r]\n", "refers to itself"),
        (BOMB, "expands to more than 100000 values"),
        ("spec: !!python/object/apply:os.system [echo]\n", "not valid YAML"),
    ],
)
def test_an_update_must_be_a_spec_mapping(
    client: httpx.Client, emu: Emulator, text: str, words: str
) -> None:
    spec_id = create(client)["id"]
    emu.advance(LATER)
    response = update(client, spec_id, text)
    assert response.status_code == 400
    assert words in response.json()["detail"]
    assert len(get(client, spec_id)["versions"]) == 1


def test_only_a_succeeded_spec_is_updated(client: httpx.Client, emu: Emulator) -> None:
    processing = create(client)["id"]
    refused = update(client, processing, content("early"))
    assert refused.status_code == 400 and "is PROCESSING" in refused.json()["detail"]
    emu.configure(spec_fail_next=1)
    failed = create(client, name="fails")["id"]
    emu.advance(LATER)
    assert "is FAILED" in update(client, failed, content("x")).json()["detail"]
    assert update(client, "00000000-0000-4000-8000-000000000000", content("x")).status_code == 404
    # A seed spec is updatable too; one whose YAML lives in the data plane is not.
    assert update(client, SPEC_SUPPORT_TICKETS, content("mine")).status_code == 200
    assert len(get(client, SPEC_SUPPORT_TICKETS)["versions"]) == 4
    assert update(client, SPEC_INSURANCE_CLAIMS, content("x")).status_code == 400
    assert emu.stats()["specs_updated"] == 1


# ----- fault knobs -----------------------------------------------------------------------


def test_a_lost_create_answer_took_effect_exactly_once(client: httpx.Client, emu: Emulator) -> None:
    emu.configure(spec_ambiguous_creates=1)
    with pytest.raises(httpx.TransportError):
        client.post(SPECS, json=BODY)
    [found] = named(client, BODY["name"])  # the client finds it by name ...
    assert client.post(SPECS, json=BODY).status_code == 409  # ... and must not send again
    assert emu.stats()["specs_created"] == 1
    assert emu.stats()["injected"] == {"spec_create_lost": 1}
    assert emu.config.spec_ambiguous_creates == 0
    emu.advance(LATER)
    assert get(client, found["id"])["status"] == "SUCCEEDED"


def test_a_lost_update_answer_took_effect_exactly_once(client: httpx.Client, emu: Emulator) -> None:
    spec_id = create(client)["id"]
    emu.advance(LATER)
    emu.configure(spec_ambiguous_updates=1)
    with pytest.raises(httpx.TransportError):
        update(client, spec_id, content("sent once"))
    versions = get(client, spec_id)["versions"]
    assert len(versions) == 2
    assert yaml.safe_load(versions[-1]["content_yaml"])["spec"]["description"] == "sent once"
    assert emu.stats()["specs_updated"] == 1
    assert emu.stats()["injected"] == {"spec_update_lost": 1}


def test_rates_of_lost_answers(client: httpx.Client, emu: Emulator) -> None:
    emu.configure(spec_ambiguous_create_rate=1.0, spec_processing_seconds=0)
    for n in range(3):
        with pytest.raises(httpx.TransportError):
            client.post(SPECS, json={**BODY, "name": f"lost-{n}"})
    emu.configure(spec_ambiguous_create_rate=0.0, spec_ambiguous_update_rate=1.0)
    spec_id = named(client, "lost-0")[0]["id"]
    with pytest.raises(httpx.TransportError):
        update(client, spec_id, content("x"))
    assert emu.stats()["specs_created"] == 3 and emu.stats()["specs_updated"] == 1
    assert len(get(client, spec_id)["versions"]) == 2


def test_5xx_before_does_nothing_and_after_does_it(client: httpx.Client, emu: Emulator) -> None:
    emu.configure(spec_5xx_before_create_rate=1.0)
    assert client.post(SPECS, json=BODY).status_code >= 500
    assert named(client, BODY["name"]) == []
    emu.configure(spec_5xx_before_create_rate=0.0, spec_5xx_after_create_rate=1.0)
    assert client.post(SPECS, json=BODY).status_code >= 500
    [spec] = named(client, BODY["name"])
    emu.configure(spec_5xx_after_create_rate=0.0, spec_5xx_before_update_rate=1.0)
    emu.advance(LATER)
    assert update(client, spec["id"], content("a")).status_code >= 500
    assert len(get(client, spec["id"])["versions"]) == 1
    emu.configure(spec_5xx_before_update_rate=0.0, spec_5xx_after_update_rate=1.0)
    assert update(client, spec["id"], content("b")).status_code >= 500
    assert len(get(client, spec["id"])["versions"]) == 2
    injected = emu.stats()["injected"]
    for kind in ("create_5xx_before", "create_5xx_after", "update_5xx_before", "update_5xx_after"):
        assert injected[f"spec_{kind}"] == 1
    # The run create's knobs leave spec writes alone, and the other way round.
    emu.configure(spec_5xx_after_update_rate=0.0, ambiguous_posts=1, post_5xx_after_create_rate=1)
    assert update(client, spec["id"], content("c")).status_code == 200
    assert emu.config.ambiguous_posts == 1


def test_the_failure_knobs(client: httpx.Client, emu: Emulator) -> None:
    emu.configure(spec_fail_pattern=r"^broken-")
    ids = {name: create(client, name=name)["id"] for name in ("broken-a", "fine", "broken-b")}
    emu.configure(spec_fail_pattern=None, spec_fail_rate=1.0)
    ids["by-rate"] = create(client, name="by-rate")["id"]
    emu.configure(spec_fail_rate=0.0, spec_fail_next=1)
    ids["next"] = create(client, name="next")["id"]
    ids["after-next"] = create(client, name="after-next")["id"]
    emu.advance(LATER)
    statuses = {name: get(client, spec_id)["status"] for name, spec_id in ids.items()}
    assert statuses == {
        "broken-a": "FAILED",
        "fine": "SUCCEEDED",
        "broken-b": "FAILED",
        "by-rate": "FAILED",
        "next": "FAILED",
        "after-next": "SUCCEEDED",
    }
    failed = get(client, ids["broken-a"])
    assert failed["error"] and failed["content_yaml"] is None and failed["versions"] == []
    assert get(client, ids["fine"])["error"] is None


def test_a_bad_pattern_is_refused_whole(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="spec_fail_pattern"):
        emu.configure(spec_fail_pattern="(", spec_fail_rate=1.0)
    assert emu.config.spec_fail_rate == 0.0
    with pytest.raises(ValueError, match="spec_processing_seconds"):
        EmulatorConfig(spec_processing_seconds=-1)


def test_the_knobs_are_flags_of_the_emulator_process() -> None:
    proc = EmulatorProcess(
        spec_processing_seconds=0,
        spec_fail_pattern="^bad-",
        spec_ambiguous_creates=1,
        api_key="k",
    )
    try:
        with httpx.Client(base_url=proc.url, headers={"Authorization": "Bearer k"}, timeout=5) as c:
            with pytest.raises(httpx.TransportError):
                c.post(SPECS, json={**BODY, "name": "bad-one"})
            assert c.post(SPECS, json={**BODY, "name": "good-one"}).status_code == 201
        made = {s["name"]: s for s in proc.specs() if s["name"].endswith("-one")}
        assert made["bad-one"]["status"] == "FAILED"
        assert made["good-one"]["status"] == "SUCCEEDED"
        assert len(made["good-one"]["versions"]) == 1
        assert proc.stats()["specs_created"] == 2
    finally:
        proc.stop()


def test_legacy_mode_shows_a_made_spec_the_old_pages_way(clock: ManualClock) -> None:
    with (
        Emulator(EmulatorConfig(clock=clock, legacy=True)) as emu,
        httpx.Client(base_url=emu.base_url, headers=AUTH) as c,
    ):
        spec_id = create(c)["id"]
        waiting = get(c, spec_id)
        assert (waiting["status"], waiting["latest_version"]) == ("PROCESSING", 1)
        assert waiting["versions"] == [
            {"version": 1, "status": "PROCESSING", "created_at": waiting["created_at"]}
        ]
        emu.advance(LATER)
        assert update(c, spec_id, content("two")).status_code == 200
        done = get(c, spec_id)
        assert done["latest_version"] == 2
        assert [(v["version"], v["status"]) for v in done["versions"]] == [
            (1, "SUCCEEDED"),
            (2, "SUCCEEDED"),
        ]
        assert "content_yaml" not in done
