"""The `outputs:` rules as properties: no accepted path ever resolves outside the root.

`outputs_rules.path_problem` (the words) and `PATH_PATTERN` (the schema's rule)
agree on every string; an accepted path stays strictly below the root, as
written and after the filesystem's symbolic links are followed
(`outputs_check.check_all`); globs match as fnmatch does within a name.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.manifests import Manifest, Outputs
from reconciler.outputs_check import check_all
from reconciler.outputs_rules import (
    MAX_PATH_LENGTH,
    PATH_PATTERN,
    glob_problem,
    keeps,
    matches,
    normalise_path,
    path_problem,
)

#: Characters that make paths interesting: separators, dots, spaces, drive and home marks.
PIECES = st.sampled_from(
    [
        *("a", "b", "data", ".", "..", "/", "\\", " ", "~", ":", "C", ".git", "\x00", "\t", "é"),
        *("*", "nul", "Con", "com1", "lpt", ".txt", "\u00a0", "\u2028", "e\u0301"),
    ]
)
PATHS = st.lists(PIECES, max_size=10).map("".join) | st.text(max_size=20)


def test_the_schema_holds_this_pattern() -> None:
    from reconciler.schema import manifest_schema

    path = manifest_schema()["$defs"]["outputs"]["properties"]["path"]
    assert path["pattern"] == PATH_PATTERN
    assert path["maxLength"] == MAX_PATH_LENGTH


@given(PATHS)
@settings(max_examples=2000)
def test_schema_pattern_and_path_problem_agree(value: str) -> None:
    by_schema = re.search(PATH_PATTERN, value) is not None and len(value) <= MAX_PATH_LENGTH
    assert by_schema == (path_problem(value) is None), value


@given(PATHS)
@settings(max_examples=2000)
def test_an_accepted_path_stays_strictly_below_the_root(value: str) -> None:
    if path_problem(value) is not None:
        return
    root = "/repo/root"
    joined = posixpath.normpath(posixpath.join(root, value))
    assert joined.startswith(root + "/"), value
    normal = normalise_path(value)
    assert posixpath.normpath(posixpath.join(root, normal)) == joined
    assert path_problem(normal) is None  # normalising keeps it valid


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root whose folders hold links: outside, to the root, to '..', inside, in a loop."""
    base = tmp_path_factory.mktemp("tree")
    root = base / "root"
    (root / "real" / "deep").mkdir(parents=True)
    (base / "outside").mkdir()
    (root / "out").symlink_to(base / "outside")
    (root / "up").symlink_to("..")
    (root / "self").symlink_to(".")
    (root / "real" / "back").symlink_to("../..")
    (root / "real" / "in").symlink_to("deep")
    (root / "abs-in").symlink_to(root / "real")
    (root / "loop").symlink_to("loop")
    (root / "file").write_text("x")
    return root


SEGMENTS = st.sampled_from(
    ["out", "up", "self", "real", "deep", "back", "in", "abs-in", "loop", "x"]
)


@given(st.lists(SEGMENTS, min_size=1, max_size=5).map("/".join))
@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_no_accepted_folder_resolves_outside_the_root(tree: Path, value: str) -> None:
    manifest = Manifest("m", {}, outputs=Outputs(value, (), "m.yaml:9:1"))
    if check_all([manifest], tree):
        return  # refused
    real_root = os.path.realpath(tree)
    real = os.path.realpath(os.path.join(tree, value))
    assert os.path.commonpath([real_root, real]) == real_root, value
    assert real != real_root, value


def test_the_tree_refuses_what_it_should(tree: Path) -> None:
    def refused(value: str) -> bool:
        return bool(check_all([Manifest("m", {}, outputs=Outputs(value))], tree))

    assert refused("out/x") and refused("up") and refused("real/back/x") and refused("self")
    assert refused("file")
    assert not refused("real/in/x") and not refused("abs-in/new") and not refused("fresh/dir")


NAMES = st.text(alphabet="ab.-_*?[]!^", max_size=8)


@given(NAMES, st.text(alphabet="ab.-_^[]!", max_size=6))
@settings(max_examples=2000)
def test_a_name_pattern_matches_as_fnmatch_does(pattern: str, name: str) -> None:
    if glob_problem(pattern) is not None or "/" in name:
        return
    assert matches(pattern, name) == fnmatch.fnmatchcase(name, pattern), (pattern, name)


@given(st.text(max_size=12))
def test_glob_problem_never_raises_and_valid_patterns_compile(pattern: str) -> None:
    if glob_problem(pattern) is None:
        matches(pattern, "a/b.c")  # compiles


@pytest.mark.parametrize(
    ("pattern", "path", "kept"),
    [
        ("*.jsonl", "part-1.jsonl", True),
        ("*.jsonl", "deep/down/part-1.jsonl", True),  # no '/': any folder
        ("data/*.jsonl", "data/a.jsonl", True),
        ("data/*.jsonl", "data/x/a.jsonl", False),
        ("data/**", "data/x/y/a.jsonl", True),
        ("data/**/a.jsonl", "data/a.jsonl", True),
        ("data/**/a.jsonl", "data/x/y/a.jsonl", True),
        ("**/a.jsonl", "a.jsonl", True),
        ("data/**", "datax/a", False),
        ("[!t]*.csv", "top.csv", False),
        ("[!t]*.csv", "sub.csv", True),
    ],
)
def test_globs(pattern: str, path: str, kept: bool) -> None:
    assert glob_problem(pattern) is None
    assert keeps([pattern], path) is kept
    assert keeps([], path)


def test_a_backwards_range_is_refused_not_raised() -> None:
    problem = glob_problem("[z-a]*")
    assert problem is not None and "backwards" in problem
