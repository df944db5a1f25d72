"""A manifest's `outputs:` and `evaluate:` sections through `dfr validate` (issue 16, item 1).

The folder is relative to the project root (here a git repository with its
manifests in `runs/`), never leaves it, and no two manifests share it or nest
in each other. Every refusal is a located error and exit 1.

Layout of `manifest_text` (lines 1-8), then the extra lines: `outputs:` is
line 9 and its `path:` value line 10, column 9.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.runner import Runner
from support.workspace import Workspace, manifest_text

pytestmark = pytest.mark.repo


def outputs(path: str, *files: str) -> str:
    text = f"outputs:\n  path: {json.dumps(path)}\n"
    if files:
        text += "  files:\n" + "".join(f"    - {json.dumps(f)}\n" for f in files)
    return text


def write(ws: Workspace, name: str, extra: str) -> Path:
    return ws.write_text(name, manifest_text(name, extra))


def write_linked_outside(ws: Workspace, tmp_path: Path) -> None:
    """`linked` writes into `data/linked`, where `data` links to a folder outside the repo."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ws.root / "data").symlink_to(outside)
    write(ws, "linked", outputs("data/linked"))


def errors(dfr: Runner, *paths: str) -> list[str]:
    r = dfr("validate", "--no-cache", *(paths or ("runs",)))
    assert r.code == (1 if r.lines(": error: ") else 0), r.text
    return r.lines(": error: ")


# -- accepted -----------------------------------------------------------------------------


def test_outputs_and_evaluate_validate_and_load(ws: Workspace, dfr: Runner) -> None:
    extra = outputs("./data//tickets/", "*.jsonl", "reports/**/*.csv") + (
        "evaluate:\n  model: anthropic/claude-sonnet-5-5-thinking\n"
    )
    write(ws, "tickets", extra)
    write(ws, "emails", outputs("data/emails") + "evaluate: {}\n")
    r = dfr("validate", "--json", "runs")
    assert r.code == 0, r.text
    assert json.loads(r.out)["manifests"] == 2

    from reconciler.validate import validate_paths

    found = {m.name: m for m in validate_paths(["runs"], root=ws.root).manifests}
    tickets = found["tickets"].outputs
    assert tickets is not None
    assert (tickets.path, tickets.files) == ("data/tickets", ("*.jsonl", "reports/**/*.csv"))
    assert tickets.where == "runs/tickets.yaml:9:1"
    assert tickets.keeps("a/b/part-1.jsonl") and tickets.keeps("reports/x/y/z.csv")
    assert not tickets.keeps("reports.csv") and not tickets.keeps("notes.txt")
    assert found["tickets"].evaluate is not None
    assert found["tickets"].evaluate.model == "anthropic/claude-sonnet-5-5-thinking"
    assert found["emails"].evaluate is not None and found["emails"].evaluate.model is None
    assert found["emails"].outputs is not None and found["emails"].outputs.keeps("any/file")


def test_sibling_folders_with_a_common_prefix_do_not_overlap(ws: Workspace, dfr: Runner) -> None:
    write(ws, "a", outputs("data/run"))
    write(ws, "b", outputs("data/run-2"))
    write(ws, "c", outputs("data/runs/x"))
    assert errors(dfr) == []


def test_outputs_survive_the_validation_cache(
    ws: Workspace, dfr: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each file is clean, so it is cached; the overlap across them must still be found.
    monkeypatch.setenv("DFR_CACHE_DIR", str(tmp_path / "cache"))
    write(ws, "a", outputs("data"))
    write(ws, "b", outputs("data/b"))
    first = dfr("validate", "runs")
    second = dfr("validate", "runs")
    assert first.code == second.code == 1
    assert first.lines(": error: ") == second.lines(": error: ")
    assert len(first.lines(": error: ")) == 1
    assert any((tmp_path / "cache").rglob("*.json"))


# -- the path never leaves the repository ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/srv/data", "is an absolute path"),
        ("C:/data", "is an absolute path"),
        ("~/data", "starts with '~'"),
        ("../elsewhere", "leaves the project root ('..')"),
        ("data/../../etc", "leaves the project root ('..')"),
        ("data\\\\runs", "holds a backslash"),
        ("", "must name a folder below the project root, not be empty"),
        ("   ", "not be empty"),
        (".", "is the project root itself"),
        ("./", "is the project root itself"),
        (".git/objects", "inside git's own '.git' folder"),
        ("data/ x", "starts or ends with a space"),
        ("data/a:b", "which Windows refuses"),
        ("data/\u0007", "control character"),
        ("data/NUL", "names a device Windows reserves"),
        ("com1.txt/x", "names a device Windows reserves"),
        ("data./x", "ending with '.'"),
    ],
)
def test_bad_paths_are_located_errors(ws: Workspace, dfr: Runner, path: str, words: str) -> None:
    write(ws, "bad", outputs(path))
    found = errors(dfr)
    assert len(found) == 1, found
    assert found[0].startswith("runs/bad.yaml:10:9: error: ")
    assert words in found[0]


