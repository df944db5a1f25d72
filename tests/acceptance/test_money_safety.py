"""Issue 13, items 1, 3, 4 and 5: the holes that cost money or hide what is paid for.

Each test reproduces the attack from the issue through the real CLI against
the emulator, and checks what the API ends up holding: no run paid twice, no
superseded run left running, no run canceled that the user did not ask for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.emulators import KEY, SLOW, cancels, emu_status, posts
from support.runner import Runner, apply_args
from support.unfinished import submit_unfinished
from support.workspace import Workspace, spec

from dfr_emulator import Emulator
from reconciler.api import DataframerClient
from reconciler.apply import Applier, ApplyOptions
from reconciler.manifests import Manifest
from reconciler.plan import make_plan
from reconciler.state.local import LocalBackend
from reconciler.state.memory import InMemoryBackend
from reconciler.state.model import Intent, RunRecord, State


def unfinished(emu: Emulator) -> list[dict[str, Any]]:
    return [r for r in emu.runs() if r["status"] in ("PENDING", "PROCESSING")]


# -- 1. a replace whose answer was lost cancels the run it replaced -----------------------------


def test_a_replace_whose_answer_was_lost_still_cancels_the_old_run(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    # Runs held unfinished, as in the issue.
    submit_unfinished(emu, ws, dfr, "alpha", number_of_samples=111)
    old = str(ws.record("alpha")["run_id"])
    ws.write("alpha", number_of_samples=112)
    emu.configure(ambiguous_posts=1)  # the replacement is created; its answer is lost
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert "adopted" in err
    new = str(ws.record("alpha")["run_id"])
    assert new != old
    assert emu_status(emu, old) == "CANCELED", "the replaced run was left running"
    assert [r["id"] for r in unfinished(emu)] == [new]
    assert posts(emu) == 2 and cancels(emu) == 1
    assert ws.record("alpha")["previous_run_ids"] == [old]


def _replace_left_unconfirmed(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> tuple[str, dict[str, Any]]:
    """A run of 111 samples, and what a kill right after its replacement's POST leaves:
    the replacement's intent (112 samples), naming the run it replaces."""
    submit_unfinished(emu, ws, dfr, "alpha", number_of_samples=111)
    old = str(ws.record("alpha")["run_id"])
    body = spec(number_of_samples=112)
    with LocalBackend(ws.state).lock("test") as store:
        prior = store.state.runs["alpha"]
        store.put(
            RunRecord.new(
                "alpha",
                spec=body,
                intent=Intent.new(body, replaces=old),
                attempts=2,
                previous_run_ids=[old],
            ).evolve(labels=prior.labels)
        )
    return old, body


def test_a_replace_lost_in_an_earlier_apply_cancels_the_old_run_when_found(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    """The kill between the POST and the id: the next apply finds the successor."""
    old, body = _replace_left_unconfirmed(emu, ws, dfr)
    with DataframerClient(emu.base_url, KEY) as api:
        successor = api.create_run(body).id
    ws.write("alpha", number_of_samples=112)
    code, out, err = dfr("plan", "manifests")
    assert "1 to resolve" in out and f"replaces run {old}" in out, out
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert ws.record("alpha")["run_id"] == successor
    assert emu_status(emu, old) == "CANCELED"
    assert posts(emu) == 2  # the first run and the replacement: nothing paid twice


def test_a_replace_lost_with_nothing_created_still_cancels_the_old_run_after_resubmitting(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    old, _body = _replace_left_unconfirmed(emu, ws, dfr)
    ws.write("alpha", number_of_samples=112)
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))  # nothing found: submit
    assert code == 0, out + err
    new = str(ws.record("alpha")["run_id"])
    assert new != old and emu_status(emu, old) == "CANCELED"
    assert [r["id"] for r in unfinished(emu)] == [new]


# -- 3. what was reviewed is what runs ----------------------------------------------------------


def _lost_submission(ws: Workspace, emu: Emulator, samples: int) -> str:
    """State as a lost answer leaves it: an intent for `samples`, the run on the API."""
    body = spec(number_of_samples=samples)
    with LocalBackend(ws.state).lock("test") as store:
        store.put(RunRecord.new("alpha", spec=body, intent=Intent.new(body), attempts=1))
    with DataframerClient(emu.base_url, KEY) as api:
        return api.create_run(body).id


