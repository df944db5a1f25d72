"""reconciler.outputs.select: which generated files a pull writes, and hostile names refused."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.manifests import Outputs
from reconciler.outputs.select import UnsafeName, Wanted, name_problem, select_files

FUZZ = settings(max_examples=400, derandomize=True, database=None, deadline=None)

segments = st.sampled_from(
    ["a", "B", "..", ".", "", ".git", ".GIT", "x.dfr-pull", "~", "C:", "a\\b", "\n", "é", " s "]
) | st.text(max_size=6)
paths = st.lists(segments, min_size=1, max_size=5).map("/".join) | st.text(max_size=20)


def stays_inside(path: str) -> bool:
    """Whether joining `path` below a folder can only name something inside it."""
    root = PurePosixPath("/root/out")
    joined = PurePosixPath(os.path.normpath(root / path))
    return joined != root and root in joined.parents


@FUZZ
@given(paths)
@example("../x")
@example("a/../../x")
@example("/etc/passwd")
@example("~/x")
@example("C:/x")
@example("line\nbreak")
@example("nul\x00byte")
@example("a//b")
@example("a/")
@example("./a")
def test_an_accepted_name_stays_inside_the_folder_and_is_printable(path: str) -> None:
    if name_problem(path) is None:
        assert stays_inside(path)
        assert not any(ord(c) < 32 or ord(c) == 127 for c in path)
        assert "\\" not in path and not path.startswith(("/", "~"))
        assert all(s not in ("", ".", "..") for s in path.split("/"))


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "it has no path"),
        ("../x", "leaves the output folder"),
        ("a/../b", "leaves the output folder"),
        ("/abs", "absolute"),
        ("C:/x", "absolute"),
        ("~/x", "absolute"),
        ("a\nb", "control character"),
        ("a\tb", "control character"),
        ("a\\b", "backslash"),
        ("a//b", "empty or '.' folder"),
        ("a/", "empty or '.' folder"),
        ("./a", "empty or '.' folder"),
        (".git/config", "'.git'"),
        ("x.dfr-pull/y", "dfr keeps for itself"),
        ("n" * 256, "longer than 255 bytes"),
    ],
)
def test_refused_names_say_why(path: str, problem: str) -> None:
    found = name_problem(path)
    assert found is not None and problem in found


def test_ordinary_names_are_accepted() -> None:
    for path in ("a.csv", "data/part-0001.jsonl", "reports/quality/overview.md", "é/ü.txt", ".x"):
        assert name_problem(path) is None


def listed(*paths: str) -> list[tuple[str | None, str | None, int | None, str | None]]:
    return [(p, f"id-{i}", i, None) for i, p in enumerate(paths)]


def test_select_keeps_what_the_globs_keep_sorted_by_path() -> None:
    outputs = Outputs("data/x", ("data/*.jsonl", "*.md"))
    files = listed("z.md", "data/part-2.jsonl", "tables/t.csv", "data/part-1.jsonl", "r/q/o.md")
    chosen = select_files("x", files, outputs.keeps)
    assert [w.path for w in chosen] == [
        "data/part-1.jsonl",
        "data/part-2.jsonl",
        "r/q/o.md",
        "z.md",
    ]
    assert chosen[0] == Wanted("data/part-1.jsonl", "id-3", 3)


def test_no_globs_keep_everything() -> None:
    files = listed("b", "a/c")
    assert [w.path for w in select_files("x", files, Outputs("d").keeps)] == ["a/c", "b"]


def test_a_hostile_name_is_refused_even_when_the_globs_would_leave_it_out() -> None:
    with pytest.raises(UnsafeName) as info:
        select_files("x", listed("a.md", "../evil.md"), Outputs("d", ("a.md",)).keeps)
    assert info.value.message == (
        "run x: the API lists a file dfr will not write: '../evil.md': "
        "its path leaves the output folder ('..')"
    )


@pytest.mark.parametrize(
    ("paths", "clash"),
    [
        (("Data/x", "data/x"), "'Data/x' and 'data/x' differ only in letter case"),
        (("a", "a/b"), "'a' is a file and also a folder of 'a/b'"),
        (("A", "a/b"), "'A' is a file and also a folder of 'a/b'"),
        (("x", "x"), "'x' is listed twice"),
    ],
)
def test_paths_that_cannot_all_be_written_are_refused(paths: tuple[str, ...], clash: str) -> None:
    with pytest.raises(UnsafeName) as info:
        select_files("x", listed(*paths), lambda p: True)
    assert info.value.message.endswith(clash)


def test_a_kept_file_without_an_id_is_refused() -> None:
    with pytest.raises(UnsafeName, match="without a file id"):
        select_files("x", [("a", None, 1, None)], lambda p: True)


@FUZZ
@given(st.lists(paths, max_size=6))
def test_select_returns_only_safe_distinct_paths_or_refuses(names: list[str]) -> None:
    try:
        chosen = select_files("x", listed(*names), lambda p: True)
    except UnsafeName as exc:
        assert "\n" not in exc.message
        return
    folded = [w.path.casefold() for w in chosen]
    assert len(set(folded)) == len(folded)
    for want in chosen:
        assert name_problem(want.path) is None
        assert not any(f.startswith(want.path.casefold() + "/") for f in folded)


globs = st.lists(
    st.sampled_from(["*.md", "data/*.jsonl", "**/x", "a/**", "?.csv", "[ab]*", "sub/**/*.md"]),
    max_size=3,
).map(tuple)
safe_paths = st.lists(
    st.sampled_from(["a", "b.csv", "x", "data", "sub", "q", "r.md", "part.jsonl"]),
    min_size=1,
    max_size=4,
).map("/".join)


@FUZZ
@given(globs, st.lists(safe_paths, max_size=8, unique_by=str.casefold))
def test_select_keeps_exactly_what_the_globs_keep(
    patterns: tuple[str, ...], names: list[str]
) -> None:
    outputs = Outputs("d", patterns)
    try:
        chosen = select_files("x", listed(*names), outputs.keeps)
    except UnsafeName as exc:
        assert "is a file and also a folder" in exc.message
        return
    assert [w.path for w in chosen] == sorted(n for n in names if outputs.keeps(n))
    assert all(outputs.keeps(w.path) for w in chosen)
