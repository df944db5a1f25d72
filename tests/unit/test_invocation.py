"""`Invocation.build`: every setting is resolved flag > environment > dfr.yaml > default,
in one place (reconciler/invocation.py), and reaches the commands as a plain value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import UsageError
from reconciler.invocation import ENV, FLAG, Flags, Given, Invocation, default_jobs
from reconciler.project import Project

CPUS = default_jobs({})

# setting, flags, environment, dfr.yaml; then what the Invocation holds when built from
# all three, from the environment and dfr.yaml, from dfr.yaml alone, from nothing. A
# setting without a variable or a file key shows the next level down there.
TABLE: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any], tuple[Any, ...]]] = [
    (
        "api_url",
        {"api_url": "http://127.0.0.1:1"},
        {"DATAFRAMER_BASE_URL": "http://127.0.0.1:2"},
        {"api_url": "http://127.0.0.1:3"},
        ("http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3", None),
    ),
    (
        "max_rps",
        {"max_rps": 3.0},
        {"DFR_MAX_RPS": "12.5"},
        {"max_rps": 20.0},
        (3.0, 12.5, 20.0, None),
    ),
    ("jobs", {"jobs": 3}, {"DFR_JOBS": "2"}, {}, (3, 2, CPUS, CPUS)),
    ("no_cache", {"no_cache": True}, {"DFR_NO_CACHE": "1"}, {}, (True, True, False, False)),
    ("parallelism", {"parallelism": 7}, {}, {"parallelism": 3}, (7, 3, 3, 10)),
    (
        "poll_interval",
        {"poll_interval": "5s"},
        {},
        {"poll_interval": 120.0},
        (5.0, 120.0, 120.0, 30.0),
    ),
    ("timeout", {"timeout": "10m"}, {}, {"timeout": 5400.0}, (600.0, 5400.0, 5400.0, None)),
    ("lock_timeout", {"lock_timeout": "30s"}, {}, {}, (30.0, 0.0, 0.0, 0.0)),
    (
        "state",
        {"state": "flag.json"},
        {"DFR_STATE": "env.json"},
        {"state": "file.json"},
        (Given("flag.json", FLAG), Given("env.json", ENV), None, None),
    ),
    (
        "backend",
        {"backend": "postgresql://a/b"},
        {"DFR_BACKEND": "postgresql://c/d"},
        {},
        (Given("postgresql://a/b", FLAG), Given("postgresql://c/d", ENV), None, None),
    ),
    (
        "workspace",
        {"workspace": "ci"},
        {"DFR_WORKSPACE": "team"},
        {"workspace": "file"},
        (Given("ci", FLAG), Given("team", ENV), None, None),
    ),
    (
        "config",
        {"config": "a.yaml"},
        {"DFR_CONFIG": "b.yaml"},
        {},
        ("a.yaml", "b.yaml", None, None),
    ),
    ("api_key_file", {"api_key_file": "k"}, {}, {}, ("k", None, None, None)),
]


@pytest.mark.parametrize("row", TABLE, ids=[row[0] for row in TABLE])
def test_flag_over_env_over_file_over_default(row: tuple[Any, ...]) -> None:
    name, flags, environ, file, want = row
    project = Project(**file)
    builds = [
        Invocation.build(Flags(**flags), environ, project),
        Invocation.build(Flags(), environ, project),
        Invocation.build(Flags(), {}, project),
        Invocation.build(Flags(), {}, Project()),
    ]
    assert tuple(getattr(inv, name) for inv in builds) == want
    # the state, backend and workspace of dfr.yaml stay in the project: open_backend
    # weighs them against the flag and the variable (tests/acceptance/test_project.py)
    assert builds[2].project is project


def test_an_empty_variable_is_no_variable() -> None:
    inv = Invocation.build(Flags(), {"DFR_STATE": "", "DATAFRAMER_BASE_URL": ""}, Project())
    assert inv.state is None and inv.api_url is None


def test_a_bad_rate_in_the_environment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="DFR_MAX_RPS"):
        Invocation.build(Flags(), {"DFR_MAX_RPS": "fast"}, Project())


def test_a_bad_duration_flag_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--poll-interval"):
        Invocation.build(Flags(poll_interval="soon"), {}, Project())


def test_a_zero_timeout_flag_means_no_limit_over_the_file() -> None:
    inv = Invocation.build(Flags(timeout="0"), {}, Project(timeout=60.0))
    assert inv.timeout is None


def test_the_cli_gives_each_command_its_invocation(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Through `dfr`: a variable click read is handed on as the environment's, not a flag."""
    import reconciler.commands.state as state_module
    from reconciler.cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()  # dfr.yaml is looked for up to here
    (tmp_path / "dfr.yaml").write_text("parallelism: 4\n")
    seen: list[Invocation] = []

    def listed(inv: Invocation, *_a: object) -> int:
        seen.append(inv)
        return 0

    monkeypatch.setattr(state_module, "run_state_list", listed)
    monkeypatch.setenv("DFR_STATE", "from-env.json")
    monkeypatch.delenv("DFR_CONFIG", raising=False)
    assert run(["state", "list"]) == 0
    assert seen[-1].state == Given("from-env.json", ENV)
    assert seen[-1].project.file == "dfr.yaml" and seen[-1].parallelism == 4
    assert run(["state", "list", "--state", "from-flag.json"]) == 0
    assert seen[-1].state == Given("from-flag.json", FLAG)


def test_a_variable_counts_only_for_a_command_with_its_option(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`dfr validate` and `dfr status` never read DFR_MAX_RPS: a bad one does not stop
    them; `dfr plan` has --max-rps, whose variable click checks."""
    from reconciler.cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    monkeypatch.delenv("DFR_CONFIG", raising=False)
    monkeypatch.setenv("DFR_MAX_RPS", "fast")
    assert run(["validate", str(tmp_path)]) == 0
    assert run(["status"]) == 0
    assert run(["plan", str(tmp_path)]) == 1
