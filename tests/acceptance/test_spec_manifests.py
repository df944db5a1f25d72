"""`kind: Spec` manifests and `spec_ref` through `dfr validate`: good ones pass, each bad one
is an error at its place (FILE:LINE:COL), in the same pass as the runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.runner import Runner
from support.workspace import Workspace

from reconciler.state.local import LocalBackend
from reconciler.state.model import SpecRecord

SPEC = """\
apiVersion: dataframer.ai/v1
kind: Spec
metadata:
  name: tickets
spec:
  objectives: Support tickets for a SaaS product.
  generate_distributions: true
{extra}"""

RUN = """\
apiVersion: dataframer.ai/v1
kind: GenerationRun
metadata:
  name: {name}
spec:
  spec_ref: {{name: {ref}, version: {version}}}
  number_of_samples: 10
{extra}"""


def spec_text(extra: str = "") -> str:
    return SPEC.format(extra=extra)


def run_text(
    name: str = "tickets-1k", ref: str = "tickets", version: str = "1", extra: str = ""
) -> str:
    return RUN.format(name=name, ref=ref, version=version, extra=extra)


def errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if ": error: " in line]


def test_a_spec_and_the_runs_that_name_it_validate(ws: Workspace, dfr: Runner) -> None:
    content = (
        "  content:\n    description: Support tickets\n    requirements: |\n      One ticket.\n"
    )
    ws.write_text("pipeline", spec_text(content) + "---\n" + run_text())
    ws.write_text("latest", run_text("tickets-latest", version="latest"))
    r = dfr("validate", "--json", "manifests")
    assert r.code == 0, r.text
    doc = json.loads(r.out)
    assert doc["valid"] and doc["errors"] == 0
    assert (doc["manifests"], doc["specs"]) == (2, 1)  # runs, and Spec manifests


def starts(found: list[str], prefix: str, also: str = "") -> None:
    """One of the `found` error lines starts with `prefix` (and holds `also`)."""
    assert any(line.startswith(prefix) and also in line for line in found), found


def test_each_bad_spec_manifest_is_an_error_at_its_line(ws: Workspace, dfr: Runner) -> None:
    both = spec_text("  dataset_id: 0b7c4a52-3f1e-4d8a-9c61-2e5f8a7b9d10\n")
    neither = both.replace("  objectives: Support tickets for a SaaS product.\n", "").replace(
        "  dataset_id: 0b7c4a52-3f1e-4d8a-9c61-2e5f8a7b9d10\n", ""
    )
    ws.write_text("both", both)
    ws.write_text("neither", neither.replace("name: tickets", "name: neither"))
    ws.write_text(
        "typos",
        spec_text(
            "  spec_generation_model_name: gpt-4\n  content:\n    requirments: typo\n"
        ).replace("name: tickets", "name: typos"),
    )
    conditional = "  generate_conditional_distributions: true\n"
    ws.write_text(
        "cond",
        spec_text(conditional)
        .replace("name: tickets", "name: cond")
        .replace("generate_distributions: true", "generate_distributions: false"),
    )
    r = dfr("validate", "manifests")
    assert r.code == 1
    found = errors(r.err)
    starts(found, "manifests/both.yaml:6:3: error: spec needs exactly one of 'objectives'")
    starts(found, "manifests/neither.yaml:6:3: error: spec needs exactly one")
    starts(
        found,
        "manifests/typos.yaml:10:5: error: unknown key 'requirments' in spec.content",
        "did you mean 'requirements'?",
    )
    starts(found, "manifests/typos.yaml:8:31: error: spec.spec_generation_model_name")
    starts(found, "manifests/cond.yaml:8:39: error: spec.generate_conditional_distributions")


def test_spec_ref_to_an_unknown_name_warns_in_validate_and_is_an_error_in_plan(
    ws: Workspace, dfr: Runner
) -> None:
    """validate reads no state (CONTRACT: no state, no network; it runs in
    pre-commit hooks): a name no manifest declares may be an adopted spec, so it
    warns at the name; plan, which reads state, refuses it."""
    ws.write_text("pipeline", spec_text() + "---\n" + run_text(ref="tikets"))
    r = dfr("validate", "manifests")
    assert r.code == 0, r.text
    (line,) = [x for x in r.err.splitlines() if ": warning: spec.spec_ref" in x]
    assert line.startswith("manifests/pipeline.yaml:14:20: warning: spec.spec_ref.name 'tikets'")
    assert "did you mean 'tickets'?" in line and "dfr import spec" in line
    r = dfr("plan", "manifests")
    assert r.code == 1
    (line,) = errors(r.err)
    assert line.startswith("manifests/pipeline.yaml:14:20: error: spec.spec_ref.name 'tikets'")
    assert "did you mean 'tickets'?" in line and "dfr import spec" in line


def test_validate_never_reads_state_for_spec_ref_names(ws: Workspace, dfr: Runner) -> None:
    """Even a state that cannot be read does not change what validate says."""
    ws.write_text("run", run_text(ref="handmade"))
    Path(ws.state).write_text("{ not json", encoding="utf-8")
    r = dfr("validate", "manifests", state=None)
    assert r.code == 0, r.text
    assert "warning: spec.spec_ref.name 'handmade'" in r.err


def test_an_adopted_spec_in_state_is_a_known_name(ws: Workspace, dfr: Runner) -> None:
    record = SpecRecord("handmade", "2026-11-28T10:00:00.000Z", spec_id="x", status="SUCCEEDED")
    backend = LocalBackend(ws.state)
    with backend.lock("test") as store:
        store.put_spec(record)
    assert "handmade" in backend.read().specs
    ws.write_text("run", run_text(ref="handmade"))
    r = dfr("validate", "manifests", state=None)
    assert r.code == 0, r.text
    r = dfr("plan", "--json", "manifests")
    assert r.code == 0, r.text
    (change,) = json.loads(r.out)["changes"]
    assert change["body"]["spec_id"] == "x" and change["depends_on"] == []


def test_spec_id_and_spec_ref_together_are_refused_at_spec_ref(ws: Workspace, dfr: Runner) -> None:
    extra = "  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a\n"
    ws.write_text("pipeline", spec_text() + "---\n" + run_text(extra=extra))
    r = dfr("validate", "manifests")
    assert r.code == 1
    (line,) = errors(r.err)
    assert line.startswith(
        "manifests/pipeline.yaml:14:3: error: spec.spec_id and spec.spec_ref cannot both be given"
    )
    ws.write_text("pipeline", spec_text() + "---\n" + run_text(extra="  spec_version: 2\n"))
    (line,) = errors(dfr("validate", "manifests").err)
    assert line.startswith("manifests/pipeline.yaml:16:3: error: spec.spec_version cannot be given")


def test_a_run_without_spec_id_or_spec_ref_says_what_it_misses(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("run", run_text().replace("  spec_ref: {name: tickets, version: 1}\n", ""))
    (line,) = errors(dfr("validate", "manifests").err)
    assert "spec is missing the required key 'spec_id'" in line


@pytest.mark.parametrize("version", ["0", "newest", "1.5"])
def test_a_bad_spec_ref_version_is_worded(ws: Workspace, dfr: Runner, version: str) -> None:
    ws.write_text("pipeline", spec_text() + "---\n" + run_text(version=version))
    (line,) = errors(dfr("validate", "manifests").err)
    assert line.startswith("manifests/pipeline.yaml:14:38: error: ")
    assert "spec.spec_ref.version must be a version number (1 or more) or 'latest'" in line


@pytest.mark.repo
def test_a_content_file_is_read_and_checked_in_its_own_file(ws: Workspace, dfr: Runner) -> None:
    ws.file("specs/tickets.content.yaml", "spec:\n  description: Tickets\n  requirments: x\n")
    ws.file("specs/tickets.yaml", spec_text("  content_file: tickets.content.yaml\n"))
    r = dfr("validate", "specs")
    assert r.code == 1
    (line,) = errors(r.err)
    assert line.startswith("specs/tickets.content.yaml:3:3: error: unknown key 'requirments'")
    ws.file("specs/tickets.content.yaml", "description: Tickets\nrequirements: x\n")
    assert dfr("validate", "specs").code == 0


@pytest.mark.repo
@pytest.mark.parametrize(
    "where",
    [
        "../../outside.yaml",
        "/etc/hostname",
        "link/content.yaml",
        "missing.yaml",
        "back\\slash.yaml",
        "nul\x00byte.yaml",
        ".",
    ],
)
def test_a_content_file_outside_the_repository_or_missing_is_refused(
    ws: Workspace, dfr: Runner, tmp_path: Path, where: str
) -> None:
    (tmp_path / "outside.yaml").write_text("description: secret\n")
    outside_dir = tmp_path / "elsewhere"
    outside_dir.mkdir()
    (outside_dir / "content.yaml").write_text("description: secret\n")
    ws.file("specs/tickets.yaml", spec_text(f"  content_file: {json.dumps(where)}\n"))
    os.symlink(outside_dir, ws.root / "specs" / "link")
    r = dfr("validate", "specs")
    assert r.code == 1
    (line,) = errors(r.err)
    assert line.startswith("specs/tickets.yaml:8:17: error: spec.content_file"), line
    assert "secret" not in r.text


def test_content_and_content_file_together_are_refused(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("s", spec_text("  content: {description: x}\n  content_file: x.yaml\n"))
    (line,) = errors(dfr("validate", "manifests").err)
    assert line.startswith("manifests/s.yaml:9:3: error: spec.content and spec.content_file")


def test_spec_names_are_unique_among_specs_but_a_run_may_share_one(
    ws: Workspace, dfr: Runner
) -> None:
    ws.write_text("a", spec_text() + "---\n" + run_text(name="tickets"))
    assert dfr("validate", "manifests").code == 0
    ws.write_text("b", spec_text())
    (line,) = errors(dfr("validate", "manifests").err)
    assert line.startswith("manifests/b.yaml:4:9: error: metadata.name 'tickets' is already used")
    assert "manifests/a.yaml:4:9" in line


def test_another_tools_kind_spec_in_a_directory_is_not_ours(ws: Workspace, dfr: Runner) -> None:
    ws.write_text(
        "other", "apiVersion: example.com/v1\nkind: Spec\nmetadata: {name: x}\nspec: {}\n"
    )
    ws.write_text("run", run_text(ref="tickets") + "---\n" + spec_text())
    assert dfr("validate", "manifests").code == 0


def test_the_process_pool_and_the_cache_give_the_same_specs(ws: Workspace, tmp_path: Path) -> None:
    from reconciler.validate import validate_paths
    from reconciler.vcache import ValidationCache

    content = "  content:\n    description: Support tickets\n"
    ws.write_text("pipeline", spec_text(content) + "---\n" + run_text())
    ws.write_text("latest", run_text("tickets-latest", version="latest"))
    ws.write_text("bad", run_text("tickets-bad", ref="nowhere"))
    serial = validate_paths(["manifests"])
    pooled = validate_paths(["manifests"], jobs=2, parallel_min=1)
    validate_paths(["manifests"], cache=ValidationCache.open(tmp_path / "cache"))
    again = ValidationCache.open(tmp_path / "cache")
    assert again is not None
    cached = validate_paths(["manifests"], cache=again)
    assert again.hits >= 1  # the runs-only files came from the cache
    for result in (pooled, cached):
        assert result.specs == serial.specs and len(serial.specs) == 1
        assert [m.name for m in result.manifests] == [m.name for m in serial.manifests]
        assert [str(d) for d in result.diagnostics] == [str(d) for d in serial.diagnostics]
    assert any("'nowhere' names no Spec manifest" in d.message for d in serial.diagnostics)


def test_the_web_apps_yaml_as_a_content_file_is_no_manifest_and_no_warning(
    ws: Workspace, dfr: Runner
) -> None:
    # The web app's YAML has `metadata:` and `spec:`, so a directory scan would warn that
    # it looks like a run without its header: it is the spec's content, read as such.
    web_app = "metadata:\n  name: tickets\n  version: 3\nspec:\n  description: Tickets\n"
    ws.file("manifests/tickets.content.yaml", web_app)
    ws.write_text("tickets", spec_text("  content_file: tickets.content.yaml\n"))
    r = dfr("validate", "manifests")
    assert (r.code, r.diagnostics) == (0, []), r.text
    ws.file("manifests/stray.yaml", web_app)  # no spec reads this one: still a warning
    (line,) = dfr("validate", "manifests").diagnostics
    assert line.startswith("manifests/stray.yaml:1:1: warning: skipped")


def test_dfr_schema_prints_the_spec_schema_that_validates_spec_manifests(
    ws: Workspace, dfr: Runner
) -> None:
    import jsonschema

    r = dfr("schema", "--spec-schema")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["$id"].endswith("/spec.schema.json")
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)
    import yaml

    manifest = yaml.safe_load(spec_text("  content: {description: Tickets}\n"))
    jsonschema.Draft202012Validator(doc).validate(manifest)  # what editors check, too
