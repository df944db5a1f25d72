"""`dfr validate` and `dfr schema` from the outside: exit codes, streams, formats, discovery.

Most tests call `reconciler.cli.run` in-process (the same entry point as the
console script, minus the interpreter start); those about the interpreter
(`--version`, `python -m reconciler`, exit statuses) run real subprocesses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from support.runner import Result, Runner, in_process
from support.workspace import manifest_text

from reconciler import __version__

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def manifest(name: str, extra: str = "", samples: str = "100") -> str:
    """A manifest of 100 samples pinned to version 1, in the fixed layout (lines 1-8)."""
    return manifest_text(name, extra, samples=samples)


@pytest.fixture
def dfr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Runner:
    """`dfr ARGS` in this process, in `cwd` if given (validate needs no API, no state)."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITLAB_CI", raising=False)

    def call(*args: str, cwd: Path | None = None) -> Result:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return in_process(args, capsys)

    return call


def subprocess_run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_ACTIONS", "DFR_DEBUG")}
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- good input --------------------------------------------------------------------------------


def test_examples_validate_clean(dfr: Runner) -> None:
    # No warning either: the examples use only current models and fields.
    r = dfr("validate", "examples/manifests", cwd=REPO)
    assert r.code == 0
    assert r.out == ""
    assert r.diagnostics == []
    assert re.fullmatch(r"\d+ manifests in \d+ files: valid\.", r.summary)


def test_quiet_prints_nothing_when_valid(dfr: Runner) -> None:
    r = dfr("validate", "--quiet", "examples/manifests", cwd=REPO)
    assert (r.code, r.out, r.err) == (0, "", "")


def test_default_path_is_the_current_directory(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "runs" / "a.yaml", manifest("a"))
    assert dfr("validate", cwd=tmp_path).summary == "1 manifest in 1 file: valid."
    write(tmp_path / "b.yaml", manifest("b", samples="0"))
    r = dfr("validate", cwd=tmp_path)
    assert r.code == 1
    assert r.diagnostics == ["b.yaml:8:22: error: spec.number_of_samples must be at least 1, not 0"]


# -- output formats -----------------------------------------------------------------------------


def test_json_is_one_document_on_stdout(dfr: Runner) -> None:
    r = dfr("validate", "--json", "examples/invalid", cwd=REPO)
    assert r.code == 1
    assert r.err == ""
    doc = json.loads(r.out)  # exactly one document: json.loads refuses trailing data
    assert doc["valid"] is False
    assert doc["files"] == 6 and doc["errors"] == len(doc["diagnostics"]) == 12
    first = doc["diagnostics"][0]
    assert first == {
        "severity": "error",
        "code": "duplicate-key",
        "message": "key 'number_of_samples' is given twice in this mapping "
        "(first at line 8, column 3)",
        "file": "examples/invalid/duplicate-key.yaml",
        "line": 9,
        "column": 3,
        "path": [],
    }


def test_json_when_valid_and_format_json_alias(dfr: Runner) -> None:
    for flag in (["--json"], ["--format", "json"]):
        r = dfr("validate", *flag, "examples/manifests", cwd=REPO)
        assert r.code == 0 and r.err == ""
        doc = json.loads(r.out)
        assert doc["valid"] is True and doc["errors"] == 0 and doc["diagnostics"] == []
        assert doc["manifests"] >= 1


def test_json_for_an_empty_run_and_a_crash_free_missing_path(dfr: Runner, tmp_path: Path) -> None:
    r = dfr("validate", "--json", "missing.yaml", cwd=tmp_path)
    assert r.code == 1 and r.err == ""
    (d,) = json.loads(r.out)["diagnostics"]
    assert (d["file"], d["line"], d["column"], d["code"]) == ("missing.yaml", 1, 1, "io")


