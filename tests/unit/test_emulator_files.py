"""The emulator's generated files as pure functions: sizes, contents and the ZIP agree.

`generated_files` sizes are computed without building the bytes (fixed-width
sample lines), so these properties hold for any sample count and any spec
properties, including values that JSON must escape.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from dfr_emulator.evaluations import analysis, largest_gap
from dfr_emulator.files import BIG_FILE_MIN, RunOutput, archive, sample_id

values = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=4, unique=True)
properties = st.lists(
    st.tuples(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), values.map(tuple)),
    max_size=3,
    unique_by=lambda p: p[0],
).map(tuple)


@settings(max_examples=25, deadline=None)
@given(samples=st.integers(min_value=1, max_value=120), props=properties)
def test_sizes_are_the_bytes_and_every_sample_is_written_once(
    samples: int, props: tuple[tuple[str, tuple[str, ...]], ...]
) -> None:
    output = RunOutput("3c90c3cc-0d44-4b50-8888-8dd25736052a", "spec", samples, props)
    files = output.files()
    assert len({f.id for f in files}) == len(files)
    seen: list[str] = []
    for file in files:
        data = output.content(file)
        assert len(data) == file.size_bytes
        if file.path.endswith(".jsonl"):
            lines = data.splitlines(keepends=True)
            assert len({len(line) for line in lines}) == 1  # fixed width
            seen += [json.loads(line)["id"] for line in lines]
    assert seen == [sample_id(n) for n in range(1, samples + 1)]
    assert files[0].path == "data/part-0001.jsonl" and files[0].size_bytes >= BIG_FILE_MIN
    rows = list(csv.DictReader(io.StringIO(output.content(files[-3]).decode())))
    for name, _ in output.props:
        assert sum(int(r["count"]) for r in rows if r["property"] == name) == samples


def test_the_zip_is_the_files_and_is_the_same_each_time() -> None:
    output = RunOutput("6f1c2b7e-8a4d-4c3e-9b2a-1d5e7f9a0b3c", "reviews", 5, ())
    data = archive(output, None)
    assert archive(output, None) == data
    zipped = zipfile.ZipFile(io.BytesIO(data))
    for file in output.files():
        content = output.content(file)
        assert zipped.read(file.path) == content
        meta = json.loads(zipped.read(file.path + ".metadata"))
        assert meta["sha256"] == hashlib.sha256(content).hexdigest()


@settings(max_examples=40, deadline=None)
@given(
    props=properties.filter(lambda p: any(len(v) > 1 for _, v in p[:1])),
    gap=st.floats(min_value=0, max_value=40).map(lambda g: round(g, 2)),
)
def test_the_largest_gap_is_the_one_asked_for_on_the_first_property(
    props: tuple[tuple[str, tuple[str, ...]], ...], gap: float
) -> None:
    output = RunOutput("7a1e5c3d-2b4f-4e6a-9c8d-0f1e2d3c4b5a", "s", 50, props)
    entries = analysis(output, gap)
    name, worst = largest_gap(entries)
    first = entries[0]
    room = 100 - first["requested_distributions"][output.props[0][1][0]]
    expected = min(gap, room)
    assert abs(worst - expected) <= 0.011
    if expected > 0.011:
        assert name == output.props[0][0]
    for entry in entries:
        if len(entry["requested_distributions"]) > 1:  # one value: the rest is unclassified
            assert abs(sum(entry["evaluated_distributions"].values()) - 100) < 0.05
        assert all(v >= 0 for v in entry["evaluated_distributions"].values())
