"""The lock of the data, pure: a folder against its record, and the plan's pulls."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.manifests import Manifest, Outputs
from reconciler.outputs.compare import FolderCheck, FolderState, Seen, check_folder
from reconciler.outputs.needs import PullChange, pulls_needed
from reconciler.state.model import OutputFile, OutputsRecord, RunRecord, State

A, B = "a" * 64, "b" * 64
RECORD = OutputsRecord(
    "data/x",
    (OutputFile("one.csv", 3, A, "f1"), OutputFile("sub/two.md", 5, B, "f2")),
    "2026-01-01T00:00:00Z",
    "run-1",
)


def test_a_folder_holding_every_recorded_file_is_pulled() -> None:
    listing = {"one.csv": Seen(3, A), "sub/two.md": Seen(5, B)}
    assert check_folder(RECORD, listing) == FolderCheck(FolderState.PULLED)


@pytest.mark.parametrize(
    ("listing", "state", "missing", "modified"),
    [
        (None, FolderState.MISSING, ("one.csv", "sub/two.md"), ()),
        ({"one.csv": Seen(3, A)}, FolderState.MISSING, ("sub/two.md",), ()),
        ({"one.csv": Seen(3, B), "sub/two.md": Seen(5, B)}, FolderState.MODIFIED, (), ("one.csv",)),
        ({"one.csv": Seen(4, None)}, FolderState.MODIFIED, ("sub/two.md",), ("one.csv",)),
        (
            {"one.csv": Seen(3, A, regular=False), "sub/two.md": Seen(5, B)},
            FolderState.MODIFIED,
            (),
            ("one.csv",),
        ),
    ],
)
def test_missing_and_modified_files_are_named(
    listing: dict[str, Seen] | None,
    state: FolderState,
    missing: tuple[str, ...],
    modified: tuple[str, ...],
) -> None:
    check = check_folder(RECORD, listing)
    assert (check.state, check.missing, check.modified) == (state, missing, modified)
    assert check.differs


def test_never_pulled_is_its_own_state_and_not_a_difference() -> None:
    check = check_folder(None, {"x": Seen(1, A)})
    assert check.state is FolderState.NOT_PULLED and not check.differs
    assert check.summary == "not pulled"


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["one.csv", "sub/two.md", "other"]),
        st.builds(Seen, st.sampled_from([3, 5, 9]), st.sampled_from([A, B, None]), st.booleans()),
    )
)
def test_pulled_exactly_when_every_recorded_file_matches(listing: dict[str, Seen]) -> None:
    check = check_folder(RECORD, listing)
    matches = all(
        (seen := listing.get(f.path)) is not None
        and seen.regular
        and (seen.size, seen.sha256) == (f.size, f.sha256)
        for f in RECORD.files
    )
    assert (check.state is FolderState.PULLED) == matches
    assert set(check.missing) | set(check.modified) <= {f.path for f in RECORD.files}


# --------------------------------------------------------------------------- needs


DEFAULT = Outputs("data/x")


def manifest(name: str, outputs: Outputs | None = DEFAULT) -> Manifest:
    return Manifest(name=name, spec={"spec_id": "s", "number_of_samples": 1}, outputs=outputs)


def state_of(**records: RunRecord) -> State:
    return State(3, 1, "L", dict(records))


def succeeded(name: str, outputs: OutputsRecord | None = None, run_id: str = "run-1") -> RunRecord:
    return RunRecord.new(name, now="t", run_id=run_id, status="SUCCEEDED", outputs=outputs)


PULLED = {"x": FolderCheck(FolderState.PULLED)}


def reasons(changes: tuple[PullChange, ...]) -> list[tuple[str, str]]:
    return [(c.name, c.reason) for c in changes]


def test_a_current_folder_needs_no_pull() -> None:
    assert pulls_needed([manifest("x")], state_of(x=succeeded("x", RECORD)), PULLED) == ()


@pytest.mark.parametrize(
    ("record", "outputs", "check", "reason"),
    [
        (None, Outputs("data/x"), None, "never pulled"),
        (RECORD, Outputs("data/y"), PULLED["x"], "outputs.path changed (was data/x)"),
        (RECORD, Outputs("data/x", ("*.md",)), PULLED["x"], "outputs.files changed"),
        (
            RECORD,
            Outputs("data/x"),
            FolderCheck(FolderState.MODIFIED, ("a",), ("b",)),
            "the folder differs from state: 1 missing, 1 modified",
        ),
        (
            dataclasses.replace(RECORD, run_id="run-0"),
            Outputs("data/x"),
            PULLED["x"],
            "the folder holds the files of run run-0",
        ),
    ],
)
def test_why_a_pull_is_needed(
    record: OutputsRecord | None, outputs: Outputs, check: FolderCheck | None, reason: str
) -> None:
    checks = {} if check is None else {"x": check}
    changes = pulls_needed([manifest("x", outputs)], state_of(x=succeeded("x", record)), checks)
    assert reasons(changes) == [("x", reason)]
    assert changes[0].run_id == "run-1" and changes[0].path == outputs.path


def test_run_ids_compare_without_letter_case() -> None:
    record = succeeded("x", RECORD, run_id="RUN-1")
    assert pulls_needed([manifest("x")], state_of(x=record), PULLED) == ()


def test_nothing_to_pull_without_outputs_or_a_succeeded_run() -> None:
    pending = dataclasses.replace(succeeded("x"), status="PROCESSING")
    assert pulls_needed([manifest("x")], state_of(x=pending), {}) == ()
    assert pulls_needed([manifest("x", None)], state_of(x=succeeded("x")), {}) == ()
    assert pulls_needed([manifest("x")], state_of(), {}) == ()


def test_a_run_the_plan_submits_is_pulled_after_it() -> None:
    changes = pulls_needed(
        [manifest("x")], state_of(x=succeeded("x", RECORD)), PULLED, submitting=frozenset({"x"})
    )
    assert changes == (
        PullChange(
            "x",
            None,
            "data/x",
            "after the new run SUCCEEDED",
            depends_on=("run/x",),
            where=DEFAULT.where,
        ),
    )
    assert changes[0].to_json()["depends_on"] == ["run/x"]
    assert changes[0].key == "pull/x"
