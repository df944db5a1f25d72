"""The policy in force lives with a shared workspace: every clone and runner enforces it.

Clones in different folders share one PostgreSQL workspace: the team's (with its
dfr.yaml), a runner with no dfr.yaml, one with a looser `--config`. The first apply
records the team's policy in `dfr_workspaces.policy`; the others are refused until one
of them applies with `--policy-change`, which every clone then sees (the team's own
dfr.yaml, now different, is refused in turn). Through the real CLI, in this process,
against an in-process emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_helpers import sql

from dfr_emulator import SPEC_SUPPORT_TICKETS, Emulator, EmulatorConfig
from reconciler.cli import run
from reconciler.state.postgres import PostgresBackend

KEY = "dfr-pg-policy-test-key-77c1"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    config = EmulatorConfig(api_key=KEY, seed=5, pending_seconds=0.05, processing_seconds=0.1)
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, emu: Emulator, pg_url: str, ws_name: str) -> None:
    for name in ("DFR_STATE", "DFR_CONFIG", "DFR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", emu.base_url)
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    monkeypatch.setenv("DFR_BACKEND", pg_url)
    monkeypatch.setenv("DFR_WORKSPACE", ws_name)


def clone(root: Path, policy: str | None, *samples: tuple[str, int]) -> Path:
    """A folder with a .git, manifests under runs/ and, unless None, a dfr.yaml."""
    (root / ".git").mkdir(parents=True)
    (root / "runs").mkdir()
    if policy is not None:
        (root / "dfr.yaml").write_text(policy)
    for name, n in samples:
        (root / "runs" / f"{name}.yaml").write_text(
            "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
            f"metadata:\n  name: {name}\nspec:\n  spec_id: {SPEC_SUPPORT_TICKETS}\n"
            f"  spec_version: 1\n  number_of_samples: {n}\n"
        )
    return root


def dfr(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: Path,
    *args: str,
) -> tuple[int, str, str]:
    monkeypatch.chdir(where)
    capsys.readouterr()
    code = run(["apply", "--auto-approve", "--poll-interval", "0.03s", *args])
    out, err = capsys.readouterr()
    for text in (out, err):
        assert "Traceback" not in text and KEY not in text
        assert "dfr-test-pw" not in text  # the test database's password
    return code, out, err


def posts(emu: Emulator) -> int:
    return int(emu.stats()["requests"].get("runs.create", 0))


def test_every_clone_of_a_shared_workspace_enforces_the_recorded_policy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    emu: Emulator,
    pg_url: str,
    ws_name: str,
) -> None:
    team = clone(tmp_path / "team", "policy:\n  max_samples_per_run: 1000\n", ("a", 500))
    bare = clone(tmp_path / "runner", None, ("a", 500), ("b", 3000))
    loose = clone(tmp_path / "fork", "policy:\n  max_samples_per_run: 5000\n", ("a", 500))
    (loose / "runs" / "c.yaml").write_text(
        (bare / "runs" / "b.yaml").read_text().replace("name: b", "name: c")
    )

    code, _, err = dfr(capsys, monkeypatch, team)
    assert code == 0 and "Recorded the policy of dfr.yaml" in err
    backend = PostgresBackend(pg_url, ws_name)
    assert backend.read().policy is not None
    (text,) = sql(pg_url, "SELECT policy::text FROM dfr_workspaces WHERE name = %s", (ws_name,))[0]
    assert json.loads(text)["settings"] == {"max_samples_per_run": 1000}

    # A runner with no dfr.yaml, and a fork with a looser one: both refused, 0 POSTs.
    for where, change in (
        (bare, "max_samples_per_run 1000 -> (none) (no dfr.yaml found)"),
        (loose, "max_samples_per_run 1000 -> 5000 (dfr.yaml)"),
    ):
        code, out, err = dfr(capsys, monkeypatch, where)
        assert code == 1 and posts(emu) == 1, err
        assert "refusing to apply: the policy in force for state postgresql://" in err
        assert change in err and f"Policy change: {change}; apply needs --policy-change" in out
    code, _, err = dfr(capsys, monkeypatch, loose, "--config", "dfr.yaml")
    assert code == 1 and posts(emu) == 1

    # The fork makes its policy the one in force: visible to every clone.
    code, _, err = dfr(capsys, monkeypatch, loose, "--policy-change")
    assert code == 0 and posts(emu) == 2, err
    assert backend.read().policy.settings == {"max_samples_per_run": 5000}  # type: ignore[union-attr]
    code, _, err = dfr(capsys, monkeypatch, team)
    assert code == 1 and "max_samples_per_run 5000 -> 1000 (dfr.yaml)" in err
    assert posts(emu) == 2
