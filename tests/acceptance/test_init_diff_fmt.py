"""dfr init, diff, fmt, schema, shell completion, import cost; the pre-commit snippet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.runner import ROOT, Runner, apply_args, dfr_process
from support.workspace import Workspace

from reconciler.commands.init import PRE_COMMIT

CI = ROOT / "examples" / "ci"


# -- init ------------------------------------------------------------------------------


def test_init_writes_a_valid_starter_and_never_overwrites(ws: Workspace, dfr: Runner) -> None:
    code, out, _ = dfr("init", "proj")
    assert code == 0
    manifest = ws.root / "proj/dataframer/example-run.yaml"
    schema = ws.root / "proj/dataframer/generation-run.schema.json"
    text = manifest.read_text()
    assert text.startswith("# yaml-language-server: $schema=generation-run.schema.json\n")
    assert json.loads(schema.read_text())["$id"].endswith("generation-run.schema.json")
    # Valid, and without a warning: a starter whose model the API no longer takes
    # would teach every new user a run the service refuses.
    code, _, err = dfr("validate", "proj/dataframer")
    assert code == 0 and "warning" not in err, err
    assert out.endswith(PRE_COMMIT)  # the pre-commit snippet
    # Idempotent when nothing changed; refuses when a file differs; nothing is written.
    assert dfr("init", "proj").code == 0
    manifest.write_text(text + "# mine\n")
    code, _, err = dfr("init", "proj")
    assert code == 1 and "already exists" in err and "never overwrites" in err
    assert manifest.read_text() == text + "# mine\n"


# -- diff ------------------------------------------------------------------------------


def test_diff_manifest_against_recorded_run(ws: Workspace, dfr: Runner) -> None:
    ws.write("alpha", labels={"team": "a"}, spec_version=2)
    code, out, _ = dfr("diff", "alpha", "manifests", "--detailed-exitcode")
    assert code == 2 and "no run recorded" in out and "alpha will be created" in out
    assert dfr(*apply_args("manifests")).code == 0
    run_id = json.loads(dfr("state", "show", "alpha", "--json").out)["run_id"]
    code, out, _ = dfr("diff", "alpha", "manifests", "--detailed-exitcode")
    assert code == 0 and f"run {run_id} (SUCCEEDED)" in out and "matches" in out
    ws.write("alpha", labels={"team": "b"}, number_of_samples=25, spec_version=2)
    code, out, _ = dfr("diff", "alpha", "manifests", "--detailed-exitcode")
    assert code == 2
    assert "~ number_of_samples" in out and "= 10 -> 25" in out
    assert '"team": "a"} -> {"team": "b"}' in out and "no new run" in out
    assert dfr("diff", "alpha", "manifests").code == 0  # without the flag: 0
    code, _, err = dfr("diff", "nobody", "manifests")
    assert code == 1 and "'nobody' names no manifest" in err
    ws.write("beta", spec_version=2)
    (ws.manifests / "alpha.yaml").unlink()
    code, out, _ = dfr("diff", "alpha", "manifests")
    assert code == 0 and "orphaned" in out


# -- fmt -------------------------------------------------------------------------------

#: A second document, already tidy: fmt leaves it as it is.
ALREADY_TIDY = """\
---
apiVersion: dataframer.ai/v1
kind: GenerationRun
metadata:
  name: tidy
spec:
  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a
  spec_version: 2
  number_of_samples: 5
"""

MESSY = (
    """\
# yaml-language-server: $schema=generation-run.schema.json
# A header that stays on top.
kind: GenerationRun
apiVersion: dataframer.ai/v1
spec:   # the request body
  number_of_samples: 10  # ten
  # why this spec
  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a
  spec_version: 2
  # a quoted model
  generation_model: "anthropic/claude-sonnet-4-5"
# about metadata
metadata:
  labels: {team: support}   # flow style kept
  # the name
  name: messy    # end of line
"""
    + ALREADY_TIDY
)

TIDY = (
    """\
# yaml-language-server: $schema=generation-run.schema.json
# A header that stays on top.
apiVersion: dataframer.ai/v1
kind: GenerationRun
# about metadata
metadata:
  # the name
  name: messy    # end of line
  labels: {team: support}   # flow style kept
spec:   # the request body
  # why this spec
  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a
  spec_version: 2
  number_of_samples: 10  # ten
  # a quoted model
  generation_model: "anthropic/claude-sonnet-4-5"