def test_a_symlink_leading_outside_the_repository_is_refused(
    ws: Workspace, dfr: Runner, tmp_path: Path
) -> None:
    write_linked_outside(ws, tmp_path)
    found = errors(dfr)
    assert len(found) == 1
    assert found[0].startswith("runs/linked.yaml:9:1: error: ")
    assert "resolves through a symbolic link" in found[0]
    assert "outside the project root" in found[0]


def test_a_symlink_to_the_root_itself_is_refused(ws: Workspace, dfr: Runner) -> None:
    (ws.root / "here").symlink_to(ws.root)
    write(ws, "linked", outputs("here"))
    assert "to the project root itself" in errors(dfr)[0]


def test_a_file_where_the_folder_should_be_is_refused(ws: Workspace, dfr: Runner) -> None:
    (ws.root / "data").write_text("not a folder")
    write(ws, "a", outputs("data"))
    assert "exists and is not a folder" in errors(dfr)[0]


def test_the_root_is_dfr_yaml_folder(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The project root is the folder of dfr.yaml: '..' from there is refused
    # even though it stays inside the git repository.
    project = ws.root / "project"
    ws.config("manifests: [runs]\n", where=project)
    link_target = ws.root / "shared"
    link_target.mkdir()
    (project / "out").symlink_to(link_target)
    (project / "runs").mkdir()
    (project / "runs" / "a.yaml").write_text(manifest_text("a", outputs("out/a")))
    monkeypatch.chdir(project)
    r = dfr("validate", "--no-cache")
    assert r.code == 1
    assert "outside the project root" in r.lines(": error: ")[0]


# -- files: globs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("[ab", "without its closing ']'"),
        ("/abs/*.csv", "is absolute"),
        ("!*.tmp", "negation ('!') is not supported"),
        ("data**", "'**' must be a whole folder name"),
        ("data/", "write 'data/**'"),
        ("../x", "leaves the output folder"),
        ("a//b", "empty or '.' folder"),
        ("a\\\\b", "holds a backslash"),
    ],
)
def test_bad_globs_are_located_errors(ws: Workspace, dfr: Runner, pattern: str, words: str) -> None:
    write(ws, "globs", outputs("data", "*.jsonl", pattern))
    found = errors(dfr)
    assert len(found) == 1, found
    assert found[0].startswith("runs/globs.yaml:13:7: error: outputs.files[1]: ")
    assert words in found[0]


def test_an_empty_pattern_is_a_schema_error(ws: Workspace, dfr: Runner) -> None:
    write(ws, "globs", outputs("data", ""))
    assert errors(dfr)[0].startswith("runs/globs.yaml:12:7: error: ")


# -- overlapping folders -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "relation"),
    [
        ("data/x", "data/x", "is the same folder as"),
        ("data", "data/x/y", "is inside"),
        ("data/x/y", "data", "holds"),
        ("Data/X", "data/x/", "is the same folder as"),
        ("caf\u00e9", "cafe\u0301/x", "is inside"),
    ],
)
def test_overlapping_folders_name_both_manifests(
    ws: Workspace, dfr: Runner, first: str, second: str, relation: str
) -> None:
    write(ws, "alpha", outputs(first))
    write(ws, "beta", outputs(second))
    found = errors(dfr)
    assert len(found) == 1, found
    assert found[0].startswith("runs/beta.yaml:9:1: error: ")
    assert "outputs.path of manifest 'beta'" in found[0]
    assert f"{relation} outputs.path of manifest 'alpha'" in found[0]
    assert "runs/alpha.yaml:9:1" in found[0]


def test_overlap_through_a_symlink_inside_the_repository(ws: Workspace, dfr: Runner) -> None:
    (ws.root / "real").mkdir()
    (ws.root / "alias").symlink_to(ws.root / "real")
    write(ws, "alpha", outputs("real/x"))
    write(ws, "beta", outputs("alias"))
    found = errors(dfr)
    assert len(found) == 1
    assert "(through a symbolic link)" in found[0] and "manifest 'alpha'" in found[0]


