"""Plans and findings for review and CI: markdown, GitHub annotations, GitLab reports."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from support.runner import Runner, apply_args
from support.workspace import Workspace, manifest_doc, spec

from dfr_emulator import Emulator
from reconciler.manifests import Manifest
from reconciler.plan import Plan, PlanOptions, make_plan
from reconciler.state.model import RunRecord, State
from reconciler.views.markdown import GITHUB_COMMENT_LIMIT, MARKER, render_plan_markdown

SPEC = "3c90c3cc-0d44-4b50-8888-8dd25736052a"
STAMP = "2024-01-01T00:00:00.000Z"


@pytest.fixture
def mixed(emu: Emulator, ws: Workspace, dfr: Runner) -> Workspace:
    """State with a FAILED run, a run whose manifest changes, and an orphan."""
    emu.configure(fail_next=1)
    ws.write("alpha", spec_version=2)  # the first created (one at a time, by name) ends FAILED
    ws.write("beta", number_of_samples=20, spec_version=2)
    ws.write("gamma", spec_version=2)
    assert dfr(*apply_args("--parallelism", "1", "manifests")).code == 1
    ws.write("beta", number_of_samples=40, spec_version=2)  # replace
    (ws.manifests / "gamma.yaml").unlink()  # orphan
    ws.write("delta", spec_version=2)  # create
    return ws


def synthetic_plan(n: int) -> Plan:
    manifests, runs = [], {}
    for i in range(n):
        name = f"run-{i:04d}"
        spec = {"spec_id": SPEC, "number_of_samples": 10 + i}
        manifests.append(Manifest(name, spec, {"team": "a"}, f"m/{name}.yaml", 5, 9))
        if i % 4 == 1:
            old = {**spec, "number_of_samples": 5}
            runs[name] = RunRecord.new(
                name, spec=old, run_id=f"id-{i}", status="PROCESSING", now=STAMP
            )
        elif i % 4 == 2:
            runs[name] = RunRecord.new(
                name,
                spec=spec,
                run_id=f"id-{i}",
                status="FAILED",
                failure_reason="model <overloaded> & gone",
                now=STAMP,
            )
    for j in range(5):
        runs[f"gone-{j}"] = RunRecord.new(
            f"gone-{j}", spec={"spec_id": SPEC}, run_id=f"g{j}", status="SUCCEEDED", now=STAMP
        )
    return make_plan(manifests, State(1, 3, "lineage", runs), PlanOptions())


def test_markdown_plan_structure(mixed: Workspace, dfr: Runner) -> None:
    code, out, _ = dfr("plan", "--format", "markdown", "manifests")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == MARKER
    assert "**Plan:** 1 to create, 1 to replace, 1 orphaned, 1 failed." in out
    assert "Samples to request: **50** in 2 runs." in out
    headings = [line for line in lines if line.startswith("#### ")]
    assert headings == [
        "#### Failed runs (1)",
        "#### To replace (1)",
        "#### To create (1)",
        "#### Orphaned (1)",
    ]
    assert out.count("<details><summary>") == out.count("</details>") == 4
    # The replace block is a field diff.
    assert "- number_of_samples = 20\n+ number_of_samples = 40" in out
    # The failed run says what the API says of it, and the resubmit command.
    assert "the API gives no reason" in out
    assert "dfr apply --replace alpha" in out
    # Fences are balanced; no "Saved the plan" chatter in a comment.
    assert out.count("```diff") * 2 == out.count("```")


def test_markdown_500_changes_fits_one_github_comment() -> None:
    plan = synthetic_plan(500)
    text = render_plan_markdown(plan)
    assert len(text) < GITHUB_COMMENT_LIMIT
    # The summary covers every change; details stop at the budget; the rest is counted.
    assert "**Plan:** 250 to create, 125 to replace, 5 orphaned, 125 failed." in text
    assert 10 < text.count("<details>") < 500
    shown_by_name = len(re.findall(r"^- `[a-z0-9-]+`: ", text, re.M))
    counted = sum(int(n.replace(",", "")) for n in re.findall(r"… and ([\d,]+) more_", text))
    assert text.count("<details>") + shown_by_name + counted == 505
    assert "`dfr plan` shows every one in full" in text
    # HTML in an API reason is escaped.
    assert "<overloaded>" not in text and "&lt;overloaded&gt;" in text
    # Still bounded for 5,000 changes.
    assert len(render_plan_markdown(synthetic_plan(5000))) < GITHUB_COMMENT_LIMIT


def test_markdown_small_plan_shows_everything_and_no_changes() -> None:
    text = render_plan_markdown(synthetic_plan(6))
    assert text.count("<details>") == 6 + 5  # 3 creates, 2 replaces, 1 failed, 5 orphans
    assert "listed by name only" not in text
    empty = make_plan([], State(1, 0, "l", {}))
    assert "No changes. Manifests and state agree (0 runs)." in render_plan_markdown(empty)


def test_plan_json_unchanged_and_summary_file(mixed: Workspace, dfr: Runner) -> None:
    code, out, _ = dfr("plan", "--format", "json", "--summary-file", "out/widget.json", "manifests")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["create"] == 1 and doc["summary"]["replace"] == 1
    assert json.loads((mixed.root / "out/widget.json").read_text()) == {
        "create": 1,
        "update": 1,
        "delete": 0,
    }
    # --prune: the orphan is deleted from state, so it counts as a delete.
    dfr("plan", "--prune", "--summary-file", "w2.json", "manifests")
    assert json.loads((mixed.root / "w2.json").read_text()) == {
        "create": 1,
        "update": 1,
        "delete": 1,
    }


def test_plan_github_annotations(
    mixed: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = dfr("plan", "--format", "github", "manifests")
    assert code == 0
    assert "Plan: 1 to create, 1 to replace, 1 orphaned." in out  # the text plan for the log
    warnings = [line for line in out.splitlines() if line.startswith("::warning")]
    assert len(warnings) == 2  # the failed run and the orphan (beta's old run finished)
    failed = next(w for w in warnings if "alpha" in w)
    assert failed.startswith("::warning file=manifests/alpha.yaml,line=")
    assert "dfr apply --replace alpha" in failed
    # auto: github inside GitHub Actions, text elsewhere.
    assert "::warning" not in dfr("plan", "--format", "auto", "manifests").out
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert "::warning" in dfr("plan", "--format", "auto", "manifests").out


def _invalid(ws: Workspace, errors: int, warnings: int) -> None:
    docs = [
        manifest_doc(f"bad-{i}", spec(spec_version=2, number_of_samples=0)) for i in range(errors)
    ]
    docs += [
        manifest_doc(f"warn-{i}", spec(spec_version=2, revision_model="anthropic/claude-haiku-4-5"))
        for i in range(warnings)
    ]
    ws.write_many(docs)


def test_github_annotations_are_capped_at_githubs_limits(ws: Workspace, dfr: Runner) -> None:
    _invalid(ws, errors=25, warnings=13)
    code, out, err = dfr("validate", "--format", "github", "manifests")
    assert code == 1
    assert sum(line.startswith("::error ") for line in out.splitlines()) == 10
    assert sum(line.startswith("::warning ") for line in out.splitlines()) == 10
    plain = [line for line in err.splitlines() if re.match(r"manifests/many.yaml:\d+:\d+: ", line)]
    assert len(plain) == 38  # every finding as a plain line
    assert "15 errors and 3 warnings not annotated" in err
    # plan --format github annotates validation errors the same way, then fails.
    code, out, err = dfr("plan", "--format", "github", "manifests")
    assert code == 1 and sum(line.startswith("::error ") for line in out.splitlines()) == 10
    assert "nothing was planned" in err


def test_gitlab_code_quality_report_with_stable_fingerprints(ws: Workspace, dfr: Runner) -> None:
    _invalid(ws, errors=3, warnings=1)
    code, out, err = dfr("validate", "--format", "gitlab", "manifests")
    assert code == 1
    report = json.loads(out)
    assert len(report) == 4 and "manifests/many.yaml:" in err
    for issue in report:
        assert set(issue) >= {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["location"]["path"] == "manifests/many.yaml"
        assert issue["severity"] in ("major", "minor")
    assert len({i["fingerprint"] for i in report}) == 4
    # Lines move (a comment added on top): same fingerprints, new line numbers.
    path = ws.manifests / "many.yaml"
    path.write_text("# a comment\n# another\n" + path.read_text())
    moved = json.loads(dfr("validate", "--format", "gitlab", "manifests").out)
    assert [i["fingerprint"] for i in moved] == [i["fingerprint"] for i in report]
    assert [i["location"]["lines"]["begin"] for i in moved] == [
        i["location"]["lines"]["begin"] + 2 for i in report
    ]
    # A valid tree is an empty report.
    path.write_text(yaml.safe_dump(manifest_doc("fine", spec(spec_version=2))))
    assert json.loads(dfr("validate", "--format", "gitlab", "manifests").out) == []
