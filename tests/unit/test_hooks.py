"""The crash-point seam: inert in dfr, armed only by the tests' own entry point."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from support.crashing_dfr import CrashPoint, split
from support.emulators import posts
from support.runner import apply_args, dfr_process
from support.workspace import Workspace

from dfr_emulator import Emulator
from reconciler import hooks


@pytest.fixture(autouse=True)
def _no_callbacks_left() -> Iterator[None]:
    yield
    hooks.clear()


def test_a_point_without_callbacks_does_nothing() -> None:
    hooks.hit("before-post", lambda: pytest.fail("a half-done step ran with no callback"))


def test_callbacks_see_each_pass_of_their_point_only() -> None:
    seen: list[tuple[str, bool]] = []
    hooks.register("after-post", lambda point, half: seen.append((point, half is not None)))
    hooks.hit("after-post")
    hooks.hit("before-post")
    hooks.hit("after-post", lambda: None)
    assert seen == [("after-post", False), ("after-post", True)]
    hooks.clear()
    hooks.hit("after-post")
    assert len(seen) == 2


def test_dfr_reads_no_crash_variable(emu: Emulator, ws: Workspace) -> None:
    """`python -m reconciler` ignores DFR_TEST_CRASH_AT (testhooks.py used to SIGKILL)."""
    ws.write("alpha")
    env = ws.env({"DFR_TEST_CRASH_AT": "before-post:1"})
    result = dfr_process(*apply_args("--no-wait", "manifests"), env=env, cwd=ws.root)
    assert result.code == 0, result.text
    assert posts(emu) == 1


@pytest.mark.parametrize(
    ("spec", "point"),
    [
        ("after-post:3", CrashPoint("after-post", 3)),
        ("checkpoint-replaced:1:SIGTERM", CrashPoint("checkpoint-replaced", 1, signal.SIGTERM)),
    ],
)
def test_crash_points_are_read_as_point_pass_and_signal(spec: str, point: CrashPoint) -> None:
    parsed = CrashPoint.parse(spec)
    assert (parsed.point, parsed.at, parsed.signum) == (point.point, point.at, point.signum)


@pytest.mark.parametrize("spec", ["after-post", "after-post:0", "after-post:x", "a:1:SIGNOPE"])
def test_a_bad_crash_point_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="crash point"):
        CrashPoint.parse(spec)


def test_the_crash_point_comes_from_the_arguments_or_else_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DFR_TEST_CRASH_AT", "wait-round:2")
    assert split(["--crash-at", "after-post:1", "apply"]) == ("after-post:1", ["apply"])
    assert split(["--crash-at=after-post:1", "apply"]) == ("after-post:1", ["apply"])
    assert split(["apply"]) == ("wait-round:2", ["apply"])
    monkeypatch.delenv("DFR_TEST_CRASH_AT")
    assert split(["apply"]) == (None, ["apply"])


def test_a_crash_point_signals_at_its_pass_after_the_half_done_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[int] = []
    monkeypatch.setattr("os.kill", lambda pid, signum: sent.append(signum))
    done: list[str] = []
    crash = CrashPoint("journal-torn", 2, signal.SIGTERM)
    hooks.register("journal-torn", crash)
    hooks.hit("journal-torn", lambda: done.append("first half"))
    assert (sent, done) == ([], [])
    hooks.hit("journal-torn", lambda: done.append("second half"))
    assert (sent, done) == ([signal.SIGTERM], ["second half"])
    hooks.hit("journal-torn")
    assert sent == [signal.SIGTERM]
