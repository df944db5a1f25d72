"""Store operations beyond put and remove (`move`), on the in-memory and file backends.

The shared contract (`tests/state_contract.py`) runs here on both; the file
backend's own promises follow: a move is one journal line, replayed after a
crash, dropped whole when torn, and never leaves the run under both names or
neither.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from state_contract import MOVE_CONTRACT, sample

from reconciler.errors import StateCorruptError
from reconciler.state.backend import Backend, InMemoryBackend
from reconciler.state.local import LocalBackend

Contract = Callable[[Backend], None]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "dfr.state.json"


@pytest.mark.parametrize("check", MOVE_CONTRACT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("kind", ["memory", "file"])
def test_move_contract(check: Contract, kind: str, path: Path) -> None:
    check(InMemoryBackend() if kind == "memory" else LocalBackend(path))


def _journal(path: Path) -> Path:
    return Path(str(path) + ".journal")


def _crashed_move(path: Path) -> tuple[bytes, bytes]:
    """PATH with runs a and b (serial 2) and the journal of `move a c`, as a kill leaves them."""
    b = LocalBackend(path)
    with b.lock("test") as store:
        store.put_many([sample("a"), sample("b", "run-2")])
    snapshot = path.read_bytes()
    with b.lock("state mv") as store:
        store.move("a", "c")
        journal = _journal(path).read_bytes()
    path.write_bytes(snapshot)
    _journal(path).write_bytes(journal)
    return snapshot, journal


def test_a_move_is_one_journal_line_naming_both_keys(path: Path) -> None:
    _, journal = _crashed_move(path)
    lines = [json.loads(line) for line in journal.splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert (line["op"], line["name"], line["serial"]) == ("move", "a", 3)
    assert line["record"]["name"] == "c" and line["record"]["run_id"] == "run-1"


def test_a_move_in_the_journal_is_replayed_after_a_crash(path: Path) -> None:
    _crashed_move(path)
    s = LocalBackend(path).read()
    assert s.serial == 3 and set(s.runs) == {"b", "c"} and s.runs["c"].run_id == "run-1"
    with LocalBackend(path).lock("test") as store:  # folded into the snapshot first
        assert store.state == s
        assert not _journal(path).exists()
    assert LocalBackend(path).read() == s


@pytest.mark.parametrize("cut", [1, 20, -40, -2])
def test_a_torn_move_line_leaves_the_run_under_its_old_name(path: Path, cut: int) -> None:
    _, journal = _crashed_move(path)
    _journal(path).write_bytes(journal[:cut])
    s = LocalBackend(path).read()
    assert s.serial == 2 and set(s.runs) == {"a", "b"} and s.runs["a"].run_id == "run-1"
    with LocalBackend(path).lock("test") as store:
        store.move("a", "c")
    assert set(LocalBackend(path).read().runs) == {"b", "c"}


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda line: {**line, "name": "nobody"}, r"journal:1: name: 'nobody' is not in the state"),
        (
            lambda line: {**line, "record": {**line["record"], "name": "b"}},
            r"journal:1: record.name: 'b' is already in the state",
        ),
        (
            lambda line: {**line, "record": {**line["record"], "name": "a"}},
            r"journal:1: record.name: 'a' is already in the state",
        ),
        (lambda line: {k: v for k, v in line.items() if k != "record"}, r"record"),
    ],
    ids=["unknown-old", "taken-new", "same-name", "no-record"],
)
def test_an_impossible_move_line_is_corruption_naming_the_line(
    path: Path, edit: Callable[[dict[str, Any]], dict[str, Any]], problem: str
) -> None:
    _, journal = _crashed_move(path)
    line = edit(json.loads(journal))
    _journal(path).write_text(json.dumps(line) + "\n")
    with pytest.raises(StateCorruptError, match=problem):
        LocalBackend(path).read()


# --------------------------------------------------------------------------- a model


NAMES = ("a", "b", "c", "d")
#: (operation, i, j): a put of NAMES[i]; a remove of the i-th recorded name; a move of
#: the i-th recorded name to the j-th free one (skipped when there is none).
ops = st.lists(
    st.tuples(st.sampled_from(["put", "remove", "move"]), st.integers(0, 3), st.integers(0, 3)),
    max_size=12,
)


@settings(max_examples=60)
@example(ops=[("put", 0, 0), ("move", 0, 0)], crash=True)
@given(ops=ops, crash=st.booleans())
def test_any_sequence_of_puts_removes_and_moves_matches_a_plain_dict(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int]], crash: bool
) -> None:
    """What the file backend holds, read live, after a crash (journal replay) or after a
    clean release (checkpoint), is what a dict given the same operations holds."""
    folder = tmp_path_factory.mktemp("model")
    path = folder / "dfr.state.json"
    backend = LocalBackend(path)
    model: dict[str, str | None] = {}  # name -> run id
    changes = 0
    with backend.lock("test") as store:
        for k, (op, i, j) in enumerate(ops):
            present = sorted(model)
            free = [n for n in NAMES if n not in model]
            if op == "put":
                store.put(sample(NAMES[i], f"run-{k}"))
                model[NAMES[i]] = f"run-{k}"
            elif op == "remove" and present:
                store.remove(present[i % len(present)])
                del model[present[i % len(present)]]
            elif op == "move" and present and free:
                old, new = present[i % len(present)], free[j % len(free)]
                store.move(old, new)
                model[new] = model.pop(old)
            else:
                continue
            changes += 1
            assert {n: r.run_id for n, r in backend.read().runs.items()} == model
        journal = _journal(path).read_bytes() if _journal(path).exists() else None
        snapshot = path.read_bytes() if path.exists() else None
    if crash:  # the files as a kill before the release would have left them
        for p, data in ((path, snapshot), (_journal(path), journal)):
            if data is None:
                p.unlink(missing_ok=True)
            else:
                p.write_bytes(data)
        Path(str(path) + ".backup").unlink(missing_ok=True)
    state = LocalBackend(path).read()
    assert {n: r.run_id for n, r in state.runs.items()} == model
    assert all(r.name == n for n, r in state.runs.items())
    assert state.serial == changes
    for p in folder.iterdir():
        os.unlink(p)
