"""Unit tests of the guardrails' pure parts: the project schema, discovery, preflight verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from reconciler import policy, preflight, project, project_checks
from reconciler.api import Spec
from reconciler.errors import APIError, AuthError, NotFoundError, UsageError
from reconciler.plan import Action, Change
from reconciler.schema import manifest_schema, schema_text

# -- the schema ----------------------------------------------------------------------------


def test_project_schema_is_a_valid_draft_2020_12_schema_with_its_id() -> None:
    schema = json.loads(schema_text("project.schema.json"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://dataframer.ai/schemas/reconciler/v1/project.schema.json"


def test_every_field_has_a_description() -> None:
    schema = project_checks.project_schema()
    missing: list[str] = []

    def walk(node: dict[str, Any], where: str) -> None:
        for key, sub in node.get("properties", {}).items():
            target = sub
            if "$ref" in sub and "description" not in sub:
                target = schema["$defs"][sub["$ref"].rsplit("/", 1)[1]]
            if "description" not in target:
                missing.append(f"{where}{key}")
            walk(target, f"{where}{key}.")

    walk(schema, "")
    assert missing == []
    assert "DATAFRAMER_API_KEY" in schema["description"]


def test_the_model_list_is_the_manifest_schemas() -> None:
    assert (
        project_checks.project_schema()["$defs"]["model"]["enum"]
        == (manifest_schema()["$defs"]["model"]["enum"])
    )


# -- discovery -----------------------------------------------------------------------------


def test_find_walks_up_to_the_git_root_only(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    (repo / ".git").write_text("gitdir: elsewhere\n")  # a worktree's .git is a file
    assert project.find(cwd=deep, environ={}) is None
    (tmp_path / "dfr.yaml").write_text("parallelism: 2\n")  # above the root: ignored
    assert project.find(cwd=deep, environ={}) is None
    (repo / "dfr.yaml").write_text("parallelism: 3\n")
    assert project.find(cwd=deep, environ={}) == (repo / "dfr.yaml", "../../dfr.yaml")
    (repo / "a" / "dfr.yaml").write_text("parallelism: 4\n")  # the nearest wins
    assert project.find(cwd=deep, environ={}) == (repo / "a" / "dfr.yaml", "../dfr.yaml")


def test_explicit_and_environment_files(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("")
    assert project.find("x.yaml", cwd=tmp_path, environ={}) == (tmp_path / "x.yaml", "x.yaml")
    env = {"DFR_CONFIG": "x.yaml"}
    assert project.find(cwd=tmp_path, environ=env) == (tmp_path / "x.yaml", "x.yaml")
    with pytest.raises(UsageError, match="is a directory"):
        project.find(".", cwd=tmp_path, environ={})


def test_settings_are_resolved_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "dfr.yaml"
    path.write_text("manifests: [runs, /abs/x]\nstate: st.json\ntimeout: 1h30m\n")
    loaded = project.load(path, "../dfr.yaml", cwd=tmp_path / "sub")
    assert loaded.ok
    assert loaded.manifests == ("../runs", "/abs/x")
    assert loaded.state == "../st.json"
    assert loaded.timeout == 5400.0
    assert loaded.manifest_paths(()) == ("../runs", "/abs/x")
    assert loaded.manifest_paths(("a.yaml",)) == ("a.yaml",)
    assert project.Project().manifest_paths(()) == (".",)


def test_secret_looking_keys_are_refused_whatever_their_spelling(tmp_path: Path) -> None:
    path = tmp_path / "dfr.yaml"
    path.write_text("API-Key: x\ntoken: y\n")
    loaded = project.load(path, "dfr.yaml", cwd=tmp_path)
    assert [(d.line, d.code) for d in loaded.diagnostics] == [
        (1, "project-secret"),
        (2, "project-secret"),
    ]


# -- the budget line -----------------------------------------------------------------------


def test_annotate_replaces_the_samples_line_or_appends_one() -> None:
    p = policy.Policy(max_samples_per_apply=100)
    text = "Plan: 1 to create.\nSamples to request: 150.\nmore\n"
    assert policy.annotate_plan(text, p, 150) == (
        "Plan: 1 to create.\n"
        "Samples to request: 150 of a budget of 100 per apply. Over budget by 50.\nmore\n"
    )
    assert policy.annotate_plan("Plan.\n", p, 50) == (
        "Plan.\nSamples to request: 50 of a budget of 100 per apply.\n"
    )
    assert policy.annotate_plan("Plan.\n", p, 0) == "Plan.\n"
    assert policy.annotate_plan(text, policy.Policy(), 150) == text
    assert policy.budget_problem(p, 100) is None


# -- preflight verdicts --------------------------------------------------------------------


def V(version: int | None, status: str | None = "SUCCEEDED") -> dict[str, Any]:
    """A versions entry as the old page's API gave it (numbered, with a status)."""
    return {"version": version, "status": status, "created_at": "2026-01-01T00:00:00Z"}


