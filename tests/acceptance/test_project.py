"""The project file dfr.yaml: where it is found, what a bad one gives, which setting wins.

Discovery: --config FILE, then DFR_CONFIG, then dfr.yaml in the current directory
or the nearest parent up to the git root (outside a repository: the current
directory only). A malformed file is a located `dfr.yaml:LINE:COL: error:`, exit 1,
no traceback, for every command. Precedence: a flag (or its environment
variable) beats the file, which beats the built-in default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.runner import Runner, apply_args
from support.workspace import Workspace

pytestmark = pytest.mark.repo

LIMIT = "policy:\n  max_samples_per_run: 5\n"  # the manifests ask for 10: a visible effect


def policy_hit(r: Any) -> bool:
    return "over the limit of 5 per run" in r.err


# -- discovery ---------------------------------------------------------------------------


def test_found_in_the_current_directory(ws: Workspace, dfr: Runner) -> None:
    ws.config(LIMIT)
    ws.write_text("a")
    r = dfr("validate", "runs")
    assert r.code == 1 and policy_hit(r)
    assert "(policy.max_samples_per_run in dfr.yaml:2:3)" in r.err


def test_found_in_a_parent_and_named_from_here(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.config(LIMIT)
    ws.write_text("a")
    monkeypatch.chdir(ws.manifests)
    r = dfr("validate", "a.yaml")
    assert r.code == 1
    assert "a.yaml:8:22: error:" in r.err
    assert "(policy.max_samples_per_run in ../dfr.yaml:2:3)" in r.err


def test_the_search_stops_at_the_git_root(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.config(LIMIT, where=ws.root.parent)  # above the repository: not ours
    ws.write_text("a")
    assert dfr("validate", "runs").code == 0
    monkeypatch.chdir(ws.manifests)
    assert dfr("validate", "a.yaml").code == 0


def test_outside_a_repository_only_the_current_directory_counts(
    tmp_path: Path, dfr: Runner, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "plain"
    (outside / "sub").mkdir(parents=True)
    (outside / "dfr.yaml").write_text(LIMIT)
    (outside / "sub" / "a.yaml").write_text((ws.write_text("a")).read_text())
    monkeypatch.chdir(outside / "sub")
    assert dfr("validate", "a.yaml").code == 0
    monkeypatch.chdir(outside)
    assert policy_hit(dfr("validate", "sub/a.yaml"))


def test_config_flag_and_env_name_another_file(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write_text("a")
    ws.file("conf/strict.yaml", LIMIT)
    ws.config("policy:\n  max_samples_per_run: 100\n")  # the default file is lenient
    assert dfr("validate", "runs").code == 0
    r = dfr("validate", "--config", "conf/strict.yaml", "runs")
    assert policy_hit(r)
    assert "(policy.max_samples_per_run in conf/strict.yaml:2:3)" in r.err
    monkeypatch.setenv("DFR_CONFIG", "conf/strict.yaml")
    assert policy_hit(dfr("validate", "runs"))
    assert policy_hit(dfr("plan"))
    # --config beats DFR_CONFIG.
    assert dfr("validate", "--config", "dfr.yaml", "runs").code == 0


def test_a_missing_config_file_is_a_usage_error(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = dfr("plan", "--config", "nope.yaml")
    assert (r.code, r.err) == (1, "error: --config nope.yaml: no such file\n")
    monkeypatch.setenv("DFR_CONFIG", "gone.yaml")
    r = dfr("status")
    assert (r.code, r.err) == (1, "error: DFR_CONFIG gone.yaml: no such file\n")


def test_without_a_project_file_nothing_changes(ws: Workspace, dfr: Runner) -> None:
    ws.write_text("a", samples=20000)
    r = dfr("plan")
    assert r.code == 0
    assert "Samples to request: 20,000.\n" in r.out


# -- malformed files ---------------------------------------------------------------------------

MALFORMED = [
    ("policy: [unclosed\n", "dfr.yaml:2:1: error: invalid YAML"),
    ("state: a\nstate: b\n", "dfr.yaml:2:1: error: key 'state' is given twice"),
    (
        "paralelism: 4\n",
        "dfr.yaml:1:1: error: unknown key 'paralelism' at the top level; did you "
        "mean 'parallelism'?",
    ),
    (
        "policy:\n  max_samples_per_aply: 4\n",
        "dfr.yaml:2:3: error: unknown key "
        "'max_samples_per_aply' in policy; did you mean 'max_samples_per_apply'?",
    ),
    (
        "parallelism: four\n",
        "dfr.yaml:1:14: error: parallelism must be an integer, not string 'four'",
    ),
    ("parallelism: 0\n", "dfr.yaml:1:14: error: parallelism must be at least 1, not 0"),
    ("manifests: runs\n", "dfr.yaml:1:12: error: manifests must be a list, not string 'runs'"),
    (
        "policy:\n  max_samples_per_run: 1e3\n",
        "dfr.yaml:2:24: error: policy.max_samples_per_run must be an integer, not number 1000.0",
    ),
    (
        "policy:\n  allowed_models: [anthropic/claude-sonet-4-5]\n",
        "dfr.yaml:2:20: error: policy.allowed_models[0]: string 'anthropic/claude-sonet-4-5' "
        "is not allowed; did you mean 'anthropic/claude-sonnet-4-5'?",
    ),
    (
        "policy:\n  required_labels: [team, team]\n",
        "dfr.yaml:2:20: error: policy.required_labels: ",
    ),
    (
        "timeout: soon\n",
        "dfr.yaml:1:10: error: timeout must be a number of seconds above 0 or a "
        "duration like 90s, 15m, 2h or 1h30m",
    ),
    (
        "api_url: https://user:pw@example.com\n",
        "dfr.yaml:1:10: error: api_url must be a plain http(s) URL",
    ),
    ("api_key: abc123\n", "dfr.yaml:1:1: error: 'api_key': the API key never goes in dfr.yaml"),
    ("- a\n- b\n", "dfr.yaml:1:1: error: the project file must be a mapping of settings"),
    ("state: a\n---\nstate: b\n", "dfr.yaml:3:1: error: the project file holds more than one"),
    ("enable_revisions: no\n", "dfr.yaml:1:1: error: unknown key 'enable_revisions'"),
    (
        "extra_models: acme/new-model-9\n",
        "dfr.yaml:1:15: error: extra_models must be a list, not string 'acme/new-model-9'",
    ),
    (
        "extra_models:\n  - acme/ok\n  - acme new model\n",
        "dfr.yaml:3:5: error: extra_models[1]: a model is written as the API spells it, 1 to "
        "200 characters without spaces, like acme/new-model-9",
    ),
    ("extra_models: ['']\n", "dfr.yaml:1:16: error: extra_models[0]: a model is written as"),
    ("extra_models: [5]\n", "dfr.yaml:1:16: error: extra_models[0] must be a string, not integer"),
    (
        f"extra_models: [acme/{'x' * 196}]\n",
        "dfr.yaml:1:16: error: extra_models[0] must be at most 200 characters long",
    ),
    (
        "extra_models: [acme/a, acme/a]\n",
        "dfr.yaml:1:15: error: extra_models: ['acme/a', 'acme/a'] has non-unique elements",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED, ids=[m[1][9:40] for m in MALFORMED])
def test_a_malformed_file_is_a_located_error(
    ws: Workspace, dfr: Runner, text: str, expected: str
) -> None:
    ws.config(text)
    ws.write_text("a")
    r = dfr("validate", "runs")
    assert r.code == 1
    assert r.err.startswith(expected), r.err
    # Every command that reads the project stops the same way, with nothing done.
    for command in (["plan"], apply_args(), ["status"], ["state", "list"]):
        r = dfr(*command)
        assert r.code == 1, command
        assert r.err.startswith(expected), (command, r.err)
        assert "error in the project file dfr.yaml; nothing was done" in r.err.splitlines()[-1]
    assert not (ws.root / "dfr.state.json").exists()


def test_validate_json_includes_the_project_files_errors(ws: Workspace, dfr: Runner) -> None:
    ws.config("paralelism: 4\n")
    ws.write_text("a", samples=0)
    doc = json.loads(dfr("validate", "--json", "runs").out)
    assert [(d["file"], d["line"], d["column"]) for d in doc["diagnostics"]] == [
        ("dfr.yaml", 1, 1),
        ("runs/a.yaml", 8, 22),
    ]


def test_an_empty_file_is_no_settings(ws: Workspace, dfr: Runner) -> None:
    ws.config("# nothing yet\n")
    ws.write_text("a")
    assert dfr("validate", "runs").code == 0


def test_a_budget_smaller_than_the_run_limit_is_a_warning(ws: Workspace, dfr: Runner) -> None:
    ws.config("policy:\n  max_samples_per_run: 500\n  max_samples_per_apply: 100\n")
    ws.write_text("a")
    r = dfr("validate", "runs")
    assert r.code == 0
    assert r.err.startswith(
        "dfr.yaml:2:3: warning: policy.max_samples_per_run (500) is larger than "
        "max_samples_per_apply (100)"
    )


# -- precedence: flag > file > default -------------------------------------------------------


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Invocation the CLI builds for `dfr apply` (apply itself is not run)."""
    import reconciler.commands.apply as apply_module

    seen: list[Any] = []

    def fake(inv: Any, *_a: Any, **_k: Any) -> int:
        seen.append(inv)
        return 0

    monkeypatch.setattr(apply_module, "run", fake)
    return seen


