"""`reconciler.textsafe` and every renderer fed hostile text (hypothesis).

The hostile strings mix what breaks outputs (newlines, `::set-output`, `<!--`,
backtick fences, `%`, `:` and `,` in workflow-command properties, terminal
escapes, bidirectional overrides, lone surrogates from undecodable file
names, Markdown punctuation) with arbitrary text. They go in as file names,
manifest and run names, run ids, statuses, failure reasons, API messages,
reasons and field values. Each renderer's output must keep the shape it has
for harmless text ("x" in every slot): as many lines, the same workflow
commands, the same HTML, no control character, no line a GitHub runner would
execute.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler import diagnostics as diag
from reconciler import textsafe
from reconciler.apply import ApplyReport
from reconciler.plan import Action, Change, FieldChange, Plan, PlanOptions
from reconciler.render import render_apply_report, render_plan
from reconciler.state.model import RunRecord
from reconciler.views import github, gitlab, markdown, status

FRAGMENTS = [
    "\n",
    "\r",
    "\r\n",
    "\n\n",
    "::set-output name=x::y",
    "::error file=a,line=1::b",
    "::",
    "##[set-output name=x;]y",
    "##[",
    "#",
    "<!--",
    "-->",
    "`",
    "```",
    "~~~",
    "%",
    "%0A",
    ":",
    ",",
    "\t",
    "\x1b[2J",
    "\x00",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u202e",
    "\udcff",
    "<details>",
    "</details>",
    "</summary>",
    "<script>",
    "&lt;",
    "# ",
    "- ",
    "1. ",
    "*",
    "_",
    "|",
    "[a](b)",
    "\\",
    " ",
]
#: Never empty: an empty value can legitimately drop a line ("no manifest place").
HOSTILE = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), min_size=1, max_size=8
).map(lambda parts: "h" + "".join(parts))
#: Control characters, separators, bidi controls and surrogates: never in any output.
UNSAFE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
COMMAND = re.compile(r"::(error|warning)( [a-z]+=[^:,\r\n]*(,[a-z]+=[^:,\r\n]*)*)?::[^\r\n]*")
NOW = "2026-01-01T00:00:00Z"


def _commands(text: str) -> list[str]:
    """Lines GitHub's runner executes: `::cmd` at the start (v2), `##[cmd]` anywhere (v1)."""
    return [line for line in text.splitlines() if line.lstrip().startswith("::") or "##[" in line]


def _check_plain(text: str, harmless: str) -> None:
    """Plain text: same line count as for harmless input, nothing unsafe, no commands."""
    assert not UNSAFE.search(text), ascii(text)
    assert len(text.split("\n")) == len(harmless.split("\n")), (text, harmless)
    assert _commands(text) == []


# -- textsafe itself ---------------------------------------------------------------------


@given(HOSTILE)
@example("a\u2028b\x1b[0m\udcff")
@example("###[x]")
def test_one_line_is_one_printable_line(text: str) -> None:
    out = textsafe.one_line(text)
    assert "\n" not in out and "\r" not in out and not UNSAFE.search(out)
    assert "##[" not in out  # the runner's legacy command syntax, read anywhere in a line
    out.encode("utf-8")  # a lone surrogate would not encode
    assert textsafe.one_line(out) == out


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))))
def test_one_line_leaves_ordinary_text_alone(text: str) -> None:
    if not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", text):
        assert textsafe.one_line(text) == text


@given(HOSTILE)
def test_github_escaping_decodes_back_and_leaves_no_separator(text: str) -> None:
    data, prop = textsafe.github_data(text), textsafe.github_property(text)
    assert not re.search("[\r\n]", data) and not re.search("[\r\n:,]", prop)
    if text.isprintable() or not UNSAFE.search(text.replace("\n", "").replace("\r", "")):
        # GitHub's runner decodes %25, %0D, %0A (and %3A, %2C in properties).
        def decode(s: str) -> str:
            for code, char in (
                ("%0D", "\r"),
                ("%0A", "\n"),
                ("%3A", ":"),
                ("%2C", ","),
                ("%25", "%"),
            ):
                s = s.replace(code, char)
            return s

        assert decode(prop) == text


