"""The rules of a manifest's `outputs:` section, on strings only: no filesystem.

`outputs.path` is a folder relative to the project root (the folder of
dfr.yaml, else the git repository's root, else the current folder), written
with `/`. It may never leave that root, so it is refused when it is
absolute (`/data`, `C:/data`, `~/data`), holds a `..` segment, a backslash
(Windows' separator: write `/`), a control character, a character Windows
refuses in file names (`<>:"|?*`), a segment starting or ending with a space,
a `.git` segment (git's own folder), a name Windows cannot hold (a device
name such as `NUL` or `com1.txt`, a trailing dot), or names the root itself (`.`).
`normalise_path` drops `.` segments, repeated and trailing slashes. Symbolic
links are a matter of the filesystem: `reconciler.outputs_check` resolves
them.

`outputs.files` are glob patterns of the files to keep, matched against each
generated file's path as the API lists it (`/`-separated, below the output
folder): `*` matches within one folder name, `?` one character, `[abc]` /
`[!abc]` a character class, and a whole segment `**` any number of folders
(none included). A pattern without `/` matches a file name in any folder (as
in .gitignore); one with `/` matches the path from the output folder down.
No patterns: every file is kept.

`PATH_PATTERN` is the same path rule as one regular expression, for the JSON
Schema (editors check with it); `path_problem` words what it refuses. A test
checks that the two agree.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

#: Characters Windows refuses in a file name (besides `/`, `\\` and controls):
#: a folder so named cannot be checked out there.
WINDOWS_RESERVED = '<>:"|?*'

#: The rule of `path_problem` as a regular expression (ECMA 262 and Python `re`
#: alike), for the manifest schema's `outputs.path`.
PATH_PATTERN = (
    r"^(?![/~])(?![A-Za-z]:)(?!.*[\\\x00-\x1f\x7f<>:\"|?*])"
    r"(?!(?:.*/)?\.\.(?:/|$))(?!(?:.*/)?\.[Gg][Ii][Tt](?:/|$))"
    r"(?!(?:.*/)?\s)(?!.*\s(?:/|$))(?!(?:\.?/)*\.?$)"
    r"(?!(?:.*/)?(?:[Cc][Oo][Nn]|[Pp][Rr][Nn]|[Aa][Uu][Xx]|[Nn][Uu][Ll]|[Cc][Oo][Mm][1-9]"
    r"|[Ll][Pp][Tt][1-9])(?:\.[^/]*)?(?:/|$))"
    r"(?!(?:.*/)?(?!\.\.?(?:/|$))[^/]*\.(?:/|$)).+$"
)
#: Device names Windows reserves, with or without an extension ('nul.txt' too).
_WINDOWS_DEVICES = re.compile(r"(?i)(con|prn|aux|nul|com[1-9]|lpt[1-9])(\.[^/]*)?")
#: The longest `outputs.path` (most filesystems allow 4096 bytes for a whole path).
MAX_PATH_LENGTH = 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(value: str) -> str | None:
    """Why `value` is not a valid `outputs.path` (a sentence), or None when it is."""
    if value == "" or value.strip() == "":
        return "outputs.path must name a folder below the project root, not be empty"
    if value.startswith("/") or re.match(r"[A-Za-z]:", value):
        return (
            f"outputs.path {value!r} is an absolute path; write a folder relative to the "
            "project root (the folder of dfr.yaml, else the git repository's root), "
            "e.g. 'data/runs'"
        )
    if value.startswith("~"):
        return (
            f"outputs.path {value!r} starts with '~'; write a folder relative to the project root"
        )
    if "\\" in value:
        return f"outputs.path {value!r} holds a backslash; separate folders with '/'"
    if _CONTROL.search(value):
        return "outputs.path holds a control character; use printable folder names"
    reserved = sorted({c for c in value if c in WINDOWS_RESERVED})
    if reserved:
        return (
            f"outputs.path {value!r} holds {' '.join(reserved)}, which Windows refuses in "
            "file names; use letters, digits, '-', '_' and '.'"
        )
    segments = value.split("/")
    if ".." in segments:
        return (
            f"outputs.path {value!r} leaves the project root ('..'); output folders must be "
            "inside the repository"
        )
    if any(s.lower() == ".git" for s in segments):
        return f"outputs.path {value!r} is inside git's own '.git' folder; choose another folder"
    if any(s != s.strip() for s in segments):
        return f"outputs.path {value!r} has a folder name that starts or ends with a space"
    if any(_WINDOWS_DEVICES.fullmatch(s) for s in segments):
        return (
            f"outputs.path {value!r} names a device Windows reserves (CON, NUL, COM1, ...); "
            "choose another folder name"
        )
    if any(s.endswith(".") and s not in (".", "..") for s in segments):
        return (
            f"outputs.path {value!r} has a folder name ending with '.', which Windows drops; "
            "remove the dot"
        )
    if not normalise_path(value):
        return (
            f"outputs.path {value!r} is the project root itself; name a folder below it, "
            "e.g. 'data/NAME'"
        )
    if len(value) > MAX_PATH_LENGTH:
        return f"outputs.path is longer than {MAX_PATH_LENGTH} characters"
    return None


def normalise_path(value: str) -> str:
    """`value` without `.` segments, repeated or trailing slashes ('./data//x/' -> 'data/x')."""
    return "/".join(s for s in value.split("/") if s not in ("", "."))


def path_parts(value: str) -> tuple[str, ...]:
    """A valid, normalised path's folder names, case-folded and in Unicode's composed
    form (for overlap checks: a checkout on macOS or Windows does not tell 'Data' from
    'data', and macOS stores 'é' decomposed)."""
    return tuple(unicodedata.normalize("NFC", s).casefold() for s in value.split("/") if s)


def glob_problem(pattern: str) -> str | None:
    """Why `pattern` is not a valid `outputs.files` pattern, or None when it is."""
    if pattern == "":
        return "an empty pattern matches nothing; remove it (no patterns keep every file)"
    if pattern.startswith("/"):
        return (
            f"pattern {pattern!r} is absolute; patterns are relative to the output folder "
            f"(write {pattern.lstrip('/')!r})"
        )
    if "\\" in pattern:
        return f"pattern {pattern!r} holds a backslash; separate folders with '/' (no escapes)"
    if _CONTROL.search(pattern):
        return f"pattern {pattern!r} holds a control character"
    if pattern.startswith("!"):
        return f"pattern {pattern!r}: negation ('!') is not supported; list the files to keep"
    if pattern.endswith("/"):
        return (
            f"pattern {pattern!r} ends with '/' and would match a folder, not files; "
            f"write {pattern + '**'!r} to keep every file below it"
        )
    for segment in pattern.split("/"):
        problem = _segment_problem(pattern, segment)
        if problem is not None:
            return problem
    return None


def _segment_problem(pattern: str, segment: str) -> str | None:
    if segment in ("", "."):
        return f"pattern {pattern!r} has an empty or '.' folder; write it without './' or '//'"
    if segment == "..":
        return f"pattern {pattern!r} leaves the output folder ('..')"
    if "**" in segment and segment != "**":
        return (
            f"pattern {pattern!r}: '**' must be a whole folder name ('a/**/b'); "
            "use '*' inside a name"
        )
    if _class_problem(segment):
        return f"pattern {pattern!r} has a '[' without its closing ']' (or an empty class '[]')"
    try:
        re.compile(_translate_segment(segment))
    except re.error:
        return f"pattern {pattern!r} has a character range that runs backwards (write '[a-z]')"
    return None


def _class_problem(segment: str) -> bool:
    """Whether a character class of `segment` is unclosed or empty."""
    i = 0
    while i < len(segment):
        if segment[i] == "[":
            end = _class_end(segment, i)
            if end < 0:
                return True
            i = end
        i += 1
    return False


def _class_end(segment: str, start: int) -> int:
    """The index of the `]` closing the class opened at `start`, or -1.

    As in fnmatch: a `]` right after `[` or `[!` is a member, not the end.
    """
    i = start + 1
    if i < len(segment) and segment[i] == "!":
        i += 1
    if i < len(segment) and segment[i] == "]":
        i += 1
    end = segment.find("]", i)
    return end


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    segments = pattern.split("/")
    anchored = len(segments) > 1
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_translate_segment(segment) + ("" if last else "/"))
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(parts), re.DOTALL)


def _translate_segment(segment: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and _class_end(segment, i) > 0:
            end = _class_end(segment, i)
            body = segment[i + 1 : end]
            negate = body[:1] == "!"
            members = re.escape(body[1:] if negate else body).replace(r"\-", "-")
            out.append(f"[^/{members}]" if negate else f"[{members}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def matches(pattern: str, path: str) -> bool:
    """Whether a valid glob `pattern` matches the file path `path` ('/'-separated)."""
    return _compiled(pattern).fullmatch(path) is not None


def keeps(patterns: Iterable[str], path: str) -> bool:
    """Whether a file at `path` is kept by `patterns` (every file when there are none)."""
    listed = tuple(patterns)
    return not listed or any(matches(p, path) for p in listed)