"""
    + ALREADY_TIDY
)


def test_fmt_check_and_rewrite_keep_comments(ws: Workspace, dfr: Runner) -> None:
    messy = ws.manifests / "messy.yaml"
    messy.write_text(MESSY)
    canonical = ws.manifests / "canonical.yaml"
    canonical.write_text(
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
        "metadata:\n    name: other\n"  # odd indentation, canonical order
        "spec:\n    spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a\n"
        "    spec_version: 1\n    number_of_samples: 3\n"
    )
    before = canonical.stat().st_mtime_ns
    (ws.manifests / "notes.yaml").write_text("b: 1\na: 2  # not a manifest: left alone\n")
    code, out, err = dfr("fmt", "--check", "manifests")
    assert code == 1
    assert out == "would reformat manifests/messy.yaml\n" and "1 file not in canonical" in err
    assert messy.read_text() == MESSY  # --check changes nothing
    code, out, _ = dfr("fmt", "manifests")
    assert code == 0 and out == "reformatted manifests/messy.yaml\n"
    assert messy.read_text() == TIDY
    assert canonical.stat().st_mtime_ns == before  # already canonical: untouched
    assert dfr("fmt", "--check", "manifests").code == 0
    assert dfr("validate", "manifests").code == 0


def test_fmt_leaves_files_it_cannot_read_strictly(ws: Workspace, dfr: Runner) -> None:
    bad = ws.manifests / "bad.yaml"
    bad.write_text("kind: GenerationRun\napiVersion: dataframer.ai/v1\nkind: again\n")
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "bad.yaml:3:1" in err and "not formatted" in err
    assert bad.read_text().startswith("kind: GenerationRun")


def test_fmt_formats_the_target_of_a_symlinked_manifest_in_place(
    ws: Workspace, dfr: Runner
) -> None:
    """fmt used to replace the link with a formatted copy: the target stayed messy and
    validate then found the name twice."""
    target = ws.manifests / "messy.yaml"
    target.write_text(MESSY)
    link = ws.manifests / "alias.yaml"  # sorts first: read through the link
    link.symlink_to("messy.yaml")
    outside = ws.root / "shared" / "other.yaml"
    outside.parent.mkdir()
    outside.write_text(MESSY.replace("messy", "other").replace("name: tidy", "name: tidy2"))
    (ws.manifests / "other.yaml").symlink_to(outside)
    code, out, err = dfr("fmt", "manifests")
    assert code == 0, out + err
    assert "reformatted manifests/alias.yaml (the file it links to: manifests/messy.yaml)" in out
    assert link.is_symlink() and (ws.manifests / "other.yaml").is_symlink()
    assert target.read_text() == TIDY
    assert outside.read_text() == TIDY.replace("messy", "other").replace(
        "name: tidy", "name: tidy2"
    )
    assert not [p.name for p in ws.manifests.iterdir() if "tmp" in p.name]
    code, out, err = dfr("validate", "manifests")
    assert code == 0 and "already used" not in err, err


def test_fmt_reports_a_file_it_cannot_write(ws: Workspace, dfr: Runner) -> None:
    messy = ws.manifests / "messy.yaml"
    messy.write_text(MESSY)
    (ws.manifests / "messy.yaml.dfr-fmt.tmp").mkdir()  # where the new text would go
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "manifests/messy.yaml: not formatted: cannot write" in err, err
    assert messy.read_text() == MESSY


# -- schema, completion, import cost ----------------------------------------------------


def test_schema_prints_the_json_schema(ws: Workspace, dfr: Runner) -> None:
    doc = json.loads(dfr("schema").out)
    assert doc["$schema"].startswith("https://json-schema.org/") and "spec" in doc["properties"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "_dfr_completion"), ("zsh", "#compdef dfr"), ("fish", "complete --no-files")],
)
def test_shell_completion_scripts(ws: Workspace, shell: str, marker: str) -> None:
    result = dfr_process(env=ws.env({"_DFR_COMPLETE": f"{shell}_source"}), cwd=ws.root)
    assert result.code == 0 and marker in result.out


def test_completion_completes_commands(ws: Workspace) -> None:
    env = ws.env({"_DFR_COMPLETE": "bash_complete", "COMP_WORDS": "dfr st", "COMP_CWORD": "1"})
    result = dfr_process(env=env, cwd=ws.root)
    assert "status" in result.out and "state" in result.out


def test_version_and_validate_do_not_import_rich_or_ruamel(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from reconciler.cli import run\n"
        "run(['--version'])\n"
        f"run(['validate', '--quiet', {str(ROOT / 'examples/manifests')!r}])\n"
        "run(['validate', '--format', 'auto', "
        f"{str(ROOT / 'examples/manifests')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'ruamel'))\n"
        "print('HEAVY', heavy)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
        timeout=60,
    )
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    timing = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "reconciler", "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        timeout=60,
    )
    assert timing.stdout.startswith("dfr ")
    assert "rich" not in timing.stderr and "ruamel" not in timing.stderr


# -- CI recipes --------------------------------------------------------------------------


# The GitHub and GitLab recipes are run step by step, linted and checked against the
# forges' schemas in tests/recipes/.


def test_pre_commit_snippet(tmp_path: Path) -> None:
    path = CI / "pre-commit-config.yaml"
    assert path.read_text() == PRE_COMMIT  # what `dfr init` prints
    hooks = yaml.safe_load(path.read_text())["repos"][0]["hooks"]
    assert [h["entry"] for h in hooks] == ["dfr pre-commit --", "dfr fmt --check --"]
    assert hooks[0]["require_serial"] is True
    exe = Path(sys.executable).with_name("pre-commit")
    done = subprocess.run(
        [str(exe), "validate-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dfr_pre_commit_compares_names_with_manifests_it_was_not_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reconciler.cli import run

    folder = tmp_path / "dataframer"
    folder.mkdir()
    body = (
        "spec: {spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a, spec_version: 1, "
        "number_of_samples: 1}\n"
    )
    for file in ("a.yaml", "b.yaml"):
        (folder / file).write_text(
            "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nmetadata: {name: same}\n" + body
        )
    monkeypatch.chdir(tmp_path)
    assert run(["pre-commit", "dataframer/a.yaml"]) == 1  # the local hook's entry
    err = capsys.readouterr().err
    assert "dataframer/a.yaml" in err and "same" in err and "dataframer/b.yaml" in err