def test_overlap_within_one_file(ws: Workspace, dfr: Runner) -> None:
    text = manifest_text("one", outputs("data")) + "---\n" + manifest_text("two", outputs("data"))
    ws.write_text("both", text)
    found = errors(dfr)
    assert len(found) == 1 and "manifest 'one'" in found[0] and "manifest 'two'" in found[0]


# -- schema ------------------------------------------------------------------------------------


def test_outputs_needs_a_path_and_knows_its_keys(ws: Workspace, dfr: Runner) -> None:
    write(ws, "a", "outputs:\n  files: ['*']\n  pth: data\n")
    found = errors(dfr)
    assert any("'path'" in line and "missing" in line for line in found), found
    assert any("unknown key 'pth'" in line and "did you mean 'path'" in line for line in found)


def test_evaluate_model_is_one_the_api_offers(ws: Workspace, dfr: Runner) -> None:
    write(ws, "a", "evaluate:\n  model: anthropic/claude-haiku-4-5\n")
    found = errors(dfr)
    assert len(found) == 1 and found[0].startswith("runs/a.yaml:10:10: error: evaluate.model")


def test_schema_evaluation_models_are_the_sdks() -> None:
    import typing

    from dataframer.types.dataframer.evaluation_create_params import EvaluationCreateParams

    from reconciler.schema import manifest_schema

    hints = typing.get_type_hints(EvaluationCreateParams, include_extras=True)
    sdk = list(typing.get_args(hints["evaluation_model"]))
    assert manifest_schema()["$defs"]["evaluation_model"]["enum"] == sdk


def test_outputs_path_is_relative_to_the_root_not_the_manifest(ws: Workspace, dfr: Runner) -> None:
    # runs/deep/a.yaml writes to ROOT/data/a, not runs/deep/data/a: so a manifest
    # deep in the tree still overlaps with one at the top.
    deep = ws.manifests / "deep"
    deep.mkdir()
    (deep / "a.yaml").write_text(manifest_text("a", outputs("data/a")))
    write(ws, "b", outputs("data"))
    assert len(errors(dfr)) == 1
    assert not os.path.exists(ws.root / "data")  # validate never creates anything


# -- fmt, init and the example -------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_fmt_puts_outputs_and_evaluate_after_spec_comments_kept(ws: Workspace, dfr: Runner) -> None:
    path = ws.write_text(
        "a",
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\nevaluate: {}\n"
        "outputs:\n  files: ['*.jsonl']  # only the samples\n  # where they go\n  path: data/a\n"
        "metadata:\n  name: a\n"
        "spec:\n  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a\n  spec_version: 1\n"
        "  number_of_samples: 3\n",
    )
    assert dfr("fmt", "--check", "runs").code == 1
    assert dfr("fmt", "runs").code == 0
    text = path.read_text()
    keys = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
    assert keys == ["apiVersion", "kind", "metadata", "spec", "outputs", "evaluate"]
    assert "  # where they go\n  path: data/a\n  files: ['*.jsonl']  # only the samples\n" in text
    assert dfr("fmt", "--check", "runs").code == 0
    assert dfr("validate", "runs").code == 0


def test_the_example_with_outputs_validates_and_is_formatted(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    assert "\noutputs:\n" in (REPO / "examples/manifests/support/tickets-baseline.yaml").read_text()
    assert dfr("validate", "--no-cache", "examples/manifests").code == 0
    assert dfr("fmt", "--check", "examples/manifests").code == 0


def test_init_starter_shows_outputs_and_still_validates(ws: Workspace, dfr: Runner) -> None:
    assert dfr("init", "starter").code == 0
    starter = (ws.root / "starter" / "dataframer" / "example-run.yaml").read_text()
    assert "# outputs:" in starter and "# evaluate:" in starter
    uncommented = starter.replace("# outputs:", "outputs:").replace("#   ", "  ")
    (ws.manifests / "x.yaml").write_text(uncommented.replace("# evaluate:", "evaluate:"))
    assert dfr("validate", "--no-cache", "runs").code == 0


def test_plan_refuses_an_output_folder_that_leaves_the_repository(
    ws: Workspace, dfr: Runner, tmp_path: Path
) -> None:
    # plan and apply read manifests through the same checks as validate, the
    # filesystem's included: nothing is planned on an escaping folder.
    write_linked_outside(ws, tmp_path)
    r = dfr("plan", "runs")
    assert r.code == 1
    assert any("outside the project root" in line for line in r.lines(": error: "))
