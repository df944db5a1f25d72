"""Durations: one parser for every flag, variable and dfr.yaml setting, with one limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.runner import Result, in_process

from reconciler.durations import MAX_SECONDS, parse_duration
from reconciler.errors import UsageError


@pytest.fixture(autouse=True)
def _here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("DFR_BACKEND", "DFR_STATE", "DFR_WORKSPACE", "DFR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def dfr(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """`dfr ARGS` in this process: code, out, err (no traceback in them)."""
    return in_process(args, capsys)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("0.5s", 0.5),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        (" 1h 30m 5s ", 5405.0),
        ("0", None),
        ("0s", None),
        (None, None),
        (30, 30.0),
        (2.5, 2.5),
        ("8784h", float(MAX_SECONDS)),
    ],
)
def test_the_forms_it_reads(text: str | float | None, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "h", "1d", "-5s", "1e3", "5 minutes", "1m1h", "\u0661\u0662s", "1.5h", "NaN"],
)
def test_what_it_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(text, "--lock-timeout")


@pytest.mark.parametrize(
    "value",
    [
        "8785h",
        "99999999999999h",
        "9" * 400 + "h",  # past float's range
        "9" * 5000 + "s",  # past int()'s digit limit
        "527041m",
        1e30,
        float("inf"),
    ],
)
def test_more_than_a_year_is_refused_not_overflowed(value: str | float) -> None:
    with pytest.raises(UsageError, match=r"--timeout: .* is too long: at most 8784h \(366 days\)"):
        parse_duration(value, "--timeout")


@pytest.mark.parametrize("value", [float("nan"), -1, True])
def test_odd_numbers_are_refused(value: float) -> None:
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration(value)


def test_huge_lock_timeout_on_the_command_line_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for value in ("99999999999999h", "9" * 400 + "h"):
        args = ("state", "rm", "x", "--state", "s.json", "--lock-timeout", value)
        code, out, err = dfr(capsys, *args)
        assert code == 1 and out == ""
        assert err.startswith("error: --lock-timeout: ") and "is too long" in err, err
        assert "internal error" not in err and len(err.splitlines()) == 1
    code, _, err = dfr(capsys, "refresh", "--state", "s.json", "--lock-timeout", "forever")
    assert code == 1 and "--lock-timeout: invalid duration 'forever'" in err


def test_apply_timeouts_are_checked_by_the_same_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = dfr(capsys, "apply", "--timeout", "99999999999999h", "--auto-approve")
    assert code == 1 and "--timeout: '99999999999999h' is too long" in err
    code, _, err = dfr(capsys, "apply", "--poll-interval", "9" * 400, "--auto-approve")
    assert code == 1 and "--poll-interval: " in err and "is too long" in err
    assert "internal error" not in err


def test_dfr_yaml_durations_over_the_limit_are_located_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "dfr.yaml").write_text("poll_interval: 30s\ntimeout: 99999999999999h\n")
    code, _, err = dfr(capsys, "validate")
    assert code == 1, err
    assert "dfr.yaml:2:10: error: timeout: '99999999999999h' is too long" in err
    (tmp_path / "dfr.yaml").write_text("timeout: 1.0e+30\n")
    code, _, err = dfr(capsys, "status")
    assert code == 1 and "dfr.yaml:1:10: error: timeout: " in err and "is too long" in err
    assert "internal error" not in err
