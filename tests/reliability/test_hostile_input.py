"""Hostile input beyond manifests: broken state files, edited plans, odd folders, fuzzing.

Every command meets the damage the same way: a clear one-line error naming
what is wrong (and the backup, for state), exit 1, and not one byte of any
file changed. The fuzz tests feed the state reader (snapshot and journal,
through `LocalBackend`) and the saved-plan loader arbitrary bytes: only our
`DfrError`s may come out. Crashing inputs found are kept as `@example`s.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reliability_harness import assert_no_traceback
from support.emulators import KEY
from support.runner import dfr_process, in_process
from support.workspace import manifest_text

from dfr_emulator import SPEC_SUPPORT_TICKETS
from reconciler import planfile
from reconciler.errors import DfrError, StateCorruptError, StateVersionError
from reconciler.state.local import LocalBackend
from reconciler.state.model import Intent, RunRecord

#: Loopback port 9 (discard): nothing listens; any attempt to connect fails fast.
NOWHERE = "http://127.0.0.1:9"

Run = Callable[..., tuple[int, str]]


@pytest.fixture
def dfr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """`dfr ARGS` in this process, in tmp_path, with an API that is nowhere: code, output."""
    monkeypatch.chdir(tmp_path)
    for name in ("DFR_STATE", "DFR_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATAFRAMER_API_KEY", KEY)
    monkeypatch.setenv("DATAFRAMER_BASE_URL", NOWHERE)

    def runner(*args: str) -> tuple[int, str]:
        result = in_process(args, capsys, secrets=())
        return result.code, result.text

    return runner


def _write_manifests(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"m{i}.yaml").write_text(manifest_text(f"run-{i}", samples=i + 1, version=None))


def _make_state(path: Path) -> None:
    """A state with a snapshot, a backup (two checkpoints) and one recorded run."""
    backend = LocalBackend(path)
    body = {"spec_id": SPEC_SUPPORT_TICKETS, "number_of_samples": 1}
    with backend.lock("test") as store:
        store.put(RunRecord.new("run-0", spec=body, intent=Intent.new(body)))
    with backend.lock("test") as store:
        record = store.state.runs["run-0"]
        store.put(record.evolve(intent=None, run_id="r-0", status="SUCCEEDED"))
    assert (path.parent / (path.name + ".backup")).exists()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _future(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["format_version"] = 99
    return json.dumps(doc).encode()


def _wrong_type(data: bytes) -> bytes:
    doc = json.loads(data)
    doc["runs"]["run-0"]["run_id"] = 12345
    return json.dumps(doc).encode()


STATE_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncate,
    "empty": lambda _d: b"",
    "garbage": lambda _d: b"\x00\xff\xfe garbage \x80",
    "not-an-object": lambda _d: b"[1, 2, 3]\n",
    "wrong-field-type": _wrong_type,
    "future-version": _future,
    "nan-serial": lambda d: d.replace(b'"serial": ', b'"serial": NaN, "x": ', 1),
    "deep-nesting": lambda _d: b"[" * 100_000,
}

COMMANDS = [
    ("plan",),
    ("apply", "--auto-approve"),
    ("status",),
    ("refresh",),
    ("state", "list"),
    ("state", "rm", "run-0"),
    ("import", "run-0", "r-1"),
]


@pytest.mark.parametrize("damage", sorted(STATE_DAMAGE))
def test_damaged_state_is_refused_and_never_overwritten(
    tmp_path: Path, dfr: Run, damage: str
) -> None:
    _write_manifests(tmp_path / "manifests", 2)
    state = tmp_path / "dfr.state.json"
    _make_state(state)
    state.write_bytes(STATE_DAMAGE[damage](state.read_bytes()))
    before = _snapshot(tmp_path)
    for command in COMMANDS:
        paths = [] if command[0] in ("status", "refresh", "state") else ["manifests"]
        code, text = dfr(*command, "--state", str(state), *paths)
        assert code == 1, (command, text)
        lines = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(lines) == 1, (command, text)
        if damage == "future-version":
            assert "newer" in text or "version" in text, text
        else:
            assert "dfr.state.json.backup" in text, (command, text)
        assert _snapshot(tmp_path) == before, f"{command} changed a file"


def test_damaged_journal_is_refused_naming_the_backup(tmp_path: Path, dfr: Run) -> None:
    state = tmp_path / "dfr.state.json"
    _make_state(state)
    journal = tmp_path / "dfr.state.json.journal"
    line = {"lineage": "x", "name": "a", "op": "put", "record": None, "serial": 99}
    journal.write_bytes(b"{broken\n" + json.dumps(line).encode() + b"\n")
    before = _snapshot(tmp_path)
    code, text = dfr("state", "list", "--state", str(state))
    assert code == 1 and "dfr.state.json.backup" in text, text
    assert _snapshot(tmp_path) == before


def test_future_state_version_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "dfr.state.json"
    _make_state(state)
    state.write_bytes(_future(state.read_bytes()))
    with pytest.raises(StateVersionError):
        LocalBackend(state).read()


def test_hand_edited_saved_plan_is_refused(tmp_path: Path, dfr: Run) -> None:
    _write_manifests(tmp_path / "manifests", 2)
    code, text = dfr("plan", "manifests", "--out", "plan.json")
    assert code == 0, text
    assert (tmp_path / "plan.json").stat().st_mode & 0o777 == 0o600
    doc = json.loads((tmp_path / "plan.json").read_text())
    text_plan = json.dumps(doc).replace('"number_of_samples": 1', '"number_of_samples": 100000')
    assert text_plan != json.dumps(doc)
    (tmp_path / "plan.json").write_text(text_plan)
    before = _snapshot(tmp_path)
    code, text = dfr("apply", "plan.json")
    assert code == 1 and "modified" in text, text
    assert _snapshot(tmp_path) == before
    # A plan whose marker is kept but whose body is gone is refused too.
    (tmp_path / "plan.json").write_text('{"dfr_saved_plan": 1}')
    code, text = dfr("apply", "plan.json")
    assert code == 1, text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_directory_is_an_error_not_a_skip(tmp_path: Path, dfr: Run) -> None:
    _write_manifests(tmp_path / "manifests" / "locked", 1)
    locked = tmp_path / "manifests" / "locked"
    locked.chmod(0)
    try:
        code, text = dfr("validate", "manifests")
    finally:
        locked.chmod(0o755)
    assert code == 1 and "locked" in text, text


def test_symlink_loops_in_a_manifest_folder(tmp_path: Path, dfr: Run) -> None:
    folder = tmp_path / "manifests"
    _write_manifests(folder, 2)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)
    (folder / "self.yaml").symlink_to(folder / "self.yaml")
    (folder / "a.yaml").symlink_to(folder / "b.yaml")
    (folder / "b.yaml").symlink_to(folder / "a.yaml")
    started = time.monotonic()
    code, text = dfr("validate", "manifests")
    assert time.monotonic() - started < 10
    # The two real manifests are read once each (a loop never duplicates them).
    assert code in (0, 1), text
    assert "duplicate" not in text.lower(), text
    code, text = dfr("plan", "manifests")
    assert code in (0, 1), text


def test_five_thousand_manifests(tmp_path: Path, dfr: Run) -> None:
    _write_manifests(tmp_path / "manifests", 5000)
    started = time.monotonic()
    code, text = dfr("validate", "manifests")
    assert code == 0, text[-500:]
    code, text = dfr("plan", "--detailed-exitcode", "manifests")
    assert code == 2, text[-500:]
    assert "5000 to create" in text
    assert time.monotonic() - started < 60


# -- fuzzing --------------------------------------------------------------------------

_VALID_LINE = json.dumps(
    {
        "lineage": "l",
        "name": "a",
        "op": "put",
        "record": {"name": "a", "updated_at": "2026-01-01T00:00:00Z"},
        "serial": 1,
    },
    sort_keys=True,
).encode()

journal_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [
                _VALID_LINE,
                _VALID_LINE.replace(b'"serial": 1', b'"serial": 2'),
                _VALID_LINE.replace(b'"put"', b'"remove"'),
                b'{"lineage": "l"}',
                b"[]",
                b"null",
                b'{"serial": 1e999}',
                b"\xff\xfe",
                b"",
            ]
        ),
        max_size=6,
    ).map(b"\n".join),
)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")


def _reset(folder: Path) -> Path:
    for p in folder.iterdir():
        p.unlink()
    return folder / "dfr.state.json"


@settings(max_examples=150)
@given(snapshot=st.one_of(st.none(), st.binary(max_size=400)), journal=journal_bytes)
@example(snapshot=None, journal=_VALID_LINE + b"\n" + _VALID_LINE)
@example(snapshot=b'{"format_version": 1}', journal=b"{")
@example(snapshot=None, journal=b'{"serial": 1e999}')
def test_fuzz_local_backend_reader(fuzz_dir: Path, snapshot: bytes | None, journal: bytes) -> None:
    path = _reset(fuzz_dir)
    if snapshot is not None:
        path.write_bytes(snapshot)
    if journal:
        (fuzz_dir / "dfr.state.json.journal").write_bytes(journal)
    before = _snapshot(fuzz_dir)
    backend = LocalBackend(path)
    with contextlib.suppress(DfrError):
        backend.read()
    # Opening a write session on a bad state must raise before writing anything.
    try:
        with backend.lock("fuzz"):
            pass
    except DfrError as exc:
        assert isinstance(exc, (StateCorruptError, StateVersionError)), exc
        after = {k: v for k, v in _snapshot(fuzz_dir).items() if not k.endswith(".lock")}
        assert after == {k: v for k, v in before.items() if not k.endswith(".lock")}


@settings(max_examples=150)
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
@example(data=b'{"dfr_saved_plan": 1}')
@example(data=b'{"dfr_saved_plan": 1, "checksum": null}')
@example(data=b'{"dfr_saved_plan": [1]}')
@example(data=b'{"dfr_saved_plan": 1e999}')
@example(data=b"[" * 10_000)  # found by this test: RecursionError escaped planfile.load
@example(data=b'{"dfr_saved_plan": 1, "x": ' + b"[" * 10_000)
def test_fuzz_saved_plan_loader(fuzz_dir: Path, data: bytes) -> None:
    path = fuzz_dir / "plan.json"
    path.write_bytes(data)
    with contextlib.suppress(DfrError):
        planfile.load(str(path))


def _signed(document: dict[str, object]) -> bytes:
    document = dict(document)
    document["checksum"] = planfile._checksum(document)
    return json.dumps(document).encode()


@settings(max_examples=150)
@given(
    body=st.dictionaries(
        st.sampled_from(["paths", "cwd", "state", "manifests_digest", "options", "plan", "extra"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["lineage", "serial", "replace", "prune", "x"]),
                    inner,
                    max_size=3,
                )
            ),
            max_leaves=8,
        ),
    )
)
@example(body={"paths": 5, "cwd": "/", "state": {}, "options": {}, "plan": {}})
@example(
    body={
        "paths": [],
        "cwd": "/",
        "state": {"lineage": "l", "serial": "x"},
        "manifests_digest": "d",
        "options": {"replace": [], "prune": False},
        "plan": [],
    }
)
def test_fuzz_signed_saved_plan_fields(fuzz_dir: Path, body: dict[str, object]) -> None:
    """A plan with a valid checksum but fields of any shape: still only a PlanError."""
    path = fuzz_dir / "signed.json"
    path.write_bytes(_signed({planfile.MARKER: planfile.FORMAT, **body}))
    with contextlib.suppress(DfrError):
        planfile.load(str(path))


def _dfr_process(cwd: Path, *args: str) -> tuple[int, str]:
    """`python -m reconciler ARGS` with a deadline: a hang fails the test instead of stalling it."""
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("DFR_STATE", "DFR_DEBUG")}
    env.update(DATAFRAMER_API_KEY=KEY, DATAFRAMER_BASE_URL=NOWHERE)
    try:
        result = dfr_process(*args, env=env, cwd=cwd, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"dfr {' '.join(args)} hung")
    assert_no_traceback([result.text])
    return result.code, result.text


@pytest.mark.parametrize("command", ["validate", "plan", "fmt"])
def test_a_fifo_in_a_manifest_folder_is_skipped_with_a_warning(
    tmp_path: Path, command: str
) -> None:
    """A FIFO named x.yaml used to hang validate and plan forever (open() waits for a writer)."""
    _write_manifests(tmp_path / "manifests", 1)
    os.mkfifo(tmp_path / "manifests" / "x.yaml")
    code, text = _dfr_process(tmp_path, command, "manifests")
    assert code == 0, text
    assert "manifests/x.yaml:1:1: warning: not a regular file (a FIFO); skipped" in text, text


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_a_writerless_fifo_or_a_device_named_on_the_command_line_is_an_error(
    tmp_path: Path, command: str
) -> None:
    """A pipe named on the command line is read while something writes to it
    (`dfr validate /dev/stdin`, `<(...)`); one that nothing writes to is an error."""
    os.mkfifo(tmp_path / "x.yaml")
    code, text = _dfr_process(tmp_path, command, "x.yaml", "/dev/null")
    assert code == 1, text
    assert "x.yaml:1:1: error: not a regular file (a FIFO) and nothing writes to it" in text
    assert "/dev/null:1:1: error: not a regular file (a character device)" in text, text


def test_a_fifo_named_on_the_command_line_is_read_while_written_to(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "piped.yaml"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "w") as pipe:  # blocks until dfr opens the other end
            time.sleep(0.2)  # dfr sees a writer but no data yet, and waits
            pipe.write(manifest_text("piped", samples=0, version=None))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    code, text = _dfr_process(tmp_path, "validate", "piped.yaml")
    thread.join(5)
    assert code == 1, text
    assert "piped.yaml:7:22: error: spec.number_of_samples must be at least 1, not 0" in text


def test_a_symlink_to_a_device_in_a_folder_is_skipped(tmp_path: Path, dfr: Run) -> None:
    _write_manifests(tmp_path / "manifests", 1)
    (tmp_path / "manifests" / "zero.yaml").symlink_to("/dev/zero")
    code, text = dfr("validate", "manifests")
    assert code == 0, text
    assert "zero.yaml:1:1: warning: not a regular file (a character device); skipped" in text


def test_a_fifo_that_replaced_a_file_after_discovery_does_not_block_the_read(
    tmp_path: Path,
) -> None:
    from reconciler.manifests import SourceFile, read_bytes

    fifo = tmp_path / "late.yaml"
    os.mkfifo(fifo)
    data, problem = read_bytes(SourceFile(fifo, "late.yaml", explicit=False))
    assert data is None and problem is not None
    assert (problem.severity, problem.message) == (
        "warning",
        "not a regular file (a FIFO); skipped",
    )
    data, problem = read_bytes(SourceFile(fifo, "late.yaml", explicit=True))
    assert problem is not None and problem.severity == "error"
