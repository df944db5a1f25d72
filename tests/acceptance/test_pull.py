"""`dfr pull`: a SUCCEEDED run's files in outputs.path, verified, swapped in whole, recorded.

Against the emulator over real HTTP: its API on one loopback listener, the
presigned URLs on a second one (the file host), which counts every request
that carries an Authorization header or the API key.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.runner import Runner
from support.workspace import Workspace, manifest_text

from dfr_emulator import Emulator
from dfr_emulator.files import GeneratedFile, RunOutput


def outputs_manifest(ws: Workspace, name: str, path: str | None = None, files: str = "") -> None:
    extra = f"outputs:\n  path: {path or 'data/' + name}\n" + files
    ws.write_text(name, manifest_text(name, extra))


def applied(ws: Workspace, dfr: Runner, *names: str, **layout: Any) -> dict[str, str]:
    """Write a manifest with outputs per name, apply them; name -> run id."""
    for name in names:
        outputs_manifest(ws, name, **layout)
    result = dfr("apply", "--auto-approve", ws.manifests)
    assert result.code == 0, result.err
    ids = ws.run_ids()
    return {name: str(ids[name]) for name in names}


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pulled_record(ws: Workspace, name: str) -> dict[str, Any]:
    outputs: dict[str, Any] = ws.record(name)["outputs"]
    return outputs


def host_stats(emu: Emulator) -> dict[str, Any]:
    return emu.file_host_stats()


def no_staging_left(ws: Workspace) -> None:
    assert not [p for p in ws.root.rglob("*.dfr-pull")], "a staging folder was left behind"


# --------------------------------------------------------------------------- the loop


def test_pull_writes_exactly_the_run_files_and_records_their_sha256(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    result = dfr("pull")
    assert result.code == 0, result.err
    expected = emu.run_files(run_id)
    assert files_of(ws.root / "data/tickets") == expected
    record = pulled_record(ws, "tickets")
    assert record["path"] == "data/tickets"
    assert record["run_id"].lower() == run_id.lower()
    assert {f["path"]: (f["size"], f["sha256"]) for f in record["files"]} == {
        path: (len(data), sha(data)) for path, data in expected.items()
    }
    assert "tickets: pulled 5 files into data/tickets (5 downloaded, 0 reused)" in result.err
    no_staging_left(ws)


def test_the_api_key_never_reaches_the_file_host(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    applied(ws, dfr, "tickets")
    assert dfr("pull").code == 0
    stats = host_stats(emu)
    assert stats["downloads"] >= 5
    assert stats["authorization_headers"] == 0
    assert stats["api_key_seen"] == 0


@pytest.mark.parametrize("parallelism", [1, 3])
def test_parallelism_bounds_the_downloads_in_flight(
    ws: Workspace, dfr: Runner, emu: Emulator, parallelism: int
) -> None:
    """Two runs of 5 files each, every download held 0.15 s by the file host: at
    most --parallelism bodies are ever in flight at once, across runs too."""
    applied(ws, dfr, "tickets", "reviews")
    emu.configure(download_latency=0.15)
    result = dfr("pull", "--parallelism", str(parallelism))
    assert result.code == 0, result.err
    stats = host_stats(emu)
    assert stats["downloads"] == 10
    assert 1 <= stats["max_in_flight"] <= parallelism, stats


def test_the_largest_files_are_downloaded_first(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    """The big files set how long a pull takes: with one download at a time, the
    file host is asked for the run's files from the largest to the smallest."""
    applied(ws, dfr, "tickets")
    result = dfr("pull", "--parallelism", "1")
    assert result.code == 0, result.err
    sizes = host_stats(emu)["download_sizes"]
    assert len(sizes) == 5
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > sizes[-1]


