"""A run's generated files: their layout, their bytes, and the ZIP of them all.

Everything here is a pure function of the run id, its sample count and its
spec's properties, so the same run always has the same files, byte for byte,
and a test can compute what a download must yield. The layout of a SUCCEEDED
run with N samples (N >= 2; a part with no sample is left out):

    data/part-0001.jsonl           first half of the samples, always > 1 MiB
    data/part-0002.jsonl           the other half
    tables/property_counts.csv     how many samples have each property value
    reports/quality/overview.md    a short report, two folders deep
    run_summary.json               the run in numbers

Sample lines are fixed-width JSON (padded in `text`), so sizes are computed
without building the bytes: rendering `generated_files` of a large run stays
cheap. A sample's property values are drawn from the spec's
`data_property_variations` by a hash of (run id, property, sample number).

`archive` builds the ZIP of `GET /runs/{id}/files/download/`: the folders as
they are, a `.metadata` JSON beside every file (its samples and, when the run
has a SUCCEEDED evaluation, their classifications) and `top_level.metadata`
(the run and the evaluation summary). Entries carry a fixed date: the same
run and evaluation give the same ZIP bytes.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import uuid
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Property name -> values; what a spec without variations is given.
Properties = tuple[tuple[str, tuple[str, ...]], ...]
DEFAULT_PROPERTIES: Properties = (("tone", ("neutral", "formal", "casual")),)

MIB = 1 << 20
#: The first part is always larger than this, so clients stream at least one file.
BIG_FILE_MIN = MIB + 4096
#: Bytes of one sample line in the other part (wider when the values need it).
LINE_WIDTH = 512
JSONL = "application/jsonl"
CSV = "text/csv"
MARKDOWN = "text/markdown"
JSON = "application/json"
#: Namespace of generated file ids: uuid5(run id + "/" + path).
FILE_NAMESPACE = uuid.UUID("6d1f2a9e-53c4-4f0b-9a57-0c6b1e8f3d21")
_ZIP_DATE = (2026, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class GeneratedFile:
    """One entry of a run's `generated_files` (the SDK's GeneratedFile)."""

    id: str
    path: str
    file_type: str
    size_bytes: int

    def listing(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "file_type": self.file_type,
            "size_bytes": self.size_bytes,
        }

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class RunOutput:
    """What a SUCCEEDED run produced: enough to build every byte of it."""

    run_id: str
    spec_name: str
    samples: int
    properties: Properties

    @property
    def props(self) -> Properties:
        return self.properties or DEFAULT_PROPERTIES

    def files(self) -> tuple[GeneratedFile, ...]:
        return _layout(self.run_id.lower(), self.spec_name, self.samples, self.props)

    def file(self, file_id: str) -> GeneratedFile | None:
        wanted = file_id.lower()
        return next((f for f in self.files() if f.id == wanted), None)

    def content(self, file: GeneratedFile) -> bytes:
        """The bytes of `file` (exactly `file.size_bytes` of them)."""
        return _content(self.run_id.lower(), self.spec_name, self.samples, self.props, file.path)

    def values(self) -> tuple[dict[str, str], ...]:
        """Each sample's property values, sample 1 first."""
        return _values(self.run_id.lower(), self.samples, self.props)

    def sample_ids(self) -> tuple[str, ...]:
        return tuple(sample_id(n) for n in range(1, self.samples + 1))


def sample_id(number: int) -> str:
    """The `sample_identifier` of sample `number` (1-based), as the lines name it."""
    return f"sample-{number:06d}"


def _parts(samples: int) -> tuple[tuple[str, int, int], ...]:
    """(path, first sample, count) of each non-empty data part."""
    first = math.ceil(samples / 2)
    parts = (
        ("data/part-0001.jsonl", 1, first),
        ("data/part-0002.jsonl", first + 1, samples - first),
    )
    return tuple(part for part in parts if part[2] > 0)


def _min_width(props: Properties) -> int:
    """The width a line needs for its longest values with an empty text."""
    widest = {
        name: max(values, key=lambda v: len(json.dumps(v)), default="") for name, values in props
    }
    return len(_line(sample_id(1), widest, "")) + 1


def _width(path: str, count: int, props: Properties) -> int:
    width = max(LINE_WIDTH, _min_width(props))
    if path.endswith("0001.jsonl"):
        width = max(width, math.ceil(BIG_FILE_MIN / count))
    return width


def _line(identifier: str, values: dict[str, str], text: str) -> bytes:
    return json.dumps({"id": identifier, **values, "text": text}).encode()


@functools.lru_cache(maxsize=64)
def _layout(run_id: str, spec: str, samples: int, props: Properties) -> tuple[GeneratedFile, ...]:
    out = []
    for path, _, count in _parts(samples):
        out.append((path, JSONL, count * _width(path, count, props)))
    for path, file_type in (
        ("tables/property_counts.csv", CSV),
        ("reports/quality/overview.md", MARKDOWN),
        ("run_summary.json", JSON),
    ):
        out.append((path, file_type, len(_content(run_id, spec, samples, props, path))))
    return tuple(
        GeneratedFile(str(uuid.uuid5(FILE_NAMESPACE, f"{run_id}/{path}")), path, kind, size)
        for path, kind, size in out
    )