@pytest.mark.parametrize(
    ("text", "code"),
    [("a", "`a`"), ("a`b", "``a`b``"), ("``", "``` `` ```"), ("a\nb", "`a\\nb`")],
)
def test_md_code(text: str, code: str) -> None:
    assert textsafe.md_code(text) == code


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<!-- x -->", "&lt;!-- x --&gt;"),
        ("*a* _b_ `c` [d](e)", "\\*a\\* \\_b\\_ \\`c\\` \\[d\\](e)"),
        ("- item", "\\- item"),
        ("12. item", "12\\. item"),
        ("a\n\nb", "a\\\\n\\\\nb"),
    ],
)
def test_md_text(text: str, escaped: str) -> None:
    assert textsafe.md_text(text) == escaped


def test_line_start_keeps_a_path_from_starting_a_command() -> None:
    assert textsafe.line_start("::error::x.yaml") == "./::error::x.yaml"
    assert textsafe.line_start(" ::x") == "./ ::x"
    assert textsafe.line_start("manifests/::x") == "manifests/::x"
    assert textsafe.line_start("/abs/::x") == "/abs/::x"


# -- every renderer ----------------------------------------------------------------------


def _record(h: Callable[[str], str], name: str, **fields: Any) -> RunRecord:
    return RunRecord(name=name, updated_at=NOW, **fields)


def _plan(h: Callable[[str], str]) -> tuple[Plan, dict[str, RunRecord]]:
    """One change of each kind, every free-text slot filled by `h(slot)`."""
    body = {"spec_id": h("spec_id"), "number_of_samples": 10, "generation_model": h("model")}
    failed = _record(
        h,
        h("failed-name"),
        run_id=h("failed-id"),
        status="FAILED",
        failure_reason=h("reason"),
        spec=body,
    )
    running = _record(h, h("replace-name"), run_id=h("replace-id"), status=h("status"), spec=body)
    orphan = _record(h, h("orphan-name"), run_id=h("orphan-id"), status=h("orphan-status"))
    changes = (
        Change(
            h("create-name"),
            Action.CREATE,
            body=body,
            reasons=(h("create-reason"),),
            where=h("file") + ":4:9",
        ),
        Change(
            h("replace-name"),
            Action.REPLACE,
            body=body,
            prior=running,
            fields=(FieldChange("generation_model", h("before"), h("after")),),
            reasons=(h("replace-reason"),),
            where=h("file2") + ":1:1",
            cancel_prior=True,
        ),
        Change(h("failed-name"), Action.NOOP, prior=failed, failed=True, where=h("file3") + ":1:1"),
        Change(h("orphan-name"), Action.ORPHAN, prior=orphan, reasons=(h("orphan-reason"),)),
        Change(h("pruned"), Action.ORPHAN, prior=orphan, prune=True),
    )
    plan = Plan(changes, "lineage", 1, "digest", PlanOptions(prune=False))
    return plan, {r.name: r for r in (failed, running, orphan)}


def _both(value: str, render: Callable[[Callable[[str], str]], str]) -> tuple[str, str]:
    """The output for hostile text in every slot, and for harmless text ("x" + slot)."""
    return render(lambda slot: value + slot), render(lambda slot: "x" + slot)


