"""Which files are read, and what a manifest is.

Each PATH is a file or a directory. A directory is read recursively for
`*.yaml` and `*.yml`, skipping hidden folders, following symbolic links once
(a loop is reported, not followed forever), reading only regular files (a
FIFO, socket or device is skipped with a warning; named on the command line,
a pipe is read while something writes to it and the others are errors). In a
directory, a document that claims neither `kind: GenerationRun` nor an
`apiVersion` of the `dataframer.ai` group is not a manifest and is skipped,
with a warning when it looks like one that lost its header. A file named on the command line must
hold only manifests (unless the caller asks to skip the rest, as the
pre-commit hook may).

Reading never raises for bad input: problems become diagnostics.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from reconciler import diagnostics as diag
from reconciler.diagnostics import Diagnostic
from reconciler.schema import API_VERSION, KIND, spec_schema
from reconciler.yamlsafe import MAX_FILE_BYTES, Document, YAMLProblem, decode, parse_documents

YAML_SUFFIXES = (".yaml", ".yml")
API_GROUP = API_VERSION.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    display: str
    explicit: bool  # named on the command line (must hold only manifests)


@dataclass(frozen=True, slots=True)
class Outputs:
    """A manifest's `outputs:` section: where its run's files go, and which to keep.

    `path` is a folder relative to the project root, normalised ('/'-separated,
    no '.' or empty segments) and never leaving it (`reconciler.outputs_rules`);
    `files` are glob patterns of the files to keep, () for all. `where` is the
    section's place, FILE:LINE:COL.
    """

    path: str
    files: tuple[str, ...] = ()
    where: str = "<memory>:1:1"

    def keeps(self, file_path: str) -> bool:
        """Whether the generated file at `file_path` (below the folder) is kept."""
        from reconciler.outputs_rules import keeps

        return keeps(self.files, file_path)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "files": list(self.files)}


@dataclass(frozen=True, slots=True)
class Evaluate:
    """A manifest's `evaluate:` section: start an evaluation once the run SUCCEEDED.

    `model` is the evaluation model to ask for (None: the API's default).
    """

    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {} if self.model is None else {"model": self.model}


@dataclass(frozen=True, slots=True)
class Manifest:
    """A valid GenerationRun manifest."""

    name: str
    spec: dict[str, Any]  # as written
    labels: dict[str, str] = field(default_factory=dict)
    file: str = "<memory>"
    line: int = 1
    column: int = 1
    outputs: Outputs | None = None
    evaluate: Evaluate | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The request body `apply` sends: the spec as written, nothing filled in.

        Defaults belong to the API and change with it (the old page's default
        model no longer exists): what the manifest leaves out is left to the
        API, and what the API used is recorded once the run is read.
        """
        return request_body(self.spec)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def spec_ref(self) -> SpecRef | None:
        """`spec.spec_ref` parsed: the Spec manifest (or adopted spec) this run uses."""
        return SpecRef.parse(self.spec.get("spec_ref"))


@dataclass(frozen=True, slots=True)
class SpecRef:
    """A run's `spec_ref: {name, version}`: a spec by its unique name; version None = latest."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, value: Any) -> SpecRef | None:
        if not isinstance(value, Mapping) or not isinstance(value.get("name"), str):
            return None
        version = value.get("version", "latest")
        return cls(value["name"], version if isinstance(version, int) else None)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": "latest" if self.version is None else self.version}


@dataclass(frozen=True, slots=True)
class SpecManifest:
    """A valid `kind: Spec` manifest (loaded by `reconciler.specs_check`).

    `body` holds the create options as written (`objectives` or `dataset_id`,
    `description`, ...); `content` the editable content (the manifest's
    `content:`, or what its `content_file:` holds, read at load time), None
    when left out; `source` is the file's display path.
    """

    name: str
    body: dict[str, Any]
    content: dict[str, Any] | None = None
    content_file: str | None = None
    file: str = "<memory>"
    line: int = 1
    column: int = 1
    source: str = "<memory>"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def create_body(self) -> dict[str, Any]:
        """The body of `POST /api/dataframer/specs/`: `objectives` is sent as
        `generation_objectives`, the name first."""
        from reconciler.specs_check import create_body

        return create_body(self.name, self.body)


def request_body(spec: Mapping[str, Any]) -> dict[str, Any]:
    """`spec` with its keys in the schema's order (stable plans and digests), unknown ones last."""
    order = spec_schema()["properties"]
    known = {key: spec[key] for key in order if key in spec}
    return {**known, **{k: v for k, v in spec.items() if k not in known}}


def display_path(path: Path) -> str:
    """The path as the user wrote it (a directory's files below it as found)."""
    return os.path.normpath(os.fspath(path))


def discover(paths: Sequence[str]) -> tuple[list[SourceFile], list[Diagnostic]]:
    """The files to read, in a stable order, and problems met finding them."""
    found: list[SourceFile] = []
    problems: list[Diagnostic] = []
    seen: set[str] = set()

    def add(path: Path, explicit: bool) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            found.append(SourceFile(path, display_path(path), explicit))

    for arg in paths:
        path = Path(arg)
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as exc:
            problems.append(diag.error(f"cannot read: {exc.strerror}", arg, code="io"))
            continue
        if is_dir:
            for file, problem in _walk(path):
                if problem is not None:
                    problems.append(problem)
                elif file is not None:
                    add(file, explicit=False)
        elif exists:
            kind = _irregular(path)
            if kind in (None, _FIFO):  # a pipe named here is read while written to
                add(path, explicit=True)
            else:
                problems.append(_not_regular(kind, arg, explicit=True))
        elif path.is_symlink():
            problems.append(diag.error("broken symbolic link", arg, code="io"))
        else:
            problems.append(diag.error("no such file or directory", arg, code="io"))
    return found, problems


def _walk(top: Path) -> Iterator[tuple[Path | None, Diagnostic | None]]:
    visited: set[tuple[int, int]] = set()
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True, onerror=errors.append):
        while errors:
            exc = errors.pop()
            where = display_path(Path(exc.filename)) if exc.filename else display_path(top)
            yield (
                None,
                diag.error(f"cannot read directory: {exc.strerror or exc}", where, code="io"),
            )
        try:
            st = os.stat(dirpath)
        except OSError as exc:
            yield (
                None,
                diag.error(
                    f"cannot read directory: {exc.strerror}", display_path(Path(dirpath)), code="io"
                ),
            )
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:
            yield (
                None,
                diag.warning(
                    "symbolic link loop: this directory was already read; skipped",
                    display_path(Path(dirpath)),
                    code="symlink-loop",
                ),
            )
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.lower().endswith(YAML_SUFFIXES):
                file = Path(dirpath, name)
                kind = _irregular(file)
                if kind is None:
                    yield file, None
                else:
                    yield None, _not_regular(kind, display_path(file), explicit=False)
    while errors:  # the top directory, or one met after the last directory read
        failure = errors.pop()
        where = display_path(Path(failure.filename)) if failure.filename else display_path(top)
        yield (
            None,
            diag.error(
                f"cannot read directory: {failure.strerror or failure}",
                where,
                code="io",
            ),
        )


