"""Diagnostics are values: collected while reading, rendered at the end.

A `Diagnostic` carries a severity, a message and the place it is about
(file, 1-based line and column, and the path inside the document). The core
only builds them; reporters turn a list of them into text, JSON or GitHub
Actions annotations on a stream they are given.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

from reconciler.textsafe import github_data, github_property, line_start, one_line

Severity = Literal["error", "warning"]
Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: Severity
    message: str
    file: str
    line: int = 1
    column: int = 1
    path: Path = ()
    # A short, stable identifier of the kind of finding ("yaml", "schema",
    # "duplicate-name", ...) for machine readers and code-quality reports.
    code: str = "error"
    related: tuple[tuple[str, int, int], ...] = field(default=())

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": list(self.path),
        }


def error(
    message: str, file: str, line: int = 1, column: int = 1, *, code: str, path: Path = ()
) -> Diagnostic:
    return Diagnostic("error", message, file, line, column, path, code)


def warning(
    message: str, file: str, line: int = 1, column: int = 1, *, code: str, path: Path = ()
) -> Diagnostic:
    return Diagnostic("warning", message, file, line, column, path, code)


def sort(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=Diagnostic.sort_key)


def count_errors(diagnostics: Sequence[Diagnostic]) -> int:
    return sum(1 for d in diagnostics if d.is_error)


def format_text(d: Diagnostic) -> str:
    """`FILE:LINE:COL: severity: MESSAGE` on one line, whatever the file is called."""
    return f"{line_start(d.file)}:{d.line}:{d.column}: {d.severity}: {one_line(d.message)}"


def write_text(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    for d in diagnostics:
        stream.write(format_text(d) + "\n")


def format_github(d: Diagnostic) -> str:
    """A GitHub Actions workflow command: shows the message on the PR's diff."""
    return (
        f"::{d.severity} file={github_property(d.file)},line={d.line},"
        f"col={d.column}::{github_data(d.message)}"
    )


def write_github(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    for d in diagnostics:
        stream.write(format_github(d) + "\n")


def write_json(document: dict[str, Any], stream: TextIO) -> None:
    json.dump(document, stream, indent=2, sort_keys=False)
    stream.write("\n")
