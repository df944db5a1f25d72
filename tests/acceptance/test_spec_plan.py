"""`dfr plan` with Spec manifests: the order (text, Markdown), each action's `depends_on`
(JSON), no change for content equal after normalisation, one update for changed content,
runs on `latest` shown as affected and pinned ones left alone."""

from __future__ import annotations

import json
from typing import Any

from support.runner import Runner
from support.workspace import Workspace

from reconciler.speccontent import content_sha256
from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord, SpecRecord, SpecVersionRecord

SPEC_ID = "5d2e8f4a-1b3c-4d5e-8f6a-7b8c9d0e1f2a"
NOW = "2026-11-28T10:00:00.000Z"
CONTENT = {
    "description": "Support tickets",
    "requirements": "Each sample is one ticket.\n",
    "data_property_variations": [{"property_name": "priority", "property_values": ["low", "high"]}],
}
# The same content, written otherwise: keys in another order, flow style, other quotes.
SAME_CONTENT = """\
  content:
    data_property_variations: [{property_values: ['low', "high"], property_name: priority}]
    requirements: "Each sample is one ticket.\\n"
    description: 'Support tickets'
"""
CHANGED_CONTENT = """\
  content:
    description: Support tickets
    requirements: |
      Each sample is one ticket, in English.
    data_property_variations:
      - property_name: priority
        property_values: [low, high]
"""


def spec_doc(content: str = "") -> str:
    return (
        "apiVersion: dataframer.ai/v1\nkind: Spec\nmetadata:\n  name: tickets\nspec:\n"
        "  objectives: Customer support tickets for a SaaS product.\n" + content
    )


def run_doc(name: str, version: str) -> str:
    return (
        f"apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata:\n  name: {name}\n"
        f"spec:\n  spec_ref: {{name: tickets, version: {version}}}\n  number_of_samples: 10\n"
    )


def write_pipeline(ws: Workspace, content: str = SAME_CONTENT) -> None:
    """One seedless spec and three runs: one pinned to version 2, two on latest."""
    docs = [
        spec_doc(content),
        run_doc("tickets-pinned", "2"),
        run_doc("tickets-latest", "latest"),
        run_doc("tickets-latest-big", "latest"),
    ]
    ws.write_text("pipeline", "---\n".join(docs))


def record_applied(ws: Workspace) -> None:
    """The state one apply of the pipeline leaves: spec versions 1 (the API's) and 2
    (the manifest's content), three runs SUCCEEDED on version 2."""
    spec = SpecRecord(
        "tickets",
        NOW,
        spec_id=SPEC_ID,
        status="SUCCEEDED",
        versions=(
            SpecVersionRecord(1, "0" * 64, NOW, by_dfr=True),
            SpecVersionRecord(2, content_sha256(CONTENT), NOW, by_dfr=True),
        ),
    )
    with LocalBackend(ws.state).lock("test") as store:
        store.put_spec(spec)
        for name in ("tickets-pinned", "tickets-latest", "tickets-latest-big"):
            body: dict[str, Any] = {"spec_id": SPEC_ID, "number_of_samples": 10}
            if name == "tickets-pinned":
                body["spec_version"] = 2
            store.put(
                RunRecord(
                    name,
                    NOW,
                    run_id=f"run-{name}",
                    status="SUCCEEDED",
                    spec=body,
                    used={"spec_version": 2},
                )
            )


def test_from_nothing_the_spec_comes_first_and_every_run_depends_on_it(
    ws: Workspace, dfr: Runner
) -> None:
    write_pipeline(ws)
    r = dfr("plan", "--detailed-exitcode", "manifests")
    assert r.code == 2, r.text
    assert "# spec tickets will be created" in r.out
    assert "then its content is PUT as version 2 once it is SUCCEEDED" in r.out
    assert "spec_id           = (known after apply)" in r.out
    order = r.out.split("Order (each after what it waits for", 1)[1].splitlines()[1:5]
    assert [line.strip() for line in order] == [
        "1. spec/tickets (spec-create)",
        "2. run/tickets-latest (create) after spec/tickets",
        "3. run/tickets-latest-big (create) after spec/tickets",
        "4. run/tickets-pinned (create) after spec/tickets",
    ]
    assert "Specs: 1 to create, 0 to update, 0 unchanged." in r.out

    doc = json.loads(dfr("plan", "--json", "manifests").out)
    assert doc["order"] == [
        "spec/tickets",
        "run/tickets-latest",
        "run/tickets-latest-big",
        "run/tickets-pinned",
    ]
    (spec,) = doc["specs"]
    assert spec["action"] == "spec-create" and spec["depends_on"] == []
    assert spec["body"] == {
        "name": "tickets",
        "generation_objectives": "Customer support tickets for a SaaS product.",
    }
    assert spec["content_sha256"] == content_sha256(CONTENT)
    changes = {c["name"]: c for c in doc["changes"]}
    for change in changes.values():
        assert change["depends_on"] == ["spec/tickets"] and change["unknown"] == ["spec_id"]
        assert "spec_id" not in change["body"] and "spec_ref" not in change["body"]
    assert changes["tickets-pinned"]["body"] == {"number_of_samples": 10, "spec_version": 2}

    md = dfr("plan", "--format", "markdown", "manifests").out
    assert "#### Order" in md
    assert md.index("1. `spec/tickets` (spec-create)") < md.index("2. `run/tickets-latest`")
    assert "4. `run/tickets-pinned` (create) after `spec/tickets`" in md