def read_documents(source: SourceFile) -> tuple[list[Document], list[Diagnostic]]:
    """Every document of a file that parsed, and the problem that stopped it, if any."""
    data, problem = read_bytes(source)
    if data is None:
        return [], [problem] if problem is not None else []
    return parse_bytes(source, data)


def read_bytes(source: SourceFile) -> tuple[bytes | None, Diagnostic | None]:
    """The file's bytes (at most MAX_FILE_BYTES + 1), or the problem reading it."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer that may never come.
        fd = os.open(source.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return None, diag.error(f"cannot read file: {exc.strerror}", source.display, code="io")
    try:
        kind = _kind(os.fstat(fd).st_mode)
        if kind == _FIFO and source.explicit:
            return _read_pipe(fd, source)
        if kind is not None:
            return None, _not_regular(kind, source.display, explicit=source.explicit)
        os.set_blocking(fd, True)
        with open(fd, "rb", closefd=False) as handle:
            return _read_capped(handle), None
    except OSError as exc:
        return None, diag.error(f"cannot read file: {exc.strerror}", source.display, code="io")
    finally:
        os.close(fd)


def _read_pipe(fd: int, source: SourceFile) -> tuple[bytes | None, Diagnostic | None]:
    """A pipe named on the command line (`/dev/stdin`, `<(...)`): read while written to.

    Opened without blocking, a FIFO answers "no data yet" while a writer has it
    open and end-of-file when none has: then nothing will ever come, and
    waiting would hang forever, so it is an error instead.
    """
    try:
        first = os.read(fd, 65536)
    except BlockingIOError:
        first = None  # a writer, no data yet: wait for it as `cat` would
    if first == b"":
        message = f"not a regular file ({_FIFO}) and nothing writes to it; nothing to read"
        return None, diag.error(message, source.display, code="io")
    os.set_blocking(fd, True)
    data = first or b""
    with open(fd, "rb", closefd=False) as handle:
        return data + handle.read(MAX_FILE_BYTES + 1 - len(data)), None


_FIFO = "a FIFO"
_KINDS = (
    (stat.S_ISFIFO, _FIFO),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str | None:
    """None for a regular file, else what it is ("a FIFO")."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _not_regular(kind: str, where: str, *, explicit: bool) -> Diagnostic:
    """A FIFO, device or socket: an error when named on the command line, else skipped."""
    if explicit:
        message = f"not a regular file ({kind}); dfr reads only regular files"
        return diag.error(message, where, code="io")
    return diag.warning(f"not a regular file ({kind}); skipped", where, code="io")