def test_an_unresolved_intent_for_another_body_is_shown_and_then_replaced(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(**SLOW)
    lost = _lost_submission(ws, emu, 141)
    ws.write("alpha", number_of_samples=142)
    code, out, _ = dfr("plan", "manifests")
    assert code == 0
    # The plan says what resolving it does, with the difference.
    assert "1 to resolve" in out
    assert "the manifest changed since that submission (number_of_samples)" in out
    assert "~ number_of_samples = 141 -> 142" in out
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    record = ws.record("alpha")
    assert record["spec"]["number_of_samples"] == 142 and record["run_id"] != lost
    assert emu_status(emu, lost) == "CANCELED"
    assert record["previous_run_ids"] == [lost]
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0 and "No changes" in out, out


def test_an_unresolved_intent_for_the_same_body_is_only_adopted(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    lost = _lost_submission(ws, emu, 141)
    ws.write("alpha", number_of_samples=141)
    code, out, _ = dfr("plan", "manifests")
    assert "a run found is adopted; none found, this body is submitted" in out
    code, out, err = dfr(*apply_args("manifests"))
    assert code == 0, out + err
    assert ws.record("alpha")["run_id"] == lost and posts(emu) == 1


def test_apply_never_ends_complete_while_a_recorded_run_differs(tmp_path: Path) -> None:
    """The safety net: state that does not answer the manifest after apply is a failure."""

    class API:
        def create_run(self, body: dict[str, Any]) -> Any:
            raise AssertionError("nothing to submit")

        def list_runs(self) -> list[Any]:
            return []

        def get_run(self, run_id: str) -> Any:
            raise AssertionError("not needed")

        def cancel_run(self, run_id: str) -> None:
            raise AssertionError("not needed")

    manifest = Manifest("alpha", spec(number_of_samples=5))
    record = RunRecord.new("alpha", spec=manifest.body, run_id="r", status="SUCCEEDED")
    backend = InMemoryBackend(State.empty().with_record(record))
    with backend.lock("apply") as store:
        plan = make_plan([manifest], store.state)
        # The state moves under the plan without a new serial (a bug elsewhere).
        store.state.runs["alpha"] = record.evolve(spec=spec(number_of_samples=6))
        report = Applier(API(), store, options=ApplyOptions(wait=False)).run(plan)
    assert not report.ok and "number_of_samples" in report.diverged["alpha"]


# -- 4. a renamed manifest: the plan says so --------------------------------------------------


def test_a_create_with_an_orphans_body_hints_at_state_mv(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    ws.write("old-name", number_of_samples=33)
    assert dfr(*apply_args("manifests")).code == 0
    ws.remove("old-name")
    ws.write("new-name", number_of_samples=33)
    _code, out, _ = dfr("plan", "manifests")
    assert "looks like a rename of 'old-name' (same body)" in out
    assert "dfr state mv old-name new-name" in out


# -- 5. a run is an orphan only when its manifest file was read -------------------------------


def _two_folders(ws: Workspace, dfr: Runner) -> tuple[Path, Path]:
    a, b = ws.root / "a", ws.root / "b"
    a.mkdir()
    b.mkdir()
    for folder, name, samples in ((a, "in-a", 21), (a, "also-a", 23), (b, "in-b", 22)):
        (folder / f"{name}.yaml").write_text(
            "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
            f"metadata: {{name: {name}}}\n"
            f"spec: {{spec_id: {spec()['spec_id']}, spec_version: 1, "
            f"number_of_samples: {samples}}}\n"
        )
    code, out, err = dfr(*apply_args("--no-wait", "a", "b"))
    assert code == 0, out + err
    assert ws.record("in-a")["source"] == "a/in-a.yaml"
    return a, b


def test_naming_a_subset_of_manifests_leaves_the_others_out_of_scope(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(**SLOW)
    _two_folders(ws, dfr)
    code, out, _ = dfr("plan", "--detailed-exitcode", "--prune", "a")
    assert code == 0, out  # nothing to do: in-b is not an orphan
    assert "orphaned" not in out.split("Plan:")[-1] or "0 orphaned" in out
    assert "out of this plan's scope (never pruned): in-b" in out
    code, out, err = dfr("apply", "--auto-approve", "--no-wait", "--prune", "a")
    assert code == 0, out + err
    assert cancels(emu) == 0 and ws.run_ids()["in-b"] is not None


def test_a_deleted_manifest_inside_the_paths_read_is_an_orphan(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(**SLOW)
    a, _b = _two_folders(ws, dfr)
    (a / "in-a.yaml").unlink()
    code, out, _ = dfr("plan", "--detailed-exitcode", "--prune", "a")
    assert code == 2 and '- run "in-a"' in out
    code, out, err = dfr("apply", "--auto-approve", "--no-wait", "--prune", "a")
    assert code == 0, out + err
    assert cancels(emu) == 1 and "in-a" not in ws.run_ids() and "in-b" in ws.run_ids()


def test_prune_refuses_a_run_whose_manifest_lost_its_header(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    emu.configure(**SLOW)
    a, _b = _two_folders(ws, dfr)
    text = (a / "in-a.yaml").read_text()
    (a / "in-a.yaml").write_text(
        text.replace("apiVersion: dataframer.ai/v1\nkind: GenerationRun\n", "")
    )
    code, _out, err = dfr("apply", "--auto-approve", "--no-wait", "--prune", "a", "b")
    assert code == 1
    assert "skipped" in err and "refusing to prune: in-a" in err
    assert cancels(emu) == 0 and ws.run_ids()["in-a"] is not None
    code, _out, err = dfr("plan", "--prune", "a", "b")
    assert code == 1 and "refusing to prune" in err


# -- 2. one refresh against the wrong API never makes the next apply pay again ------------------


def test_a_state_refuses_another_api_url_without_switch_api(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    assert ws.record("alpha")["api"] == emu.base_url
    from dfr_emulator import EmulatorConfig

    with Emulator(EmulatorConfig(api_key=KEY)) as staging:
        for command in (("refresh",), (*apply_args("--no-wait", "manifests"),)):
            code, out, err = dfr(*command, "--api-url", staging.base_url)
            assert code == 1, out + err
            assert f"belong to {emu.base_url}, not {staging.base_url}" in err
            assert "--switch-api" in err
        code, out, err = dfr("plan", "--refresh", "--api-url", staging.base_url, "manifests")
        assert code == 1 and "--switch-api" in err
        assert staging.runs() == []  # nothing was sent there
        # Switching on purpose to an API that does not know the runs: all 404 at once.
        code, out, err = dfr("refresh", "--switch-api", "--api-url", staging.base_url)
        assert code == 1 and "knows none of this state's runs" in err, err
        assert ws.record("alpha")["api"] == emu.base_url
        assert staging.runs() == []
    assert ws.record("alpha")["drift"] is None
    assert dfr(*apply_args("--no-wait", "manifests")).code == 0
    assert posts(emu) == 1


def _two_unfinished_runs(emu: Emulator, ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha", number_of_samples=11)
    submit_unfinished(emu, ws, dfr, "beta", number_of_samples=12)


def test_when_every_run_404s_the_api_is_suspected_until_confirmed(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    _two_unfinished_runs(emu, ws, dfr)
    ids = ws.run_ids()
    for run_id in ids.values():
        emu.forget(str(run_id))  # as another account's key would see it
    code, _out, err = dfr("refresh")
    assert code == 1 and "all 2 recorded runs asked for answered 404" in err
    assert all(ws.record(n)["drift"] is None for n in ids)
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 0, out  # nothing to resubmit
    # Really deleted: confirmed, recorded as gone, then resubmitted (re-read first).
    code, _out, err = dfr("refresh", "--confirm-gone")
    assert code == 0, err
    assert {ws.record(n)["drift"] for n in ids} == {"not_found"}
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert posts(emu) == 4


def test_one_run_gone_among_others_is_recorded_gone(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    _two_unfinished_runs(emu, ws, dfr)
    emu.forget(str(ws.record("alpha")["run_id"]))
    code, _out, err = dfr("refresh")
    assert code == 0, err
    assert ws.record("alpha")["drift"] == "not_found" and ws.record("beta")["drift"] is None


def test_a_404_recorded_earlier_is_read_again_before_paying_again(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    run_id = ws.record("alpha")["run_id"]
    with LocalBackend(ws.state).lock("test") as store:  # a 404 seen once, by a glitch
        store.put(store.state.runs["alpha"].evolve(drift="not_found"))
    code, out, _ = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2 and "no longer exists" in out
    code, out, err = dfr(*apply_args("--no-wait", "manifests"))
    assert code == 0, out + err
    assert "exists after all" in err
    assert posts(emu) == 1
    record = ws.record("alpha")
    assert record["run_id"] == run_id and record["drift"] is None


def test_switch_api_moves_the_state_when_the_new_url_knows_its_runs(
    emu: Emulator, ws: Workspace, dfr: Runner
) -> None:
    submit_unfinished(emu, ws, dfr, "alpha")
    moved = emu.base_url.replace("127.0.0.1", "localhost")  # the same service, renamed
    assert dfr("refresh", "--api-url", moved).code == 1
    code, _out, err = dfr("refresh", "--switch-api", "--api-url", moved)
    assert code == 0, err
    assert ws.record("alpha")["api"] == moved
    assert dfr("refresh", "--api-url", moved).code == 0
    assert dfr("refresh", "--api-url", emu.base_url + "/").code == 1  # now the old one differs
