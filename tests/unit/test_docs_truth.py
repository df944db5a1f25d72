"""docs/commands.md says what the real `dfr` takes: every command, every option with its
spelling, its environment variable and the defaults the page quotes, read from click's
own definitions (no network, no subprocess)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS_MD = ROOT / "docs" / "commands.md"


def commands(
    group: click.Group = cli, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """(path, command) of every command, hidden ones included, groups walked."""
    with click.Context(group) as ctx:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, name
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))
            else:
                yield (*path, name), command


def options(command: click.Command) -> list[click.Option]:
    with click.Context(command) as ctx:
        params = command.get_params(ctx)
    return [p for p in params if isinstance(p, click.Option)]


def option(path: str, name: str) -> click.Option:
    command = dict(commands())[tuple(path.split())]
    found = [o for o in options(command) if name in o.opts + o.secondary_opts]
    assert len(found) == 1, (path, name)
    return found[0]


def mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


DOC = COMMANDS_MD.read_text(encoding="utf-8")
ALL = list(commands())


def test_the_walk_finds_the_subcommands_and_the_hidden_hook() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"apply", "state migrate", "state rm", "pre-commit", "emulator"} <= names
    assert len(names) >= 19, names


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=" ".join)
def test_every_command_is_named_in_commands_md(path: tuple[str, ...]) -> None:
    """`dfr NAME`; a subcommand as `dfr GROUP` and `GROUP NAME` (`state show NAME`)."""
    assert mentions(DOC, f"dfr {path[0]}"), path
    assert mentions(DOC, " ".join(path)), path


@pytest.mark.parametrize(
    "path,command", ALL, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_every_option_and_its_variable_is_in_commands_md(
    path: tuple[str, ...], command: click.Command
) -> None:
    missing = []
    for opt in options(command):
        for spelling in opt.opts + opt.secondary_opts:
            if spelling not in ("-h", "--help") and not mentions(DOC, spelling):
                missing.append(spelling)
        if isinstance(opt.envvar, str) and not mentions(DOC, opt.envvar):
            missing.append(f"env {opt.envvar}")
    assert not missing, f"dfr {' '.join(path)}: docs/commands.md does not name {missing}"


def test_the_defaults_commands_md_quotes_are_the_defaults() -> None:
    assert option("apply", "--lock-timeout").default == "0"
    assert "(default `0`: fail at once" in DOC
    assert option("emulator", "--port").default == 8080
    assert "`dfr emulator --port 8080`" in DOC
    assert option("emulator", "--pending-seconds").default == 2.0
    assert option("emulator", "--processing-seconds").default == 5.0
    assert "`--pending-seconds` (default 2)" in DOC
    assert "`--processing-seconds` (default 5)" in DOC
    assert option("emulator", "--unknown-status-value").default == "QUEUED"
    assert option("status", "--sort").default == "name"
    assert option("apply", "--wait").default is True
    assert "`--wait`, the default" in DOC
    for path in ("apply", "pull"):
        help_text = option(path, "--parallelism").help or ""
        assert "parallelism in dfr.yaml, else 10" in help_text, path
    assert "(default: `parallelism` in `dfr.yaml`, else 10)" in DOC
    for path in ("apply", "plan", "pull", "refresh", "import"):
        assert "default https://df-api.dataframer.ai" in (option(path, "--api-url").help or "")
    assert "`https://df-api.dataframer.ai`" in DOC
    assert option("plan", "--state").envvar == "DFR_STATE"
    assert "`--state FILE` (env `DFR_STATE`, default `dfr.state.json`" in DOC


def test_the_commands_that_take_lock_timeout_are_the_ones_listed() -> None:
    listed = {"apply", "pull", "refresh", "import", "state rm", "state mv", "state migrate"}
    takes = {
        " ".join(path)
        for path, command in ALL
        if any("--lock-timeout" in o.opts for o in options(command))
    }
    assert takes == listed
    assert "(`apply`, `pull`, `refresh`, `import`, `state rm|mv|migrate`) takes" in DOC


def test_the_commands_that_take_switch_api_are_the_ones_listed() -> None:
    takes = {
        " ".join(path)
        for path, command in ALL
        if any("--switch-api" in o.opts for o in options(command))
    }
    assert takes == {"plan", "apply", "pull", "refresh"}
    assert "`plan`, `apply`,\n`pull` and `refresh` take `--switch-api`" in DOC


def test_the_errors_manifests_md_quotes_are_what_validate_prints() -> None:
    """docs/manifests.md's 'Errors and exit codes' block: each line is one that
    `dfr validate examples/invalid/` prints now (a line number there once drifted)."""
    import subprocess
    import sys

    text = (ROOT / "docs" / "manifests.md").read_text(encoding="utf-8")
    section = text.split("## Errors and exit codes", 1)[1]
    block = section.split("```\n", 2)[1]
    quoted = [line for line in block.splitlines() if line.strip()]
    assert len(quoted) >= 4, quoted
    result = subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", "--no-cache", "examples/invalid/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    printed = set(result.stderr.splitlines())
    missing = [line for line in quoted if line not in printed]
    assert not missing, f"dfr validate examples/invalid/ prints no such line: {missing}"


MINE = [ROOT / "README.md"] + [
    p
    for p in sorted((ROOT / "docs").glob("*.md"))
    if p.name not in ("reliability.md", "performance.md")
]


def shown_command_lines(page: Path) -> Iterator[tuple[int, list[str]]]:
    """(line, words after `dfr`) of each `dfr ...` command line in the page's code
    blocks: every line of a sh block, the `$ ` lines of the others (their output)."""
    import shlex

    fence, shell = False, False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        opened = re.match(r"^\s*(```|~~~)\s*(\w*)", line)
        if opened:
            fence, shell = not fence, opened.group(2) in ("sh", "bash", "shell")
            continue
        prompt = re.match(r"^\s*\$ ", line)
        if not fence or not (shell or prompt):
            continue
        for part in re.split(r"&&|\|\||;", line[prompt.end() if prompt else 0 :]):
            command_line = part.split(" #", 1)[0].strip()
            try:
                words = shlex.split(command_line)
            except ValueError:  # a quote closed on the next line
                words = command_line.split()
            while words and words[0] in ("pg", "env"):
                words = words[1:]
            if words and words[0].endswith("/bin/dfr"):
                words = ["dfr", *words[1:]]
            if len(words) > 1 and words[0] == "dfr":
                yield number, words[1:]


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = cli
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    return command, words


def test_the_shown_lines_are_found_in_the_pages() -> None:
    found = [words for page in MINE for _, words in shown_command_lines(page)]
    assert ["plan", "manifests/"] in found
    assert any(words[:2] == ["state", "migrate"] for words in found)
    assert ["diff", "support-tickets-baseline", "dataframer"] in found
    assert len(found) >= 12, found


@pytest.mark.parametrize("page", MINE, ids=lambda p: p.name)
def test_every_option_a_shown_command_line_uses_exists(page: Path) -> None:
    """`dfr CMD --flag` in a code block: CMD is a command and --flag one of its options."""
    wrong = []
    for number, words in shown_command_lines(page):
        command, rest = resolve(words)
        if isinstance(command, click.Group):
            wrong.append(f"{page.name}:{number}: dfr {' '.join(words)}: no such command")
            continue
        known = {s for o in options(command) for s in o.opts + o.secondary_opts}
        for word in rest:
            if word == "--":
                break
            flag = word.split("=", 1)[0]
            if flag.startswith("-") and len(flag) > 1 and flag not in known:
                wrong.append(f"{page.name}:{number}: dfr {' '.join(words)}: no option {flag}")
    assert not wrong, "\n".join(wrong)