def _irregular(path: Path) -> str | None:
    """What `path` (followed if a link) is when it is not a regular file; None otherwise.

    Opening a FIFO waits until something writes to it, and a device never
    ends: neither is a manifest file. A path that cannot be looked at (a link loop,
    no permission) counts as regular here, so reading it reports the problem.
    """
    try:
        return _kind(os.stat(path).st_mode)
    except OSError:
        return None


def parse_bytes(source: SourceFile, data: bytes) -> tuple[list[Document], list[Diagnostic]]:
    """Every document of `data` (the file's bytes) that parsed, and the problem, if any."""
    docs: list[Document] = []
    try:
        for doc in parse_documents(decode(data)):
            docs.append(doc)
    except YAMLProblem as p:
        return docs, [diag.error(p.message, source.display, p.line + 1, p.column + 1, code=p.code)]
    return docs, []


def _read_capped(handle: BinaryIO) -> bytes:
    """At most MAX_FILE_BYTES + 1 bytes (one more than allowed shows a file is too big).

    A regular file is read with its size as the request: asking for 1 MiB for
    every small file makes Python allocate and shrink a 1 MiB buffer each time,
    which costs more than parsing a manifest.
    """
    cap = MAX_FILE_BYTES + 1
    info = os.fstat(handle.fileno())
    if not stat.S_ISREG(info.st_mode) or info.st_size >= MAX_FILE_BYTES:
        return handle.read(cap)
    data = handle.read(info.st_size + 1)
    if len(data) > info.st_size:  # it grew since: read on, up to the cap
        data += handle.read(cap - len(data))
    return data


def claims_manifest(value: Any) -> bool:
    """Does a document say it is a manifest (even with a typo in its header)?"""
    if not isinstance(value, dict):
        return False
    for key, item in value.items():
        lowered = key.lower()
        if lowered == "kind" and isinstance(item, str) and item.lower().startswith("generationrun"):
            return True
        if (
            lowered == "apiversion"
            and isinstance(item, str)
            and item.split("/", 1)[0].lower() == API_GROUP
        ):
            return True
    return False


def looks_like_manifest(value: Any) -> bool:
    """A document without a header that still reads like a run (for a warning)."""
    if not isinstance(value, dict):
        return False
    spec = value.get("spec")
    return (
        (isinstance(spec, dict) and "spec_id" in spec)
        or ("metadata" in value and "spec" in value)
        or value.get("kind") == KIND
    )