def test_content_equal_after_normalisation_plans_no_change(ws: Workspace, dfr: Runner) -> None:
    write_pipeline(ws, SAME_CONTENT)
    record_applied(ws)
    r = dfr("plan", "--detailed-exitcode", "manifests")
    assert r.code == 0, r.text
    assert r.out.startswith("No changes. Manifests and state agree (3 runs, 1 spec).")
    doc = json.loads(dfr("plan", "--json", "manifests").out)
    assert [s["action"] for s in doc["specs"]] == ["noop"]
    assert {c["name"]: c["body"]["spec_id"] for c in doc["changes"]} == dict.fromkeys(
        ("tickets-latest", "tickets-latest-big", "tickets-pinned"), SPEC_ID
    )


def test_changed_content_is_one_update_pinned_runs_plan_nothing_latest_ones_are_affected(
    ws: Workspace, dfr: Runner
) -> None:
    write_pipeline(ws, CHANGED_CONTENT)
    record_applied(ws)
    r = dfr("plan", "--detailed-exitcode", "manifests")
    assert r.code == 2, r.text
    assert r.out.count("will be updated") == 1
    assert "# spec tickets will be updated (version 3)" in r.out
    assert "content = version 2 -> version 3" in r.out
    assert "# tickets-latest is SUCCEEDED" in r.out and "affected: uses latest" in r.out
    assert "dfr apply --replace tickets-latest" in r.out
    assert "# tickets-pinned" not in r.out  # nothing to show for the pinned run
    assert "Plan: 0 to create, 0 to replace, 0 orphaned." in r.out
    assert "runs on latest affected: tickets-latest, tickets-latest-big" in r.out

    doc = json.loads(dfr("plan", "--json", "manifests").out)
    (spec,) = doc["specs"]
    assert spec["action"] == "spec-update" and spec["spec_id"] == SPEC_ID
    assert (spec["base_version"], spec["new_version"]) == (2, 3)
    assert spec["content_yaml"].startswith("spec:\n  data_property_variations:")
    changes = {c["name"]: c for c in doc["changes"]}
    assert {n: c["action"] for n, c in changes.items()} == dict.fromkeys(changes, "noop")
    assert changes["tickets-latest"]["affected_by"] == "spec/tickets"
    assert changes["tickets-pinned"]["affected_by"] is None
    assert doc["summary"]["specs"] == {
        "create": 0,
        "update": 1,
        "noop": 0,
        "failed": 0,
        "resolve": 0,
        "affected_runs": 2,
    }
    md = dfr("plan", "--format", "markdown", "manifests").out
    assert "#### Affected" in md and "`tickets-latest-big`" in md


def test_a_saved_plan_with_a_spec_change_is_refused_once_the_content_moved(
    ws: Workspace, dfr: Runner
) -> None:
    write_pipeline(ws, CHANGED_CONTENT)
    record_applied(ws)
    assert dfr("plan", "--out", "spec.plan", "manifests").code == 0
    saved = json.loads((ws.root / "spec.plan").read_text())
    assert [s["action"] for s in saved["plan"]["specs"]] == ["spec-update"]
    write_pipeline(ws, SAME_CONTENT)
    r = dfr("apply", "--auto-approve", "spec.plan")
    assert r.code == 1
    assert "stale: the manifests changed since the plan was made" in r.err


def test_import_checks_and_records_a_spec_ref_run_by_its_resolved_spec_id(
    ws: Workspace, dfr: Runner
) -> None:
    # A run of another spec must not be adopted for a manifest that names its spec by
    # spec_ref, and an adopted one is recorded with the id: no replace is planned.
    write_pipeline(ws)
    ws.write("other")  # a run of another spec (by spec_id)
    assert dfr(*ws.apply_args()).code == 0
    pinned, other = ws.run_ids()["tickets-pinned"], ws.run_ids()["other"]
    assert pinned is not None and other is not None
    assert dfr("state", "rm", "tickets-pinned").code == 0
    assert dfr("state", "rm", "other").code == 0
    r = dfr("import", "tickets-pinned", str(other), "manifests")
    assert r.code == 1 and "does not match manifest 'tickets-pinned'" in r.err
    assert dfr("import", "tickets-pinned", str(pinned), "manifests").code == 0
    assert (
        ws.record("tickets-pinned")["spec"]["spec_id"]
        == ws.state_doc()["specs"]["tickets"]["spec_id"]
    )
    r = dfr("plan", "--json", "manifests")
    assert {c["name"]: c["action"] for c in json.loads(r.out)["changes"]}["tickets-pinned"] == (
        "noop"
    )


def test_import_of_a_run_whose_spec_state_does_not_know_is_refused(
    ws: Workspace, dfr: Runner
) -> None:
    write_pipeline(ws)
    r = dfr("import", "tickets-pinned", "3c90c3cc-0d44-4b50-8888-8dd25736052a", "manifests")
    assert r.code == 1
    assert "names spec 'tickets' by spec_ref, and state records no id for it yet" in r.err


def test_a_failed_spec_is_annotated_for_review_and_specs_count_in_the_mr_summary(
    ws: Workspace, dfr: Runner
) -> None:
    write_pipeline(ws)
    assert dfr("plan", "--summary-file", "summary.json", "manifests").code == 0
    summary = json.loads((ws.root / "summary.json").read_text())
    assert summary == {"create": 4, "update": 0, "delete": 0}  # the spec and its three runs
    failed = SpecRecord(
        "tickets", NOW, spec_id=SPEC_ID, status="FAILED", error="objectives too vague"
    )
    with LocalBackend(ws.state).lock("test") as store:
        store.put_spec(failed)
    r = dfr("plan", "--format", "github", "manifests")
    assert r.code == 0, r.text
    assert (
        "::warning file=manifests/pipeline.yaml,line=4,col=9,title=dfr%3A spec tickets failed::"
        "spec tickets ended FAILED: objectives too vague" in r.out
    )
    assert "# spec tickets ended FAILED" in r.out
