"""Store operations beyond put and remove (`move`, `set_policy`) on the file backend.

What they mean on every backend is in `tests/state/test_contract.py`; here, the
file backend's own promises: a move or a policy change is one journal line,
replayed after a crash and dropped whole when torn (a move never leaves the run
under both names or neither), and any sequence of changes reads back as a plain
dict given the same changes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from state_records import policy, sample

from reconciler.errors import StateCorruptError
from reconciler.state.local import LocalBackend

POLICY = policy()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "dfr.state.json"


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


def _crashed_policy(path: Path) -> bytes:
    """PATH with run a (serial 1) and the journal of a policy change, as a kill leaves them."""
    b = LocalBackend(path)
    with b.lock("test") as store:
        store.put(sample("a"))
    snapshot = path.read_bytes()
    with b.lock("apply") as store:
        store.set_policy(POLICY)
        journal = _journal(path).read_bytes()
    path.write_bytes(snapshot)
    _journal(path).write_bytes(journal)
    return journal


def test_a_policy_change_is_one_journal_line_replayed_after_a_crash(path: Path) -> None:
    journal = _crashed_policy(path)
    (line,) = [json.loads(x) for x in journal.splitlines()]
    assert set(line) == {"lineage", "op", "policy", "serial"} and line["op"] == "policy"
    assert line["policy"]["settings"] == POLICY.settings
    s = LocalBackend(path).read()
    assert s.serial == 2 and s.policy == POLICY and set(s.runs) == {"a"}
    with LocalBackend(path).lock("test") as store:
        assert store.state == s
    assert json.loads(path.read_text())["policy"]["sha256"] == POLICY.sha256


@pytest.mark.parametrize("cut", [1, 30, -2])
def test_a_torn_policy_line_leaves_the_policy_as_it_was(path: Path, cut: int) -> None:
    journal = _crashed_policy(path)
    _journal(path).write_bytes(journal[:cut])
    s = LocalBackend(path).read()
    assert s.serial == 1 and s.policy is None


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda line: {**line, "name": "a"}, r"journal:1: name: a policy change names no run"),
        (
            lambda line: {**line, "policy": {**line["policy"], "sha256": "0" * 64}},
            r"journal:1: policy.sha256: does not match the settings",
        ),
        (
            lambda line: {**line, "policy": {**line["policy"], "settings": {"max_runs": 1}}},
            r"journal:1: policy.settings: unknown field 'max_runs'",
        ),
        (lambda line: {k: v for k, v in line.items() if k != "policy"}, r"journal:1: policy"),
    ],
    ids=["with-name", "wrong-sha", "unknown-limit", "no-policy"],
)
def test_a_bad_policy_line_is_corruption_naming_the_line(
    path: Path, edit: Callable[[dict[str, Any]], dict[str, Any]], problem: str
) -> None:
    journal = _crashed_policy(path)
    _journal(path).write_text(json.dumps(edit(json.loads(journal))) + "\n")
    with pytest.raises(StateCorruptError, match=problem):
        LocalBackend(path).read()


# --------------------------------------------------------------------------- a model


NAMES = ("a", "b", "c", "d")
#: (operation, i, j): a put of NAMES[i]; a remove of the i-th recorded name; a move of
#: the i-th recorded name to the j-th free one (skipped when there is none); a policy
#: with limit i (none for 0).
ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "remove", "move", "policy"]),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    max_size=12,
)
POLICIES = [None, *(policy(limit) for limit in (1, 2, 3))]


@settings(max_examples=60)
@example(ops=[("put", 0, 0), ("move", 0, 0)], crash=True)
@given(ops=ops, crash=st.booleans())
def test_any_sequence_of_state_changes_matches_a_plain_dict(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int, int]], crash: bool
) -> None:
    """What the file backend holds, read live, after a crash (journal replay) or after a
    clean release (checkpoint), is what a dict given the same operations holds."""
    folder = tmp_path_factory.mktemp("model")
    path = folder / "dfr.state.json"
    backend = LocalBackend(path)
    model: dict[str, str | None] = {}  # name -> run id
    in_force = None
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
            elif op == "policy":
                store.set_policy(POLICIES[i])
                in_force = POLICIES[i]
            else:
                continue
            changes += 1
            live = backend.read()
            assert {n: r.run_id for n, r in live.runs.items()} == model
            assert live.policy == in_force
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
    assert state.policy == in_force and state.serial == changes
    for p in folder.iterdir():
        os.unlink(p)


def test_a_migration_compares_and_copies_the_policy_too(tmp_path: Path) -> None:
    from reconciler.state.migrate import migrate, same_contents

    source = LocalBackend(tmp_path / "a.json")
    with source.lock("test") as store:
        store.put(sample("a"))
        store.set_policy(POLICY)
    state = source.read()
    assert not same_contents(state, dataclasses.replace(state, policy=None))
    migrate(source, LocalBackend(tmp_path / "b.json"))
    assert LocalBackend(tmp_path / "b.json").read().policy == POLICY
