"""Text from outside dfr, made safe for the output it goes to.

File names, manifest names and labels, run ids, statuses and the API's own
words (failure reasons, error messages, spec names) hold whatever a file system
or a server allows: newlines, terminal escape sequences, `::set-output`,
`<!--`. Printed as they are, they split one finding into several lines, forge
GitHub Actions workflow commands (which the runner executes from any line of
a job's log) or hide the rest of a pull-request comment. Every renderer passes
such text through the function made for its output:

- `one_line`: plain text (terminals, logs, `FILE:LINE:COL` lines). Control
  characters, line and paragraph separators, bidirectional overrides and lone
  surrogates (undecodable bytes of a file name) become visible escapes (`\\n`,
  `\\x1b`, `\\u202e`, `\\udcff`): one finding stays one line, nothing moves
  the cursor or reorders what follows, and nothing fails to encode. The
  runner's legacy command marker `##[`, which it reads anywhere in a line,
  becomes `#\\x23[`.
- `line_start`: a path that begins a plain line (`FILE:LINE:COL: ...`): one
  line, and a relative path that would start the line with `:` or a space is
  written `./PATH`, so no line of ours can begin with a workflow command.
- `github_data`, `github_property`: the message and the properties
  (`file=`, `title=`) of a workflow command, escaped as GitHub's toolkit does
  (`%`, CR and LF; in properties also `:` and `,`).
- `md_code`, `md_text`, `html_text`: a pull-request comment. Inline code
  whose fence outgrows any backticks in the text; Markdown prose with HTML
  (`<!--`, tags, entities) and Markdown punctuation escaped; text inside HTML
  (`<summary>`, `<code>`), where GitHub renders no Markdown. All are one line:
  a blank line would end the list item or the `<details>` block it is in.
- `fence`: a fenced code block's fence, longer than any backtick run inside.

Only text from outside goes through these; dfr's own words are written as they are.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls and DEL (Unicode category Cc), the line and paragraph
# separators (Zl, Zp), the bidirectional marks, embeddings, overrides and
# isolates (which reorder how the rest of a line is displayed: "Trojan
# Source"), and surrogates (os.fsdecode's stand-ins for undecodable bytes).
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_LEGACY_COMMAND = "##["
# Markdown punctuation that could start emphasis, code, links, tables or strikethrough.
_MARKDOWN = re.compile(r"([\\`*_\[\]~|#])")
# At the start of a list item's text: a nested list ("- ", "+ ") or an ordered one ("1.").
_BULLET = re.compile(r"^([-+])")
_ORDINAL = re.compile(r"^(\d+)([.)])")


#: `@` followed by what GitHub and GitLab read as a user or team name.
_MENTION = re.compile(r"@(?=[A-Za-z0-9_-])")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: object) -> str:
    """`text` as one line of plain text, its control characters shown as escapes.

    `##[` becomes `#\\x23[`: GitHub's runner reads its legacy command syntax
    (`##[set-output name=x;]value`) anywhere in a line of the log.
    """
    value = str(text)
    if not value.isprintable():
        value = _UNSAFE.sub(_escape, value)
    if _LEGACY_COMMAND in value:
        value = value.replace(_LEGACY_COMMAND, "#\\x23[")
    return value


def line_start(path: object) -> str:
    """A path as the first word of a plain line: one line, never starting with `:` or space."""
    value = one_line(path)
    if value[:1] == ":" or value[:1].isspace():
        return "./" + value
    return value


def github_data(text: object) -> str:
    """A workflow command's message (after `::`): `%`, CR and LF percent-encoded."""
    value = str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return one_line(value)


def github_property(text: object) -> str:
    """A workflow command's property value (`file=`, `title=`): also `:` and `,` encoded."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def html_text(text: object) -> str:
    """Text inside HTML (`<summary>`, `<code>`): one line, `&`, `<`, `>` and quotes escaped."""
    return html.escape(one_line(text))


def md_text(text: object) -> str:
    """Markdown prose (a list item's text): one line, HTML and Markdown punctuation escaped.

    An `@` before a word gets a zero-width space after it: a manifest name or an
    API's text must not ping a person or a team from a pull-request comment.
    """
    value = _MARKDOWN.sub(r"\\\1", html.escape(one_line(text), quote=False))
    value = _MENTION.sub("@\u200b", value)
    return _ORDINAL.sub(r"\1\\\2", _BULLET.sub(r"\\\1", value))


def md_code(text: object) -> str:
    """Inline code showing `text` exactly, whatever backticks it holds (one line)."""
    value = one_line(text)
    tick = "`"
    while tick in value:
        tick += "`"
    # A span that starts or ends with a backtick needs a space, which Markdown strips.
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{tick}{pad}{value}{pad}{tick}"


def fence(lines: Iterable[str]) -> str:
    """A code fence longer than any run of backticks in `lines` (at least three)."""
    longest = max((len(run) for line in lines for run in re.findall("`+", line)), default=0)
    return "`" * max(3, longest + 1)