def test_github_format_prints_annotations(dfr: Runner) -> None:
    r = dfr("validate", "--format", "github", "examples/invalid/out-of-range.yaml", cwd=REPO)
    assert r.code == 1
    commands = r.out.splitlines()
    assert len(commands) == 5
    assert commands[0] == (
        "::error file=examples/invalid/out-of-range.yaml,line=5,col=9::metadata.name "
        "'Support_Tickets' is not a valid name: use 1 to 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit"
    )
    assert all(re.match(r"^::error file=[^,]+,line=\d+,col=\d+::.+", c) for c in commands)
    # Every finding is also a plain line (GitHub shows only 10 annotations per step).
    assert len(r.diagnostics) == 5


def test_github_format_escapes_properties(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "a,b:c.yaml", manifest("x", samples="0"))
    r = dfr("validate", "--format", "github", "a,b:c.yaml", cwd=tmp_path)
    assert r.out.startswith("::error file=a%2Cb%3Ac.yaml,line=8,col=22::")


# -- warnings keep exit 0 -----------------------------------------------------------------------


def test_no_effect_setting_is_a_warning(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "m.yaml", manifest("m", "  revision_model: anthropic/claude-haiku-4-5\n"))
    r = dfr("validate", "m.yaml", cwd=tmp_path)
    assert r.code == 0
    assert r.diagnostics == [
        "m.yaml:9:19: warning: spec.revision_model has no effect: no revision or filtering runs "
        "(spec sets neither revision_types nor filtering_types); add one of them, or remove "
        "revision_model"
    ]
    assert r.summary == "1 manifest in 1 file: valid, 1 warning."


def test_headerless_lookalike_in_a_directory_is_a_warning(dfr: Runner, tmp_path: Path) -> None:
    text = manifest("lost").split("metadata:", 1)[1]
    write(tmp_path / "runs" / "lost.yaml", "metadata:" + text)
    write(tmp_path / "runs" / "ok.yaml", manifest("ok"))
    r = dfr("validate", "runs", cwd=tmp_path)
    assert r.code == 0
    assert r.diagnostics == [
        "runs/lost.yaml:1:1: warning: skipped: this document looks like a run but has no "
        "'apiVersion: dataframer.ai/v1' and 'kind: GenerationRun'"
    ]
    # Named on the command line, the same file is an error.
    r = dfr("validate", "runs/lost.yaml", cwd=tmp_path)
    assert r.code == 1
    assert r.diagnostics == [
        "runs/lost.yaml:1:1: error: document is not a manifest: it needs "
        "'apiVersion: dataframer.ai/v1' and 'kind: GenerationRun'"
    ]


# -- discovery ----------------------------------------------------------------------------------


