"""One contract for every state backend's Store operations, as Terraform's `statemgr.TestFull`.

Each function takes a fresh `Backend` (nothing written yet) and checks one
operation's promise through the public interface only: what a Store holds, what
another reader sees the moment the call returns, and how the serial moves.
`tests/unit/test_state_ops.py` runs them on the in-memory and file backends,
`tests/postgres/test_state_ops.py` on a real PostgreSQL workspace.
"""

from __future__ import annotations

import dataclasses

import pytest

from reconciler.errors import StateError
from reconciler.state.backend import Backend
from reconciler.state.model import Intent, PolicyRecord, RunRecord, State


def sample(name: str, run_id: str | None = "run-1", **fields: object) -> RunRecord:
    """A record with every kind of field set, so a move that drops one is seen."""
    values: dict[str, object] = {
        "run_id": run_id,
        "status": "SUCCEEDED",
        "labels": {"team": "x"},
        "attempts": 2,
        "previous_run_ids": ["run-0"],
        "used": {"spec_version": 2, "number_of_samples": 10},
        "source": "manifests/a.yaml",
        "api": "http://127.0.0.1:9",
        "total_cost": 1.5,
        "samples_completed": 10,
        **fields,
    }
    return RunRecord.new(
        name,
        spec={"spec_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "number_of_samples": 10},
        now="2026-01-01T00:00:00.000Z",
        **values,
    )


def move_keeps_the_run_under_the_new_name(backend: Backend) -> None:
    intent = Intent.new({"number_of_samples": 10}, at="2026-01-01T00:00:00.000Z")
    with backend.lock("test") as store:
        store.put_many([sample("old"), sample("other", "run-9"), sample("pending", None)])
        store.put(dataclasses.replace(sample("pending", None), intent=intent))
        before = store.state
        store.move("old", "new")
        # One change, durable on return: another reader sees it now.
        seen = backend.read()
        assert seen.serial == before.serial + 1 == store.state.serial
        assert set(seen.runs) == {"new", "other", "pending"}
        assert seen.runs["new"] == dataclasses.replace(before.runs["old"], name="new")
        assert seen.runs["other"] == before.runs["other"]
        assert store.get("old") is None and store.get("new") == seen.runs["new"]
        # An unconfirmed submission keeps its intent under the new name.
        store.move("pending", "renamed")
        assert backend.read().runs["renamed"].intent == intent
    after = backend.read()
    assert after.serial == before.serial + 2 and after.lineage == before.lineage
    assert set(after.runs) == {"new", "other", "renamed"}
    with backend.lock("test") as store:  # and back again: a name freed by a move is free
        store.move("new", "old")
    assert backend.read().runs["old"] == before.runs["old"]


def move_refuses_an_unknown_or_taken_name_without_a_change(backend: Backend) -> None:
    with backend.lock("test") as store:
        store.put_many([sample("a"), sample("b", "run-2")])
        before = store.state
        with pytest.raises(StateError, match=r"no run named 'nobody'"):
            store.move("nobody", "c")
        with pytest.raises(StateError, match=r"already has a run named 'b'"):
            store.move("a", "b")
        with pytest.raises(StateError, match=r"already has a run named 'a'"):
            store.move("a", "a")
        # A refused move is not a failed write: the session goes on.
        assert store.state == before and backend.read() == before
        store.move("a", "c")
    assert set(backend.read().runs) == {"b", "c"}


def policy(limit: int = 1000) -> PolicyRecord:
    return PolicyRecord.new(
        {"max_samples_per_run": limit, "allowed_models": ["a/m-1", "b/m-2"]},
        by="ana@ci-7 (pid 42)",
        source="dfr.yaml",
    )


def set_policy_is_one_change_read_back_whole(backend: Backend) -> None:
    strict, loose = policy(), policy(5000)
    assert backend.read().policy is None
    with backend.lock("test") as store:
        store.set_policy(strict)  # the first change of a state may be its policy
        assert backend.read().policy == strict == store.state.policy
        assert backend.read().serial == 1
        store.put(sample("a"))
        store.set_policy(loose)
        seen = backend.read()
        assert seen.serial == 3 and seen.policy == loose and set(seen.runs) == {"a"}
    # Kept across sessions and their checkpoints, and by writes of runs.
    with backend.lock("test") as store:
        assert store.state.policy == loose
        store.put(sample("b", "run-2"))
        store.move("b", "c")
        store.remove("c")
    after = backend.read()
    assert after.policy == loose and after.serial == 6
    with backend.lock("test") as store:
        store.set_policy(None)  # no policy in force any more
    assert backend.read().policy is None and backend.read().serial == 7


def overwrite_carries_the_policy(backend: Backend) -> None:
    """`dfr state migrate` copies the policy in force with the runs."""
    source = State(2, 9, "lineage-1", {"a": sample("a")}, policy=policy())
    with backend.lock("test") as store:
        store.overwrite(source)  # type: ignore[attr-defined]
        assert store.state == source
    assert backend.read() == source
    with backend.lock("test") as store:
        store.overwrite(dataclasses.replace(source, serial=10, policy=None))  # type: ignore[attr-defined]
    assert backend.read().policy is None


POLICY_CONTRACT = (set_policy_is_one_change_read_back_whole, overwrite_carries_the_policy)

MOVE_CONTRACT = (
    move_keeps_the_run_under_the_new_name,
    move_refuses_an_unknown_or_taken_name_without_a_change,
)
