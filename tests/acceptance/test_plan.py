"""`dfr plan` end to end: every action, the field diff, exit codes, JSON output."""

from __future__ import annotations

from support.emulators import posts, requests
from support.runner import Runner, apply_args, parse_json
from support.unfinished import apply_finished
from support.workspace import Workspace

from dfr_emulator import SPEC_PRODUCT_REVIEWS, Emulator


def test_plan_shows_creates_as_written_and_is_offline(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha", number_of_samples=25)
    ws.write("beta")
    code, out, _ = dfr("plan", "manifests")
    assert code == 0
    assert "# alpha will be created" in out and "# beta will be created" in out
    assert '+ run "alpha"' in out
    assert "number_of_samples" in out and "25" in out
    # Only what the manifest says is sent: defaults are the API's, not filled in.
    assert "generation_model" not in out and "gemini" not in out
    assert "Plan: 2 to create, 0 to replace, 0 orphaned." in out
    assert "Samples to request: 35." in out
    assert requests(emu) == 0  # plan is offline
    assert not ws.state.exists() or ws.state_doc()["runs"] == {}


def test_detailed_exitcode_and_noop_after_apply(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 2
    assert dfr(*apply_args("manifests")).code == 0
    before = requests(emu)
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0
    assert "No changes. Manifests and state agree (1 run)." in out
    assert requests(emu) == before
    # Without the flag, changes still exit 0.
    ws.write("alpha", number_of_samples=11)
    assert dfr("plan", "manifests").code == 0
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 2


def test_changed_field_is_one_replace_with_the_diff(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha", "beta")
    old_id = ws.record("alpha")["run_id"]
    ws.write("alpha", number_of_samples=20, generation_model="anthropic/claude-haiku-4-5")
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2
    assert "# alpha must be replaced" in out
    assert '-/+ run "alpha"' in out
    assert f'- run_id = "{old_id}" -> (known after apply)' in out
    assert "~ number_of_samples" in out and "10 -> 20" in out
    # "Before" is the model the API chose and reported (the manifest named none).
    assert '"anthropic/claude-sonnet-5-5-thinking" -> "anthropic/claude-haiku-4-5"' in out
    assert "unchanged fields hidden" in out
    assert "beta" not in out  # noops are not shown
    assert "Plan: 0 to create, 1 to replace, 0 orphaned." in out
    # Finished: nothing to cancel.
    assert "will be canceled" not in out


def test_writing_out_what_the_api_used_is_not_a_change(ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    assert dfr(*apply_args("manifests")).code == 0
    used = ws.record("alpha")["used"]
    ws.write(
        "alpha",
        spec_version=used["spec_version"],
        generation_model=used["generation_model"],
        enable_revisions=False,
        max_revision_cycles=3,  # revisions are off: the API reports null, it does not apply
        revision_types=[],
        seed_shuffling_level=used["seed_shuffling_level"],
        unified_multifield=used["unified_multifield"],
    )
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert (code, "No changes" in out) == (0, True), out
    # And the reverse: leaving out a value that was written before is no change either.
    ws.write("alpha")
    assert dfr("plan", "--detailed-exitcode", "manifests").code == 0


def test_orphan_is_reported_and_pruning_is_a_change(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    apply_finished(ws, dfr, "alpha", "beta")
    beta_id = ws.record("beta")["run_id"]
    ws.remove("beta")
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0  # only reported: nothing would be done
    assert "# beta is orphaned" in out and "in state, but no manifest names it" in out
    assert '? run "beta"' in out and beta_id in out
    assert "`dfr apply --prune`" in out
    code, out, _ = dfr("plan", "--detailed-exitcode", "--prune", "manifests")
    assert code == 2
    assert '- run "beta"' in out and "will be removed from state" in out


def test_failed_runs_are_shown_with_the_command_to_resubmit(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    emu.configure(fail_next=1)
    assert dfr(*apply_args("manifests")).code == 1
    assert ws.record("alpha")["failure_reason"] is None  # the API gives none
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0  # a failed run is not resubmitted unless asked
    assert "# alpha is FAILED" in out
    assert "the API gives no reason" in out
    assert "dfr apply --replace alpha" in out
    code, out, _ = dfr("plan", "--detailed-exitcode", "--replace", "alpha", "manifests")
    assert code == 2
    assert "replacement requested with --replace" in out


def test_plan_json_is_one_document(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    apply_finished(ws, dfr, "alpha", "beta", "gamma")
    ws.write("alpha", spec_id=SPEC_PRODUCT_REVIEWS)
    ws.remove("beta")
    ws.write("delta", number_of_samples=7)
    code, out, err = dfr("plan", "--json", "manifests")
    assert code == 0
    doc = parse_json(out)
    actions = {c["name"]: c["action"] for c in doc["changes"]}
    assert actions == {"alpha": "replace", "beta": "orphan", "delta": "create", "gamma": "noop"}
    alpha = next(c for c in doc["changes"] if c["name"] == "alpha")
    assert [f["field"] for f in alpha["fields"]] == ["spec_id"]
    assert alpha["fields"][0]["after"] == SPEC_PRODUCT_REVIEWS
    assert doc["summary"]["create"] == 1 and doc["summary"]["samples"] == 17
    assert doc["state"]["serial"] == ws.state_doc()["serial"]
    assert "Traceback" not in err


def test_usage_and_manifest_errors_exit_1(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha")
    code, _, err = dfr("plan", "--no-such-flag", "manifests")
    assert code == 1 and "no-such-flag" in err
    code, _, err = dfr("plan", "--detailed-exitcode", "--replace", "nobody", "manifests")
    assert code == 1 and "nobody" in err
    (ws.manifests / "bad.yaml").write_text(
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata: {name: bad}\n"
        "spec:\n  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a\n  number_of_samples: 0\n"
    )
    code, out, err = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 1
    assert "bad.yaml:6:" in err and "error:" in err
    assert out == ""
    assert requests(emu) == 0
    assert posts(emu) == 0