def test_directory_discovery_rules(dfr: Runner, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root / "a.yaml", manifest("a"))
    write(root / "nested" / "deeper" / "b.yml", manifest("b"))
    write(root / "C.YAML", manifest("c"))
    write(root / "notes.txt", manifest("txt", samples="0"))
    write(root / "data.json", "{}")
    write(root / ".github" / "workflows" / "ci.yaml", "on: push\njobs: {}\n")
    write(root / ".hidden" / "bad.yaml", manifest("hidden", samples="0"))
    write(root / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    write(root / "list.yaml", "- a\n- b\n")
    write(root / "multi.yaml", "x: 1\n---\n" + manifest("d"))
    r = dfr("validate", "repo", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.diagnostics == []  # non-manifest YAML in a directory is skipped silently
    assert r.summary == "4 manifests in 6 files: valid."


def test_named_hidden_path_is_read(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / ".hidden" / "bad.yaml", manifest("hidden", samples="0"))
    assert dfr("validate", ".hidden", cwd=tmp_path).code == 1
    assert dfr("validate", ".hidden/bad.yaml", cwd=tmp_path).code == 1


def test_named_file_must_hold_only_manifests(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    write(tmp_path / "mixed.yaml", manifest("m") + "---\n- a list\n")
    r = dfr("validate", "compose.yaml", "mixed.yaml", cwd=tmp_path)
    assert r.code == 1
    assert r.diagnostics == [
        "compose.yaml:1:1: error: document is not a manifest: it needs "
        "'apiVersion: dataframer.ai/v1' and 'kind: GenerationRun'",
        "mixed.yaml:10:1: error: document is a list; a manifest is a mapping",
    ]


def test_skip_non_manifests(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "compose.yaml", "services:\n  web:\n    image: nginx\n")
    write(tmp_path / "mixed.yaml", manifest("m") + "---\n- a list\n")
    write(tmp_path / "bad.yaml", manifest("bad", samples="0"))
    r = dfr("validate", "--skip-non-manifests", "compose.yaml", "mixed.yaml", cwd=tmp_path)
    assert (r.code, r.diagnostics) == (0, [])
    assert r.summary == "1 manifest in 2 files: valid."
    # Documents that claim to be manifests are still checked.
    r = dfr("validate", "--skip-non-manifests", "compose.yaml", "bad.yaml", cwd=tmp_path)
    assert r.code == 1
    assert r.diagnostics == [
        "bad.yaml:8:22: error: spec.number_of_samples must be at least 1, not 0"
    ]


def test_a_file_named_twice_or_also_in_a_directory_is_read_once(
    dfr: Runner, tmp_path: Path
) -> None:
    write(tmp_path / "runs" / "a.yaml", manifest("a"))
    r = dfr("validate", "runs/a.yaml", "runs", "./runs/a.yaml", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.summary == "1 manifest in 1 file: valid."


def test_duplicate_names_across_files(dfr: Runner, tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", manifest("same"))
    write(tmp_path / "b.yaml", manifest("same"))
    r = dfr("validate", ".", cwd=tmp_path)
    assert r.code == 1
    assert r.diagnostics == [
        "b.yaml:4:9: error: metadata.name 'same' is already used by the manifest at "
        "a.yaml:4:9; names must be unique across all manifests"
    ]


# -- schema ---------------------------------------------------------------------------------------


def test_schema_command_prints_the_schema(dfr: Runner) -> None:
    r = dfr("schema")
    assert r.code == 0 and r.err == ""
    doc = json.loads(r.out)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"]
    jsonschema.Draft202012Validator.check_schema(doc)
    assert r.out == (REPO / "schemas" / "generation-run.schema.json").read_text(encoding="utf-8")


def test_schema_command_prints_the_state_schema(dfr: Runner) -> None:
    r = dfr("schema", "--state-schema")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["$id"]
    jsonschema.Draft202012Validator.check_schema(doc)


def test_top_level_schemas_folder_is_the_package_data() -> None:
    top = REPO / "schemas" / "generation-run.schema.json"
    shipped = REPO / "reconciler" / "schemas" / "generation-run.schema.json"
    assert os.path.samefile(top, shipped)


def test_schema_is_read_from_the_installed_package_not_the_source_tree(tmp_path: Path) -> None:
    """Import reconciler from a zip (as from a wheel, with no source tree beside it)."""
    archive = tmp_path / "installed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in (REPO / "reconciler").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(REPO).as_posix())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import importlib.resources as r, reconciler.schema as s;"
        "assert s.__file__.startswith(sys.argv[1]), s.__file__;"
        "a = r.files('reconciler').joinpath('schemas/generation-run.schema.json').read_text();"
        "assert a == s.schema_text(); print(a, end='')"
    )
    proc = subprocess_run(sys.executable, "-I", "-c", code, str(archive), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    shipped = REPO / "reconciler" / "schemas" / "generation-run.schema.json"
    assert proc.stdout == shipped.read_text(encoding="utf-8")


# -- examples/invalid: the documented output is the real output ----------------------------------

MARKER = "prints (tests check that it still does):"


def documented_output(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    (start,) = [i for i, line in enumerate(lines) if MARKER in line]
    out = []
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        assert line.startswith("#   "), f"{path.name}: unexpected line after the marker: {line!r}"
        out.append(line[len("#   ") :])
    return out


INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


@pytest.mark.parametrize("path", INVALID, ids=[p.name for p in INVALID])
def test_invalid_example_prints_what_its_comment_says(dfr: Runner, path: Path) -> None:
    expected = documented_output(path)
    assert expected
    assert f"`dfr validate examples/invalid/{path.name}`" in path.read_text(encoding="utf-8")
    r = dfr("validate", f"examples/invalid/{path.name}", cwd=REPO)
    assert r.code == 1
    assert r.diagnostics == expected


def test_there_are_invalid_examples() -> None:
    assert len(INVALID) >= 5


# -- the interpreter ---------------------------------------------------------------------------


def test_version_flags() -> None:
    console = Path(sys.executable).with_name("dfr")
    runs = [
        [sys.executable, "-m", "reconciler", "--version"],
        [sys.executable, "-m", "reconciler", "-V"],
    ]
    if console.exists():
        runs.append([str(console), "--version"])
    for argv in runs:
        proc = subprocess_run(*argv)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"dfr {__version__}\n", ""), argv


def test_version_in_process(dfr: Runner) -> None:
    r = dfr("--version")
    assert (r.code, r.out) == (0, f"dfr {__version__}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--bogus"],
        ["validate", "--format", "nope"],
        ["no-such-command"],
        ["schema", "extra-argument"],
    ],
)
def test_usage_errors_exit_1(dfr: Runner, args: list[str]) -> None:
    r = dfr(*args)
    assert r.code == 1
    assert "Usage:" in r.err and "Error:" in r.err
    assert r.out == ""
    assert "Traceback" not in r.err


def test_usage_error_exit_status_of_the_real_process() -> None:
    proc = subprocess_run(sys.executable, "-m", "reconciler", "validate", "--bogus")
    assert proc.returncode == 1
    assert "No such option" in proc.stderr and proc.stdout == ""


def test_real_process_exit_statuses(tmp_path: Path) -> None:
    write(tmp_path / "ok.yaml", manifest("ok"))
    write(tmp_path / "bad.yaml", manifest("bad", samples="0"))
    ok = subprocess_run(sys.executable, "-m", "reconciler", "validate", "ok.yaml", cwd=tmp_path)
    bad = subprocess_run(sys.executable, "-m", "reconciler", "validate", "bad.yaml", cwd=tmp_path)
    assert (ok.returncode, bad.returncode) == (0, 1)
    assert bad.stderr.startswith("bad.yaml:8:22: error: ")


def test_version_imports_nothing_heavy() -> None:
    proc = subprocess_run(sys.executable, "-X", "importtime", "-m", "reconciler", "--version")
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    for heavy in ("jsonschema", "httpx", "deepdiff", "yaml", "referencing"):
        assert heavy not in imported, f"dfr --version imports {heavy}"


def test_validate_reads_a_pipe(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "/dev/stdin"],
        input=manifest("piped", samples="0"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "/dev/stdin:8:22: error: spec.number_of_samples must be at least 1, not 0"
    )


def test_size_limit_is_inclusive(dfr: Runner, tmp_path: Path) -> None:
    from reconciler.yamlsafe import MAX_FILE_BYTES

    text = manifest("big")
    padded = text + "#" * (MAX_FILE_BYTES - len(text) - 1) + "\n"
    assert len(padded.encode()) == MAX_FILE_BYTES
    write(tmp_path / "at-limit.yaml", padded)
    write(tmp_path / "over-limit.yaml", padded + "\n")
    assert dfr("validate", "at-limit.yaml", cwd=tmp_path).code == 0
    r = dfr("validate", "over-limit.yaml", cwd=tmp_path)
    assert r.diagnostics == [
        "over-limit.yaml:1:1: error: file is larger than 1,048,576 bytes, the limit for "
        "manifest files"
    ]