def S(
    status: str | None = "SUCCEEDED",
    name: str | None = None,
    versions: tuple[dict[str, Any], ...] | None = None,
    latest_version: int | None = None,
    **extra: Any,
) -> Spec:
    """A spec as the client parses it from an answer with these fields."""
    data: dict[str, Any] = {"id": "s", "status": status, "name": name, **extra}
    if versions is not None:
        data["versions"] = list(versions)
    if latest_version is not None:
        data["latest_version"] = latest_version
    return Spec.from_json(data)


def sdk_version(day: int) -> dict[str, Any]:
    """A versions entry as the current API gives it: no number, no status."""
    return {"content_yaml": "spec: {}\n", "created_at": f"2026-01-{day:02d}T00:00:00Z"}


class FakeClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def get_spec(self, spec_id: str, include_versions: bool = False) -> Any:
        assert include_versions
        self.calls.append(spec_id)
        answer = self.answers[spec_id.lower()]
        if isinstance(answer, Exception):
            raise answer
        return answer


def change(name: str, spec_id: str, version: int | None = None) -> Change:
    body: dict[str, Any] = {"spec_id": spec_id, "number_of_samples": 1}
    if version is not None:
        body["spec_version"] = version
    return Change(name, Action.CREATE, body=body, where=f"{name}.yaml:4:9")


def reasons(client: FakeClient, *changes: Change) -> dict[str, tuple[bool, str]]:
    result = preflight.check_specs(client, changes)
    return {f.name: (f.blocking, f.reason) for f in result.findings}


def test_versions_from_latest_version_when_no_list_is_given() -> None:
    client = FakeClient({"s": S(latest_version=2)})
    assert reasons(client, change("a", "s", 2)) == {}
    assert reasons(client, change("b", "s", 3)) == {
        "b": (True, "spec s has versions 1-2; spec_version 3 does not exist")
    }


def test_unknown_versions_are_not_blocked_and_a_single_version_reads_well() -> None:
    unknown = reasons(FakeClient({"s": S()}), change("a", "s", 5))
    assert unknown["a"][0] is False and "could not be checked" in unknown["a"][1]
    client = FakeClient({"s": S(versions=(V(1),))})
    assert reasons(client, change("a", "s", 2)) == {
        "a": (True, "spec s has version 1; spec_version 2 does not exist")
    }
    found = reasons(FakeClient({"s": S(versions=())}), change("a", "s", 1))
    assert found == {
        "a": (
            False,
            "spec s did not list its versions; spec_version 1 could not be checked "
            "(the API checks it on submit)",
        )
    }


def test_unnumbered_versions_are_counted_in_any_order() -> None:
    # The current API: entries without numbers; version N is the Nth by created_at.
    spec = S(versions=(sdk_version(3), sdk_version(1), sdk_version(2)))
    client = FakeClient({"s": spec})
    assert reasons(client, change("a", "s", 3), change("b", "s", 1)) == {}
    assert reasons(client, change("c", "s", 4)) == {
        "c": (True, "spec s has versions 1-3; spec_version 4 does not exist")
    }


def test_a_spec_whose_content_lives_in_the_customers_cloud_is_ready() -> None:
    spec = S(
        content_yaml=None,
        content_unavailable_reason="spec_content_in_data_plane",
        versions=({"content_yaml": None, "created_at": "2026-01-01T00:00:00Z"},),
    )
    assert spec.content_unavailable_reason == "spec_content_in_data_plane"
    assert reasons(FakeClient({"s": spec}), change("a", "s", 1), change("b", "s")) == {}


def test_a_version_that_is_not_ready_blocks() -> None:
    client = FakeClient({"s": S(name="n", versions=(V(1), V(2, "PROCESSING")))})
    assert reasons(client, change("a", "s", 2), change("b", "s", 1)) == {
        "a": (True, "spec s (n) version 2 is PROCESSING; a run needs a SUCCEEDED version")
    }
    assert client.calls == ["s"]


def test_inconclusive_answers_are_warnings_and_auth_errors_stop() -> None:
    client = FakeClient({"s": APIError("503 after retries"), "t": S(status=None)})
    found = reasons(client, change("a", "s"), change("b", "t"))
    assert found["a"][0] is False and "could not check spec s (503 after retries)" in found["a"][1]
    assert found["b"][0] is False
    with pytest.raises(AuthError):
        preflight.check_specs(FakeClient({"s": AuthError("no")}), [change("a", "s")])
    assert reasons(FakeClient({"s": NotFoundError("gone")}), change("a", "s")) == {
        "a": (True, "spec s not found")
    }


def test_only_submitting_changes_are_checked() -> None:
    client = FakeClient({})
    noop = Change("a", Action.NOOP, body={"spec_id": "s"})
    assert preflight.check_specs(client, [noop]).specs_read == 0
    assert client.calls == []


def test_spans() -> None:
    assert preflight.spans([1, 2, 3, 5, 7, 8]) == "1-3, 5, 7-8"
    assert preflight.spans([]) == ""