def test_apply_settings_flag_over_file_over_default(
    ws: Workspace, dfr: Runner, captured: list[Any]
) -> None:
    assert dfr("apply").code == 0
    default = captured[-1]
    assert (default.parallelism, default.poll_interval, default.timeout) == (10, 30.0, None)
    ws.config("parallelism: 3\npoll_interval: 2m\ntimeout: 1h30m\n")
    assert dfr("apply").code == 0
    from_file = captured[-1]
    assert (from_file.parallelism, from_file.poll_interval, from_file.timeout) == (
        3,
        120.0,
        5400.0,
    )
    assert dfr("apply", "--parallelism", "7", "--poll-interval", "5s", "--timeout", "10m").code == 0
    flags = captured[-1]
    assert (flags.parallelism, flags.poll_interval, flags.timeout) == (7, 5.0, 600.0)
    ws.config("poll_interval: 45\ntimeout: 90\n")  # plain numbers are seconds
    assert dfr("apply").code == 0
    assert (captured[-1].poll_interval, captured[-1].timeout) == (45.0, 90.0)


def test_state_flag_over_env_over_file_over_default(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write_text("a")
    root = ws.root
    assert dfr(*apply_args("--no-wait")).code == 0
    assert (root / "dfr.state.json").exists()  # the default
    ws.config("state: .dfr/state.json\n")
    (root / ".dfr").mkdir()
    ws.write_text("b")
    assert dfr(*apply_args("--no-wait")).code == 0
    assert (root / ".dfr" / "state.json").exists()  # the file's, relative to dfr.yaml
    names = [s["name"] for s in json.loads(dfr("state", "list", "--json").out)]
    assert names == ["a", "b"]  # a new state: both submitted into it
    monkeypatch.setenv("DFR_STATE", "env.json")
    # Another state in the environment than the file's is refused (issue 14: people
    # and CI would each keep one); test_backend_agreement.py holds the details.
    refused = dfr(*apply_args("--no-wait"))
    assert refused.code == 1 and "DFR_STATE=env.json" in refused.err
    assert not (root / "env.json").exists()
    assert dfr(*apply_args("--no-wait", "--state", "flag.json")).code == 0
    assert (root / "flag.json").exists()  # the flag beats both
    monkeypatch.delenv("DFR_STATE")
    # From a subdirectory, the file's state path still means the same file.
    monkeypatch.chdir(ws.manifests)
    r = dfr("state", "list", "--json")
    assert [s["name"] for s in json.loads(r.out)] == ["a", "b"]


def test_manifest_paths_argument_over_file_over_default(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.write_text("a")
    ws.file("more/b.yaml", (ws.manifests / "a.yaml").read_text().replace("name: a", "name: b"))
    ws.file("more/c.yaml", (ws.manifests / "a.yaml").read_text().replace("name: a", "name: c"))

    def planned(*args: str) -> list[str]:
        r = dfr("plan", "--json", *args)
        assert r.code == 0, r.err
        return [c["name"] for c in json.loads(r.out)["changes"]]

    assert planned() == ["a", "b", "c"]  # default: the current directory
    ws.config("manifests: [more]\n")
    assert planned() == ["b", "c"]
    assert planned("runs") == ["a"]
    assert dfr("validate").err.splitlines()[-1] == "2 manifests in 2 files: valid."
    # Relative to dfr.yaml, wherever the command runs.
    monkeypatch.chdir(ws.manifests)
    assert planned() == ["b", "c"]


def test_api_url_from_the_file_is_used_and_the_environment_beats_it(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real = os.environ["DATAFRAMER_BASE_URL"]
    ws.write_text("a")
    monkeypatch.delenv("DATAFRAMER_BASE_URL")
    ws.config(f"api_url: {real}\n")
    assert dfr(*apply_args("--no-wait")).code == 0
    ws.config("api_url: http://127.0.0.1:9/\n")  # nothing listens there
    ws.write_text("b")
    monkeypatch.setenv("DATAFRAMER_BASE_URL", real)
    assert dfr(*apply_args("--no-wait")).code == 0


def test_max_rps_flag_over_env_over_file_over_default(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's pacing as `dfr apply` would build it (apply itself is not run)."""
    import reconciler.commands.apply as apply_module
    from reconciler.api import PacingConfig
    from reconciler.engine.client import pacing

    seen: list[PacingConfig] = []

    def fake(inv: Any, *_a: Any, **_k: Any) -> int:
        seen.append(pacing(inv.max_rps))
        return 0

    monkeypatch.setattr(apply_module, "run", fake)
    monkeypatch.delenv("DFR_MAX_RPS", raising=False)
    assert dfr("apply").code == 0
    assert seen[-1] == PacingConfig(learn=True)
    ws.config("max_rps: 20\n")
    assert dfr("apply").code == 0
    assert seen[-1] == PacingConfig(max_requests_per_second=20.0, burst=1.0)
    monkeypatch.setenv("DFR_MAX_RPS", "12.5")
    assert dfr("apply").code == 0
    assert seen[-1].max_requests_per_second == 12.5
    assert dfr("apply", "--max-rps", "3").code == 0
    assert seen[-1].max_requests_per_second == 3.0
    monkeypatch.delenv("DFR_MAX_RPS")
    ws.config("max_rps: 0\n")
    r = dfr("validate", "runs")
    assert r.code == 1
    assert "dfr.yaml:1:10: error: max_rps must be greater than 0" in r.err, r.err