@functools.lru_cache(maxsize=64)
def _values(run_id: str, samples: int, props: Properties) -> tuple[dict[str, str], ...]:
    def pick(name: str, values: Sequence[str], number: int) -> str:
        digest = hashlib.blake2b(f"{run_id}/{name}/{number}".encode(), digest_size=8).digest()
        return values[int.from_bytes(digest, "big") % len(values)]

    return tuple(
        {name: pick(name, values, n) for name, values in props if values}
        for n in range(1, samples + 1)
    )


def _filler(seed: str, length: int) -> str:
    """`length` characters of deterministic text (hex words), different per seed.

    Not repeated within a line, so the ZIP of a run is about as large as its files.
    """
    chunks = []
    for block in range(length // 144 + 1):
        words = hashlib.blake2b(f"{seed}/{block}".encode(), digest_size=64).hexdigest()
        chunks.append(" ".join(words[i : i + 8] for i in range(0, len(words), 8)) + " ")
    return "".join(chunks)[:length]


def _jsonl(run_id: str, samples: int, props: Properties, path: str) -> bytes:
    part = next(p for p in _parts(samples) if p[0] == path)
    _, first, count = part
    width = _width(path, count, props)
    values = _values(run_id, samples, props)
    lines = []
    for number in range(first, first + count):
        bare = _line(sample_id(number), values[number - 1], "")
        text = _filler(f"{run_id}/{number}", width - 1 - len(bare))
        lines.append(_line(sample_id(number), values[number - 1], text) + b"\n")
    return b"".join(lines)


def _counts(run_id: str, samples: int, props: Properties) -> dict[str, Counter[str]]:
    values = _values(run_id, samples, props)
    return {name: Counter(v[name] for v in values if name in v) for name, _ in props}


@functools.lru_cache(maxsize=48)
def _content(run_id: str, spec: str, samples: int, props: Properties, path: str) -> bytes:
    if path.endswith(".jsonl"):
        return _jsonl(run_id, samples, props, path)
    counts = _counts(run_id, samples, props)
    if path.endswith(".csv"):
        text = io.StringIO()
        writer = csv.writer(text)  # quotes what needs it: values may hold commas
        writer.writerow(("property", "value", "count"))
        writer.writerows((name, v, counts[name][v]) for name, values in props for v in values)
        return text.getvalue().encode()
    if path.endswith(".md"):
        lines = [f"# Run {run_id}", "", f"Spec `{spec}`, {samples} samples.", ""]
        for name, values in props:
            shares = ", ".join(f"{v} {counts[name][v]}" for v in values)
            lines.append(f"- **{name}**: {shares}")
        return ("\n".join(lines) + "\n").encode()
    summary = {
        "run_id": run_id,
        "spec_name": spec,
        "samples": samples,
        "parts": [path for path, _, _ in _parts(samples)],
        "property_counts": {name: dict(sorted(c.items())) for name, c in counts.items()},
    }
    return (json.dumps(summary, indent=2) + "\n").encode()


def archive(output: RunOutput, evaluation: dict[str, Any] | None) -> bytes:
    """The ZIP of every file of `output`, with `.metadata` files and `top_level.metadata`.

    `evaluation`: the run's latest SUCCEEDED evaluation as `GET /evaluations/{id}/`
    shows it, or None.
    """
    classified = {
        str(item["sample_identifier"]): item["classifications"]
        for item in (evaluation or {}).get("sample_classifications") or []
    }
    parts = {path: (first, count) for path, first, count in _parts(output.samples)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for file in output.files():
            data = output.content(file)
            first, count = parts.get(file.path, (1, 0))
            samples = [sample_id(n) for n in range(first, first + count)]
            meta = {
                "path": file.path,
                "file_type": file.file_type,
                "size_bytes": file.size_bytes,
                "sha256": hashlib.sha256(data).hexdigest(),
                "samples": samples,
                "classifications": {s: classified[s] for s in samples if s in classified},
            }
            _write(zf, file.path, data)
            _write(zf, f"{file.path}.metadata", _json_bytes(meta))
        _write(zf, "top_level.metadata", _json_bytes(_top_level(output, evaluation)))
    return buffer.getvalue()


def _top_level(output: RunOutput, evaluation: dict[str, Any] | None) -> dict[str, Any]:
    summary = None
    if evaluation is not None:
        summary = {
            "evaluation_id": evaluation.get("id"),
            "status": evaluation.get("status"),
            "completed_at": evaluation.get("completed_at"),
            "distribution_analysis": evaluation.get("distribution_analysis"),
        }
    return {
        "run_id": output.run_id,
        "spec_name": output.spec_name,
        "samples": output.samples,
        "files": [f.path for f in output.files()],
        "evaluation": summary,
    }


def _json_bytes(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2) + "\n").encode()


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)
