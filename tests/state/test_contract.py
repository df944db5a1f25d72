"""The one contract of every state backend, as Terraform's `statemgr.TestFull`.

Each test runs on the in-memory, file and PostgreSQL backends (`subject`), or on
the file and PostgreSQL ones where the promise is about stored bytes (`persistent`:
corruption, a newer dfr), through the public interface only: what a Store holds,
what another reader sees the moment a call returns, how the serial moves, who a
lock error names, what force-unlock may do, how a moved state refuses. The
promises about holders in other processes are `test_contract_processes.py`. What
only one backend has (journal lines, advisory locks, migrations, the fake's knobs)
is tested in that backend's own files; `state_subjects.py` is the harness that
does to each backend what only a test does.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time

import pytest
from state_records import policy, sample, spec_intent, spec_sample
from state_subjects import Subject, run_threads

from reconciler.errors import StateCorruptError, StateError, StateLockedError, StateVersionError
from reconciler.state.backend import Backend, Moved, StateMovedError, Store
from reconciler.state.local import LocalBackend
from reconciler.state.model import FORMAT_VERSION, Intent, State

# --------------------------------------------------------------------------- reading and writing


def test_a_state_never_written_reads_empty_and_a_session_writes_nothing(subject: Subject) -> None:
    backend = subject.backend
    assert isinstance(backend, Backend) and backend.describe() == subject.name
    first = backend.read()
    assert (first.serial, first.runs, first.policy) == (0, {}, None)
    with backend.lock("plan") as store:
        assert isinstance(store, Store)
        assert store.state.runs == {} and store.state.serial == 0
        store.put_many([])  # an empty batch is no change
        assert store.state.serial == 0
    # Nothing was stored: an empty state gets a fresh lineage on every read.
    again = subject.open().read()
    assert again.serial == 0 and again.runs == {} and again.lineage != first.lineage
    assert subject.writes() in (None, 0)


def test_changes_are_durable_on_return_one_serial_each_and_outlive_the_session(
    subject: Subject,
) -> None:
    intent = Intent.new({"spec_id": "s", "number_of_samples": 10})
    odd = sample("c", last_error={"message": "NUL \x00 and \u2603"}, total_cost=0.1)
    with subject.backend.lock("apply") as store:
        lineage = store.state.lineage
        store.put(sample("a", None, intent=intent))
        assert store.state.serial == 1
        store.put(sample("b", status="IN_PROGRESS"))
        # Durable on return: another reader sees it before the session ends.
        assert subject.open().read().runs["b"].status == "PROCESSING"
        store.put(odd)
        store.put(sample("a", "run-a"))
        store.remove("b")
        assert store.state.serial == 5
        assert store.get("a") == sample("a", "run-a") and store.get("b") is None
        assert subject.open().read() == store.state
    after = subject.open().read()
    assert (after.serial, after.lineage) == (5, lineage) and set(after.runs) == {"a", "c"}
    assert after.runs["a"] == sample("a", "run-a") and after.runs["c"] == odd
    # A second session goes on with the same lineage and numbering.
    with subject.open().lock("apply") as store:
        assert store.state == after
        store.put(sample("d", None, intent=intent))
    last = subject.open().read()
    assert (last.serial, last.lineage) == (6, lineage) and last.runs["d"].intent == intent


def test_put_many_is_one_durable_batch_numbered_like_single_puts(subject: Subject) -> None:
    with subject.backend.lock("apply") as store:
        store.put(sample("first"))
        store.put_many([sample(f"r{i}", f"run-{i}") for i in range(50)])
        assert store.state.serial == 51
        # Durable before the lock is released: what a crash now would keep.
        seen = subject.open().read()
        assert seen.serial == 51 and len(seen.runs) == 51
        assert seen.runs["r7"] == sample("r7", "run-7")
        store.put_many([sample("x", "run-x1"), sample("x", "run-x2")])  # the last one stays
        assert store.state.serial == 53
    assert subject.open().read().runs["x"] == sample("x", "run-x2")
    assert subject.writes() in (None, 53)


def test_refused_changes_write_nothing_and_the_session_goes_on(subject: Subject) -> None:
    unjson = sample("j")
    object.__setattr__(unjson, "spec", {"x": object()})  # not JSON
    with subject.backend.lock("apply") as store:
        for bad in (float("inf"), float("nan")):
            with pytest.raises(StateError, match="cannot record run 'a'"):
                store.put(sample("a", total_cost=bad))
        with pytest.raises(StateError, match="has no run named 'nope'"):
            store.remove("nope")
        with pytest.raises((StateError, TypeError, ValueError)):
            store.put_many([sample("b"), unjson])  # refused whole, before writing
        assert store.state.serial == 0 and subject.writes() in (None, 0)
        store.put(sample("b"))
        assert store.state.serial == 1
    assert set(subject.open().read().runs) == {"b"} and subject.open().read().serial == 1


def test_a_released_store_refuses_writes(subject: Subject) -> None:
    with subject.backend.lock("apply") as store:
        pass
    with pytest.raises(StateError, match="lock was released"):
        store.put(sample("a"))


def test_threads_put_at_once_and_every_put_lands(subject: Subject) -> None:
    errors: list[BaseException] = []
    with subject.backend.lock("apply") as store:
        store.put(sample("seed"))

        def work(t: int) -> None:
            try:
                for i in range(200):
                    store.put(sample(f"t{t}-{i}", f"run-{i}"))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        run_threads(work, 8)
        assert errors == []
        assert store.state.serial == 1601 and len(store.state.runs) == 1601
        in_memory = store.state
    assert subject.open().read() == in_memory
    assert subject.writes() in (None, 1601)


def test_threads_mixing_put_and_put_many(subject: Subject) -> None:
    errors: list[BaseException] = []
    with subject.backend.lock("apply") as store:

        def work(t: int) -> None:
            try:
                for i in range(20):
                    if i % 2:
                        store.put(sample(f"t{t}-{i}"))
                    else:
                        store.put_many([sample(f"t{t}-{i}-{k}") for k in range(5)])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        run_threads(work, 6)
        assert errors == []
        assert store.state.serial == 6 * (10 + 10 * 5) == len(store.state.runs)
        in_memory = store.state
    assert subject.open().read() == in_memory


# --------------------------------------------------------------------------- move and policy


def test_move_keeps_the_run_under_the_new_name(subject: Subject) -> None:
    intent = Intent.new({"number_of_samples": 10}, at="2026-01-01T00:00:00.000Z")
    with subject.backend.lock("test") as store:
        store.put_many([sample("old"), sample("other", "run-9"), sample("pending", None)])
        store.put(dataclasses.replace(sample("pending", None), intent=intent))
        before = store.state
        store.move("old", "new")
        # One change, durable on return: another reader sees it now.
        seen = subject.open().read()
        assert seen.serial == before.serial + 1 == store.state.serial
        assert set(seen.runs) == {"new", "other", "pending"}
        assert seen.runs["new"] == dataclasses.replace(before.runs["old"], name="new")
        assert seen.runs["other"] == before.runs["other"]
        assert store.get("old") is None and store.get("new") == seen.runs["new"]
        # An unconfirmed submission keeps its intent under the new name.
        store.move("pending", "renamed")
        assert subject.open().read().runs["renamed"].intent == intent
    after = subject.open().read()
    assert after.serial == before.serial + 2 and after.lineage == before.lineage
    assert set(after.runs) == {"new", "other", "renamed"}
    with subject.open().lock("test") as store:  # and back again: a name freed by a move is free
        store.move("new", "old")
    assert subject.open().read().runs["old"] == before.runs["old"]


def test_move_refuses_an_unknown_or_taken_name_without_a_change(subject: Subject) -> None:
    with subject.backend.lock("test") as store:
        store.put_many([sample("a"), sample("b", "run-2")])
        before = store.state
        with pytest.raises(StateError, match=r"no run named 'nobody'"):
            store.move("nobody", "c")
        with pytest.raises(StateError, match=r"already has a run named 'b'"):
            store.move("a", "b")
        with pytest.raises(StateError, match=r"already has a run named 'a'"):
            store.move("a", "a")
        # A refused move is not a failed write: the session goes on.
        assert store.state == before and subject.open().read() == before
        store.move("a", "c")
    assert set(subject.open().read().runs) == {"b", "c"}


def test_set_policy_is_one_change_read_back_whole(subject: Subject) -> None:
    strict, loose = policy(), policy(5000)
    assert subject.backend.read().policy is None
    with subject.backend.lock("test") as store:
        store.set_policy(strict)  # the first change of a state may be its policy
        assert subject.open().read().policy == strict == store.state.policy
        assert subject.open().read().serial == 1
        store.put(sample("a"))
        store.set_policy(loose)
        seen = subject.open().read()
        assert seen.serial == 3 and seen.policy == loose and set(seen.runs) == {"a"}
    # Kept across sessions and their checkpoints, and by writes of runs.
    with subject.open().lock("test") as store:
        assert store.state.policy == loose
        store.put(sample("b", "run-2"))
        store.move("b", "c")
        store.remove("c")
    after = subject.open().read()
    assert after.policy == loose and after.serial == 6
    with subject.open().lock("test") as store:
        store.set_policy(None)  # no policy in force any more
    assert subject.open().read().policy is None and subject.open().read().serial == 7


def test_overwrite_carries_the_policy(subject: Subject) -> None:
    """`dfr state migrate` copies the policy in force with the runs."""
    source = State(FORMAT_VERSION, 9, "lineage-1", {"a": sample("a")}, policy=policy())
    with subject.backend.lock("test") as store:
        store.overwrite(source)  # type: ignore[attr-defined]
        assert store.state == source
    assert subject.open().read() == source
    with subject.open().lock("test") as store:
        store.overwrite(dataclasses.replace(source, serial=10, policy=None))  # type: ignore[attr-defined]
    assert subject.open().read().policy is None


# --------------------------------------------------------------------------- specs


def test_spec_records_are_changes_like_runs_durable_on_return(subject: Subject) -> None:
    """`put_spec` / `remove_spec`: one change each, read back whole, beside the runs."""
    pending = spec_sample("tickets", None, intent=spec_intent("create"), versions=())
    with subject.backend.lock("apply") as store:
        store.put(sample("a"))
        store.put_spec(pending)  # the write-ahead intent, before the POST
        seen = subject.open().read()
        assert seen.serial == 2 and seen.specs == {"tickets": pending} and set(seen.runs) == {"a"}
        made = spec_sample("tickets", "spec-7")
        store.put_spec(made)
        store.put_spec(spec_sample("other", intent=spec_intent("update")))
        assert subject.open().read().specs["tickets"] == made == store.state.specs["tickets"]
        store.remove_spec("other")
        with pytest.raises(StateError, match="has no spec named 'nope'"):
            store.remove_spec("nope")
        assert store.state.serial == 5 and set(store.state.specs) == {"tickets"}
        assert subject.open().read() == store.state
    # Kept across sessions (and their checkpoints) and by writes of runs and policies.
    with subject.open().lock("apply") as store:
        store.put(sample("b"))
        store.move("b", "c")
        store.set_policy(policy())
        store.remove("c")
    after = subject.open().read()
    assert after.serial == 9 and after.specs == {"tickets": made}


def test_a_spec_that_cannot_be_stored_is_refused_before_anything_is_written(
    subject: Subject,
) -> None:
    bad = spec_sample("s", intent=dataclasses.replace(spec_intent(), content_sha256="not-hex"))
    with subject.backend.lock("apply") as store:
        with pytest.raises(StateError, match=r"cannot record spec 's'.*content_sha256"):
            store.put_spec(bad)
        with pytest.raises(StateError, match="cannot record spec 's'"):
            store.put_spec(spec_sample("s", body={"x": {1, 2}}))  # not JSON
        assert store.state.serial == 0 and store.state.specs == {}
        store.put_spec(spec_sample("s"))
    assert subject.open().read().specs == {"s": spec_sample("s")}


def test_overwrite_carries_the_specs(subject: Subject) -> None:
    """`dfr state migrate` copies the specs with the runs."""
    specs = {"s": spec_sample("s"), "t": spec_sample("t", None, intent=spec_intent("create"))}
    source = State(FORMAT_VERSION, 4, "lineage-2", {"a": sample("a")}, specs=specs)
    with subject.backend.lock("test") as store:
        store.overwrite(source)  # type: ignore[attr-defined]
        assert store.state == source
    assert subject.open().read() == source
    with subject.open().lock("test") as store:
        store.overwrite(dataclasses.replace(source, serial=5, specs={}))  # type: ignore[attr-defined]
    assert subject.open().read().specs == {}


# --------------------------------------------------------------------------- the lock


def _locked_by_this_process(subject: Subject) -> str:
    """The start of the StateLockedError message of a lock this process holds."""
    return f"state {subject.name} is locked by pid {os.getpid()} on host {socket.gethostname()}"


def test_a_second_lock_is_refused_naming_the_holder_and_the_way_out(subject: Subject) -> None:
    with subject.backend.lock("apply") as store:
        holder = subject.backend.lock_holder()
        assert holder is not None
        lock_id = holder["id"]
        with pytest.raises(StateLockedError) as info, subject.open().lock("plan"):
            pass
        message = info.value.message
        assert message.startswith(_locked_by_this_process(subject))
        assert "(dfr apply since " in message and store.state.serial == 0
        assert message.endswith(
            f"lock id {lock_id}). Wait for it to finish, or if that process is gone run: "
            f"dfr force-unlock {lock_id}"
        )
        caught: list[BaseException] = []  # and from another thread

        def other() -> None:
            try:
                with subject.backend.lock("apply"):
                    pass
            except StateLockedError as exc:
                caught.append(exc)

        run_threads(lambda _: other(), 1)
        assert len(caught) == 1
    with subject.open().lock("plan"):  # released: free again
        pass
    assert subject.backend.lock_holder() is None  # and its record gone


def test_the_holder_is_recorded_while_the_lock_is_held(subject: Subject) -> None:
    with subject.backend.lock("apply") as store:
        info = subject.open().lock_holder()
        assert info is not None
        keys = {"id", "pid", "hostname", "user", "operation", "created", "dfr_version"}
        assert set(info) == keys | subject.extra_holder_keys and info["operation"] == "apply"
        assert info["pid"] == os.getpid() and info["hostname"] == socket.gethostname()
        assert getattr(store, "lock_id", None) == info["id"]
    assert subject.open().lock_holder() is None


def test_a_lock_timeout_waits_for_the_holder_and_sees_its_writes(subject: Subject) -> None:
    locked, done = threading.Event(), threading.Event()

    def hold() -> None:
        with subject.backend.lock("apply") as store:
            store.put(sample("first"))
            locked.set()
            time.sleep(0.3)
            done.set()  # inside the lock: the waiter cannot be in before this

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10)
    # A timeout far above the hold: under load the wait may be slow, never refused.
    with subject.open().lock("plan", timeout=30.0) as store:
        assert done.is_set() and "first" in store.state.runs
    thread.join()


def test_a_lock_timeout_expires_naming_the_holder(subject: Subject) -> None:
    with subject.backend.lock("apply"):
        start = time.monotonic()
        with pytest.raises(StateLockedError) as info, subject.open().lock("plan", timeout=0.2):
            pass
        assert 0.15 < time.monotonic() - start < 2
        assert info.value.message.startswith(_locked_by_this_process(subject))


# --------------------------------------------------------------------------- force-unlock


def test_force_unlock_of_a_state_nobody_locked_is_refused(subject: Subject) -> None:
    with pytest.raises(StateError, match=r"is not locked; nothing to unlock$"):
        subject.backend.force_unlock("anything")
    with subject.backend.lock("apply"):
        pass
    with pytest.raises(StateError, match=r"is not locked; nothing to unlock$"):
        subject.backend.force_unlock("anything")


def test_force_unlock_with_another_id_changes_nothing(subject: Subject) -> None:
    with subject.backend.lock("apply"):
        holder = subject.backend.lock_holder()
        assert holder is not None
        with pytest.raises(StateError) as info:
            subject.open().force_unlock("not-the-id")
        assert info.value.message == (
            f"lock id not-the-id does not match the lock on state {subject.name} "
            f"(lock id {holder['id']}); nothing was changed"
        )
        with pytest.raises(StateLockedError), subject.open().lock("plan"):
            pass


def test_force_unlock_refuses_a_holder_still_running_on_this_host(subject: Subject) -> None:
    with subject.backend.lock("apply"):
        holder = subject.backend.lock_holder()
        assert holder is not None
        # As if another live process of this host held it: our parent.
        subject.rewrite_holder(pid=os.getppid())
        with pytest.raises(StateError) as info:
            subject.open().force_unlock(holder["id"])
        assert info.value.message == (
            f"lock {holder['id']} on state {subject.name} is held by pid {os.getppid()} on this "
            "host, which is still running: stop it first (two writers would corrupt the state)"
        )
        with pytest.raises(StateLockedError), subject.open().lock("plan"):
            pass


@pytest.mark.parametrize("where", ["this process", "another host"])
def test_force_unlock_takes_the_lock_from_a_holder_believed_gone(
    subject: Subject, where: str
) -> None:
    with subject.backend.lock("apply"):
        holder = subject.backend.lock_holder()
        assert holder is not None
        if where == "another host":
            # A holder on another host (a shared file system, a runner of a shared
            # database) cannot be checked: the id the user gives is the word it is gone.
            subject.rewrite_holder(hostname="another-host")
        subject.open().force_unlock(holder["id"])
        with subject.open().lock("plan") as store:  # at once, without waiting
            assert store.state.serial == 0


def test_a_dead_holders_record_never_blocks_and_force_unlock_clears_it(subject: Subject) -> None:
    dead = {"id": "L1", "pid": 999999, "hostname": "elsewhere", "operation": "apply"}
    subject.leave_dead_holder(dead)
    with pytest.raises(StateError, match=r"lock id L2 does not match .* \(lock id L1\)"):
        subject.backend.force_unlock("L2")
    subject.open().force_unlock("L1")  # the lock is free: only the record goes
    assert subject.backend.lock_holder() is None
    subject.leave_dead_holder(dead)
    with subject.open().lock("apply") as store:  # a lock whose holder died is free
        store.put(sample("after"))
        holder = subject.backend.lock_holder()
        assert holder is not None and holder["id"] == getattr(store, "lock_id", None)
    assert subject.backend.lock_holder() is None
    assert set(subject.open().read().runs) == {"after"}


# --------------------------------------------------------------------------- a state that moved


def test_a_moved_state_refuses_reads_and_locks_until_its_mark_goes(
    subject: Subject, tmp_path: object
) -> None:
    destination = LocalBackend(f"{tmp_path}/elsewhere.json")
    with subject.backend.lock("state migrate") as store:
        store.put(sample("a"))
        store.mark_moved(Moved.new(destination, store.state))
    reader = subject.open()
    for attempt in (reader.read, lambda: reader.lock("apply").__enter__()):
        moved = r"was moved to .*elsewhere\.json by .* at "
        with pytest.raises(StateMovedError, match=moved) as info:
            attempt()
        assert info.value.hint and f"--state {destination.path}" in info.value.hint
    # allow_moved (dfr state migrate) opens it, and can take the mark away.
    mover = subject.open()
    mover.allow_moved = True
    with mover.lock("state migrate") as store:
        assert store.moved is not None and store.moved.serial == 1
        assert set(store.state.runs) == {"a"}  # the records are as they were
        store.mark_moved(None)
    mover.allow_moved = False
    assert set(subject.open().read().runs) == {"a"}


def test_a_locker_waiting_when_the_state_moves_refuses(subject: Subject, tmp_path: object) -> None:
    outcome: list[BaseException | str] = []

    def apply() -> None:
        try:
            with subject.open().lock("apply", timeout=30):
                outcome.append("opened")
        except BaseException as exc:
            outcome.append(exc)

    with subject.backend.lock("state migrate") as store, subject.watch_waiters() as waiting:
        store.put(sample("a"))
        thread = threading.Thread(target=apply)
        thread.start()
        assert waiting.wait(10)
        store.mark_moved(Moved.new(LocalBackend(f"{tmp_path}/elsewhere.json"), store.state))
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], StateMovedError), outcome


# --------------------------------------------------------------------------- corruption


def test_a_corrupt_state_is_refused_and_never_opened_for_writing(persistent: Subject) -> None:
    for name in ("a", "b"):
        with persistent.open().lock("apply") as store:
            store.put(sample(name))
    problem = persistent.corrupt()
    damaged = persistent.stored()
    with pytest.raises(StateCorruptError, match=problem):
        persistent.open().read()
    with pytest.raises(StateCorruptError, match=problem), persistent.open().lock("apply"):
        pytest.fail("a Store opened on a corrupt state")
    assert persistent.stored() == damaged  # refused to open: nothing was rewritten


def test_a_state_of_a_newer_dfr_is_refused(persistent: Subject) -> None:
    with persistent.open().lock("apply") as store:
        store.put(sample("a"))
    persistent.make_newer()
    stored = persistent.stored()
    for attempt in (persistent.open().read, lambda: persistent.open().lock("apply").__enter__()):
        with pytest.raises(StateVersionError, match="upgrade dfr"):
            attempt()
    assert persistent.stored() == stored