@given(HOSTILE)
def test_diagnostics_as_text_and_annotations(value: str) -> None:
    def text(h: Callable[[str], str]) -> str:
        out = io.StringIO()
        found = [diag.error(h("message"), h("file"), 3, 4, code="schema")]
        found.append(diag.warning(h("warning"), h("file2"), code="x"))
        diag.write_text(found, out)
        github.write_diagnostics(found, io.StringIO(), out)  # plain lines on the log
        gitlab.write_code_quality(found, io.StringIO(), out)
        return out.getvalue()

    _check_plain(*_both(value, text))

    found = [diag.error(value, value, 3, 4, code="schema"), diag.warning(value, value, code="x")]
    commands = io.StringIO()
    github.write_diagnostics(found, commands)
    diag.write_github(found, commands)
    lines = commands.getvalue().splitlines()
    assert len(lines) == 4 and all(COMMAND.fullmatch(line) for line in lines), lines
    assert "##[" not in commands.getvalue()

    report = io.StringIO()
    gitlab.write_code_quality(found, report, io.StringIO())
    issues = json.loads(report.getvalue())
    assert [i["description"] for i in issues] == [value, value]  # data kept as it is


@given(HOSTILE)
def test_text_plan_and_apply_report(value: str) -> None:
    def text(h: Callable[[str], str]) -> str:
        plan, records = _plan(h)
        report = ApplyReport(
            desired=[c.name for c in plan.changes if c.action is not Action.ORPHAN],
            rejected={h("rejected"): h("rejection")},
            unresolved={h("unresolved"): h("unknown")},
            records=records,
        )
        return render_plan(plan, show_noop=True) + render_apply_report(report, state_name="s")

    _check_plain(*_both(value, text))


@given(HOSTILE)
def test_plan_annotations(value: str) -> None:
    def text(h: Callable[[str], str]) -> str:
        out = io.StringIO()
        github.write_annotations(github.plan_annotations(_plan(h)[0]), out)
        return out.getvalue()

    hostile, harmless = _both(value, text)
    assert len(hostile.splitlines()) == len(harmless.splitlines())
    assert all(COMMAND.fullmatch(line) for line in hostile.splitlines()), hostile


@given(HOSTILE)
@example("small\n\n<!--")
@example("</summary></details><!--")
def test_markdown_plan(value: str) -> None:
    from markdown_it import MarkdownIt

    def html(h: Callable[[str], str]) -> str:
        rendered: str = MarkdownIt("commonmark").render(markdown.render_plan_markdown(_plan(h)[0]))
        return rendered

    hostile, harmless = _both(value, html)
    # No tag, comment or entity of the hostile text's making: the same HTML structure.
    assert hostile.count("<") == harmless.count("<"), hostile
    assert hostile.count("<!--") == 1
    assert hostile.count("<details>") == hostile.count("</details>") == 5
    assert hostile.count("\n") == harmless.count("\n")


@given(HOSTILE)
def test_status_table_and_notes(value: str) -> None:
    def text(h: Callable[[str], str]) -> str:
        out = io.StringIO()
        records = list(_plan(h)[1].values())
        records.append(
            _record(h, h("long"), run_id=h("id"), status=h("s"), spec={"spec_id": h("v")})
        )
        status.write_status(records, out, now=datetime(2026, 1, 2, tzinfo=timezone.utc), long=True)
        return out.getvalue()

    _check_plain(*_both(value, text))


@given(HOSTILE)
def test_progress_lines(value: str) -> None:
    from reconciler.progress import PlainProgress

    def text(h: Callable[[str], str]) -> str:
        plan, records = _plan(h)
        err = io.StringIO()
        progress = PlainProgress(plan, records, err, interval=1e-9)
        progress.say(f"{h('name')}: not submitted: {h('message')}")
        progress.waiting(list(records.values()))
        progress.status_changed(records[h("replace-name")], records[h("replace-name")])
        progress.polled(list(records.values()))
        return err.getvalue()

    _check_plain(*_both(value, text))


def test_md_text_never_mentions_anyone() -> None:
    from reconciler.textsafe import md_text

    text = md_text("ping @octocat and @my-org/team")
    assert "@octocat" not in text and "@my-org" not in text
    assert text == "ping @\u200boctocat and @\u200bmy-org/team"
