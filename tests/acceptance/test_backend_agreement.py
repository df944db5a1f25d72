"""The environment cannot quietly move the state away from where dfr.yaml keeps it.

Issue 14, item 3: README told teams to set `backend:` in dfr.yaml, the CI recipes set
`DFR_STATE`, and the variable silently beat the file: CI used a file on a branch,
people the database, and each side submitted the other's runs again. Now a state
selected by `DFR_STATE`, `DFR_BACKEND` or `DFR_WORKSPACE` must be the one dfr.yaml
declares; a different one is refused (exit 1, naming both), unless the override is
explicit on the command line (`--state`, `--backend`, `--workspace`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.runner import Result, in_process

from reconciler.state.local import LocalBackend
from reconciler.state.model import RunRecord

URL = "postgresql://dfr@db.invalid:5432/dfr?sslmode=require"


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DFR_BACKEND", "DFR_STATE", "DFR_WORKSPACE", "DFR_CONFIG", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def dfr(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """`dfr ARGS` in this process: code, out, err (no traceback in them)."""
    return in_process(args, capsys)


def _seed(path: Path, name: str) -> None:
    with LocalBackend(path).lock("test") as store:
        store.put(RunRecord.new(name, run_id=f"run-{name}"))


def test_an_environment_state_other_than_dfr_yaml_s_is_refused_naming_both(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dfr.yaml").write_text("state: team.json\n")
    _seed(tmp_path / "team.json", "in-team")
    _seed(tmp_path / "ci.json", "in-ci")
    monkeypatch.setenv("DFR_STATE", "ci.json")
    for command in (("state", "list"), ("status",), ("plan", "."), ("refresh",)):
        code, out, err = dfr(capsys, *command)
        assert code == 1, (command, out, err)
        assert "DFR_STATE" in err and "ci.json" in err, err
        assert "dfr.yaml" in err and "team.json" in err, err
        assert "Traceback" not in err and "in-ci" not in out
    # The same file, however it is spelt, is no conflict.
    monkeypatch.setenv("DFR_STATE", str(tmp_path / "sub" / ".." / "team.json"))
    code, out, _ = dfr(capsys, "state", "list")
    assert code == 0 and "in-team" in out
    # On the command line the override is explicit, and allowed.
    monkeypatch.setenv("DFR_STATE", "ci.json")
    code, out, _ = dfr(capsys, "state", "list", "--state", "ci.json")
    assert code == 0 and "in-ci" in out


def test_a_state_file_in_the_environment_is_refused_when_dfr_yaml_names_a_database(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The reported split: dfr.yaml names the team's database, the recipe set DFR_STATE.
    (tmp_path / "dfr.yaml").write_text(f"backend: {URL}\n")
    _seed(tmp_path / "ci.json", "in-ci")
    monkeypatch.setenv("DFR_STATE", "ci.json")
    code, _, err = dfr(capsys, "status")
    assert code == 1
    assert "DFR_STATE" in err and "ci.json" in err and "dfr.yaml" in err and URL in err, err
    # --backend with a file is just as explicit as --state.
    code, out, _ = dfr(capsys, "state", "list", "--backend", "ci.json")
    assert code == 0 and "in-ci" in out


def test_another_database_or_workspace_in_the_environment_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dfr.yaml").write_text(f"backend: {URL}\nworkspace: team\n")
    _seed(tmp_path / "dfr.state.json", "local")
    monkeypatch.setenv("DFR_BACKEND", "postgresql://dfr@other.invalid:5432/dfr")
    code, _, err = dfr(capsys, "status")
    assert code == 1 and "DFR_BACKEND" in err and "other.invalid" in err and URL in err, err
    monkeypatch.setenv("DFR_BACKEND", "dfr.state.json")
    code, _, err = dfr(capsys, "status")
    assert code == 1 and "DFR_BACKEND" in err, err
    monkeypatch.delenv("DFR_BACKEND")
    monkeypatch.setenv("DFR_WORKSPACE", "ci")
    code, _, err = dfr(capsys, "status")
    assert code == 1 and "DFR_WORKSPACE" in err and "ci" in err and "team" in err, err


def test_the_same_database_in_the_environment_is_no_conflict(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The same database with the password given in the variable (and postgres:// for
    # postgresql://), the same workspace: dfr gets as far as connecting to it.
    (tmp_path / "dfr.yaml").write_text(f"backend: {URL}\nworkspace: team\n")
    secret = "S3cret-pw-in-env-9"
    monkeypatch.setenv(
        "DFR_BACKEND", f"postgres://dfr:{secret}@db.invalid:5432/dfr?sslmode=require"
    )
    monkeypatch.setenv("DFR_WORKSPACE", "team")
    code, out, err = dfr(capsys, "status")
    assert code == 1 and "db.invalid" in err, err
    assert "dfr.yaml" not in err and "DFR_BACKEND" not in err, err
    assert secret not in out + err


def test_without_a_declaration_in_dfr_yaml_the_environment_decides(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "dfr.yaml").write_text("manifests: [.]\n")
    _seed(tmp_path / "ci.json", "in-ci")
    monkeypatch.setenv("DFR_STATE", "ci.json")
    code, out, _ = dfr(capsys, "state", "list")
    assert code == 0 and "in-ci" in out
