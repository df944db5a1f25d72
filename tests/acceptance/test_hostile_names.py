"""Hostile file names and API text through the real CLI: nothing forges, hides or splits output.

A manifest file may be named anything a file system allows, and the API's
words (statuses, failure reasons) are whatever a server sends. The recipes run
`dfr` on fork pull requests, where the GitHub runner executes every log line
that starts with `::` as a workflow command, and post the plan as a comment,
where `<!--` hides everything after it. So for every output:

- plain text: one finding, one line; no line starts with `::`;
- GitHub annotations: only dfr's own `::error`/`::warning` commands, each one line;
- Markdown: the marker is the only HTML comment; every change stays visible.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from support.runner import Runner, apply_args
from support.workspace import Workspace, manifest_doc, spec

from dfr_emulator import Emulator

INJECT = "bad\n::error file=x.yaml,line=1::pwned\n::set-output name=ok::1"
HIDE = "small\n\n<!--"
#: Our own workflow commands: `::error` or `::warning`, properties without a raw `:` or `,`.
COMMAND = re.compile(r"::(error|warning)( file=[^:,\n]*,line=\d+,col=\d+(,title=[^:,\n]*)?)?::.*")


def _write(folder: Path, filename: str, name: str, **fields: object) -> Path:
    path = folder / filename
    path.write_text(yaml.safe_dump(manifest_doc(name, spec(**fields)), sort_keys=False))
    return path


def _commands(text: str) -> list[str]:
    """Every line GitHub's runner would read as a workflow command: `::cmd` at the start
    (after spaces), or the legacy `##[cmd]` anywhere in the line."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::") or "##[" in line]


def _rendered(text: str) -> str:
    """The comment as HTML, rendered by CommonMark rules as GitHub does."""
    from markdown_it import MarkdownIt

    html: str = MarkdownIt("commonmark").render(text)
    return html


def _visible_markdown(text: str) -> str:
    """The text a reader sees once the comment is rendered (HTML comments dropped)."""
    return re.sub(r"<!--.*?(-->|\Z)", "", _rendered(text), flags=re.S)


def test_a_file_name_cannot_forge_workflow_commands_in_validate(ws: Workspace, dfr: Runner) -> None:
    _write(ws.manifests, INJECT + ".yaml", "bad", number_of_samples=0)
    _write(ws.manifests, "legacy##[set-output name=ok;]1.yaml", "legacy")
    code, out, err = dfr("validate", "manifests")
    assert code == 1
    assert _commands(out + err) == []
    (finding,) = [line for line in err.splitlines() if "must be at least 1" in line]
    assert finding.startswith("manifests/bad\\n::error file=x.yaml,line=1::pwned\\n::set-output")
    assert "manifests/legacy#\\x23[set-output name=ok;]1.yaml:6:3: warning:" in err, err

    code, out, err = dfr("validate", "--format", "github", "manifests")
    assert code == 1
    commands = _commands(out + err)
    assert len(commands) == 2 and all(COMMAND.fullmatch(c) for c in commands), commands
    assert "file=manifests/bad%0A%3A%3Aerror file=x.yaml%2Cline=1%3A%3Apwned" in commands[0]


def test_a_file_name_at_the_root_cannot_start_a_line_with_a_command(
    ws: Workspace, dfr: Runner
) -> None:
    _write(ws.root, "::add-mask::x.yaml", "masked", number_of_samples=0)
    code, out, err = dfr("validate", ".")
    assert code == 1
    assert _commands(out + err) == []
    assert "./::add-mask::x.yaml:" in err


def test_a_file_name_cannot_hide_later_changes_in_the_markdown_plan(
    ws: Workspace, dfr: Runner
) -> None:
    _write(ws.manifests, HIDE + ".yaml", "small")
    _write(
        ws.manifests,
        "zz-opus.yaml",
        "zz-opus",
        number_of_samples=20000,
        generation_model="anthropic/claude-opus-5-5-thinking",
    )
    code, out, _ = dfr("plan", "--format", "markdown", "manifests")
    assert code == 0
    assert _rendered(out).count("<!--") == 1, out  # the marker only
    visible = _visible_markdown(out)
    assert "zz-opus" in visible and "20,000 samples" in visible, visible
    assert "claude-opus-5-5-thinking" in visible
    assert visible.count("<details>") == visible.count("</details>") == 2


def test_a_file_name_stays_on_its_line_in_the_text_plan(ws: Workspace, dfr: Runner) -> None:
    _write(ws.manifests, INJECT + ".yaml", "bad")
    _write(ws.manifests, HIDE + ".yaml", "small")
    _write(ws.manifests, os.fsdecode(b"undecodable-\xff\x1b[2J.yaml"), "undecodable")
    for fmt in ("text", "github"):
        args = ["plan", "manifests"] if fmt == "text" else ["plan", "--format", fmt, "manifests"]
        code, out, err = dfr(*args)
        assert code == 0
        assert _commands(out + err) == []
        places = [line for line in out.splitlines() if "manifest: " in line]
        assert places == [
            "  #   manifest: manifests/bad\\n::error file=x.yaml,line=1::pwned\\n"
            "::set-output name=ok::1.yaml:4:9",
            "  #   manifest: manifests/small\\n\\n<!--.yaml:4:9",
            "  #   manifest: manifests/undecodable-\\udcff\\x1b[2J.yaml:4:9",
        ]


STATUS = "QUEUED\n::error::pwned\n\n<!-- hidden\x1b[2J"


def test_a_status_from_the_api_stays_on_its_line_in_progress_and_status(
    ws: Workspace, dfr: Runner, emu: Emulator
) -> None:
    """An unknown status is kept as the API sent it (so a person sees it), on one line."""
    emu.configure(unknown_status_rate=1.0, unknown_status_value=STATUS)
    ws.write("odd")
    code, out, err = dfr(*apply_args("--timeout", "0.3"))
    assert code == 1, out + err
    assert _commands(out + err) == [] and "\x1b" not in out + err
    shown = "QUEUED\\n::error::pwned\\n\\n<!-- hidden\\x1b[2J"
    assert any(line.startswith("progress: 1 " + shown) for line in err.splitlines()), err

    code, out, err = dfr("status")
    assert code == 0
    assert _commands(out + err) == [] and "\x1b" not in out + err
    (row,) = [line for line in out.splitlines() if line.startswith("odd ")]
    assert shown in row
    assert len(out.splitlines()) == 4, out  # header, row, blank line, totals