def test_runs_are_listed_and_staged_while_earlier_runs_download(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """With one download slot, the second run does not wait for the first to be
    swapped in before it is listed and staged: a freed slot always finds a file."""
    applied(ws, dfr, "tickets", "reviews")
    emu.configure(download_latency=0.15)
    proc = ws.start("pull", "--parallelism", "1", "--no-progress")
    staged_together = False
    while proc.poll() is None and not staged_together:
        staged = {p.name for p in (ws.root / "data").glob(".*.dfr-pull")}
        staged_together = staged == {".tickets.dfr-pull", ".reviews.dfr-pull"}
        time.sleep(0.01)
    result = ws.finish(proc)
    assert result.code == 0, result.err
    assert staged_together, "the second run was staged only after the first was swapped in"
    assert host_stats(emu)["max_in_flight"] == 1


def test_a_second_pull_downloads_nothing(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    applied(ws, dfr, "tickets")
    assert dfr("pull").code == 0
    before = host_stats(emu)["downloads"]
    again = dfr("pull")
    assert again.code == 0
    assert "tickets: up to date (5 files)" in again.err
    assert host_stats(emu)["downloads"] == before


def test_globs_select_the_files_and_a_changed_selection_is_pulled_again(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = applied(ws, dfr, "tickets", files="  files: ['data/*.jsonl']\n")["tickets"]
    assert dfr("pull").code == 0
    assert sorted(files_of(ws.root / "data/tickets")) == [
        "data/part-0001.jsonl",
        "data/part-0002.jsonl",
    ]
    outputs_manifest(ws, "tickets", files="  files: ['*.md', 'data/part-0002.jsonl']\n")
    check = dfr("pull", "--check")
    assert check.code == 1
    assert "outputs.files changed" in check.out
    assert dfr("pull").code == 0
    expected = emu.run_files(run_id)
    assert files_of(ws.root / "data/tickets") == {
        p: expected[p] for p in ("data/part-0002.jsonl", "reports/quality/overview.md")
    }


# --------------------------------------------------------------------------- --check


def test_check_passes_on_a_pulled_folder_and_names_modified_and_missing_files(
    ws: Workspace, dfr: Runner
) -> None:
    applied(ws, dfr, "tickets")
    never = dfr("pull", "--check")
    assert never.code == 1
    assert "tickets: data/tickets: never pulled" in never.out
    assert dfr("pull").code == 0
    assert dfr("pull", "--check").code == 0
    folder = ws.root / "data/tickets"
    (folder / "run_summary.json").write_bytes(b"{}\n")
    (folder / "tables/property_counts.csv").unlink()
    check = dfr("pull", "--check")
    assert check.code == 1
    assert "  modified: run_summary.json" in check.out
    assert "  missing:  tables/property_counts.csv" in check.out
    # A same-size edit is caught by the sha256, not only by the size.
    assert dfr("pull").code == 0
    data = (folder / "run_summary.json").read_bytes()
    (folder / "run_summary.json").write_bytes(data[:-2] + b"X\n")
    assert "  modified: run_summary.json" in dfr("pull", "--check").out


def test_check_ignores_files_of_the_user_and_pull_keeps_them(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr, "tickets")
    folder = ws.root / "data/tickets"
    folder.mkdir(parents=True)
    (folder / "NOTES.md").write_text("mine\n")
    assert dfr("pull").code == 0
    assert (folder / "NOTES.md").read_text() == "mine\n"
    assert dfr("pull", "--check").code == 0


def test_pull_restores_only_what_differs(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    assert dfr("pull").code == 0
    folder = ws.root / "data/tickets"
    (folder / "run_summary.json").write_bytes(b"{}\n")
    before = host_stats(emu)["downloads"]
    result = dfr("pull")
    assert result.code == 0
    assert "(1 downloaded, 4 reused)" in result.err
    assert host_stats(emu)["downloads"] == before + 1
    assert files_of(folder) == emu.run_files(run_id)


# --------------------------------------------------------------------------- faults


@pytest.mark.emulator(truncated_downloads=1, truncate_after_bytes=1000)
def test_a_truncated_download_is_retried(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    assert dfr("pull").code == 0
    stats = host_stats(emu)
    assert stats["injected"].get("truncated") == 1
    files = emu.run_files(run_id)
    assert files_of(ws.root / "data/tickets") == files
    # The retry went on from the cut (Range + If-Match): no byte was sent twice.
    assert stats["responses"].get("206") == 1
    assert stats["bytes_sent"] == sum(len(data) for data in files.values())


@pytest.mark.emulator(truncated_downloads=2, truncate_after_bytes=1000)
def test_a_download_truncated_twice_fails_naming_the_file_and_swaps_nothing(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    result = dfr("pull", "--parallelism", "1")
    assert result.code == 1
    assert "tickets: failed: run tickets: data/part-0001.jsonl:" in result.err
    assert "(tried twice)" in result.err
    assert not (ws.root / "data/tickets").exists()
    assert ws.record("tickets").get("outputs") is None
    # The next pull completes.
    assert dfr("pull").code == 0
    assert files_of(ws.root / "data/tickets") == emu.run_files(run_id)
    no_staging_left(ws)


@pytest.mark.emulator(wrong_size_downloads=1)
def test_a_wrong_size_download_is_retried(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    assert dfr("pull").code == 0
    assert host_stats(emu)["injected"].get("wrong_size") == 1
    assert files_of(ws.root / "data/tickets") == emu.run_files(run_id)


@pytest.mark.emulator(wrong_size_downloads=2)
def test_a_download_of_the_wrong_size_twice_fails_and_the_old_folder_stays(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    applied(ws, dfr, "tickets")
    emu.configure(wrong_size_downloads=0)
    assert dfr("pull").code == 0
    old = files_of(ws.root / "data/tickets")
    old_record = pulled_record(ws, "tickets")
    (ws.root / "data/tickets/run_summary.json").unlink()
    emu.configure(wrong_size_downloads=2)
    result = dfr("pull", "--parallelism", "1")
    assert result.code == 1
    assert "run_summary.json" in result.err
    old.pop("run_summary.json")
    assert files_of(ws.root / "data/tickets") == old  # untouched: nothing half-swapped
    assert pulled_record(ws, "tickets") == old_record


@pytest.mark.emulator(expired_urls=1)
def test_an_expired_link_is_fetched_afresh_once(ws: Workspace, dfr: Runner, emu: Emulator) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    assert dfr("pull", "--parallelism", "1").code == 0
    assert host_stats(emu)["injected"].get("expired_url_refused") == 1
    assert files_of(ws.root / "data/tickets") == emu.run_files(run_id)


@pytest.mark.emulator(expired_urls=2)
def test_a_fresh_link_that_is_expired_too_fails(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr, "tickets")
    result = dfr("pull", "--parallelism", "1")
    assert result.code == 1
    assert "refused the download link (403 Forbidden), also with a fresh link" in result.err
    assert not (ws.root / "data/tickets").exists()


# --------------------------------------------------------------------------- names


def test_unknown_and_bare_names_are_refused(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr, "tickets")
    ws.write_text("plain", manifest_text("plain"))
    assert "no manifest is named 'nope'" in dfr("pull", "nope").err
    bare = dfr("pull", "plain")
    assert bare.code == 1
    assert "'plain' has no outputs: section" in bare.err


def test_named_pull_pulls_only_those_named(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr, "tickets", "reviews")
    assert dfr("pull", "reviews").code == 0
    assert not (ws.root / "data/tickets").exists()
    assert (ws.root / "data/reviews").is_dir()


@pytest.mark.emulator(pending_seconds=60.0)
def test_a_named_run_that_has_not_succeeded_has_nothing_to_pull(ws: Workspace, dfr: Runner) -> None:
    outputs_manifest(ws, "tickets")
    assert dfr("apply", "--auto-approve", "--no-wait", ws.manifests).code == 0
    named = dfr("pull", "tickets")
    assert named.code == 1
    assert "tickets: skipped: its run is PENDING; nothing to pull" in named.err
    assert dfr("pull").code == 0  # not named: reported, not an error
    assert not (ws.root / "data/tickets").exists()


HOSTILE = [
    "../escaped.txt",
    "/etc/dfr-absolute.txt",
    "a/../../escaped.txt",
    "line\nbreak.txt",
    "C:/windows.txt",
    "back\\slash.txt",
    ".git/config",
    "Data/x.txt|data/x.txt",
]


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_file_names_from_the_api_are_refused_and_nothing_is_written(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str
) -> None:
    applied(ws, dfr, "tickets")
    real = RunOutput.files

    def with_hostile(self: RunOutput) -> tuple[GeneratedFile, ...]:
        extra = tuple(
            GeneratedFile(f"00000000-0000-4000-8000-00000000000{i}", path, "text/plain", 3)
            for i, path in enumerate(bad.split("|"))
        )
        return (*real(self), *extra)

    monkeypatch.setattr(RunOutput, "files", with_hostile)
    result = dfr("pull")
    assert result.code == 1
    refusal = "differ only in letter case" if "|" in bad else "the API lists a file dfr will not"
    assert refusal in result.err
    assert repr(bad.split("|")[-1]) in result.err  # named, a newline shown as \\n
    assert not (ws.root / "data/tickets").exists()
    assert not list(tmp_path.parent.rglob("escaped.txt"))
    assert not Path("/etc/dfr-absolute.txt").exists()
    assert ws.record("tickets").get("outputs") is None
    no_staging_left(ws)


def test_a_state_written_by_pull_has_no_key_and_reads_back(ws: Workspace, dfr: Runner) -> None:
    applied(ws, dfr, "tickets")
    assert dfr("pull").code == 0
    doc = json.loads(ws.state.read_text())
    assert doc["format_version"] == 3
    assert dfr("state", "show", "tickets").code == 0


def test_check_needs_no_api_key(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(ws, dfr, "tickets")
    assert dfr("pull").code == 0
    monkeypatch.delenv("DATAFRAMER_API_KEY")
    assert dfr("pull", "--check").code == 0
    assert "1 output folder(s) match state." in dfr("pull", "--check").out


def test_a_moved_output_folder_is_pulled_there_from_the_old_one(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    run_id = applied(ws, dfr, "tickets")["tickets"]
    assert dfr("pull").code == 0
    outputs_manifest(ws, "tickets", path="datasets/tickets")
    assert "outputs.path changed (was data/tickets)" in dfr("pull", "--check").out
    before = host_stats(emu)["downloads"]
    result = dfr("pull")
    assert result.code == 0
    assert "(0 downloaded, 5 reused)" in result.err  # linked from the old folder
    assert host_stats(emu)["downloads"] == before
    assert files_of(ws.root / "datasets/tickets") == emu.run_files(run_id)
    assert pulled_record(ws, "tickets")["path"] == "datasets/tickets"


def test_a_download_url_that_holds_the_api_key_is_never_fetched(
    ws: Workspace, dfr: Runner, emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dfr_emulator.fileserver import Presigner

    applied(ws, dfr, "tickets")
    real = Presigner.issue
    key = emu.config.api_key

    def leaky(self: Presigner, *args: Any, **kwargs: Any) -> str:
        return f"{real(self, *args, **kwargs)}&token={key}"

    monkeypatch.setattr(Presigner, "issue", leaky)
    before = host_stats(emu)["requests"]
    result = dfr("pull")
    assert result.code == 1
    assert "the download URL holds the API key; refusing to send it" in result.err
    assert host_stats(emu)["requests"] == before
    assert not (ws.root / "data/tickets").exists()
