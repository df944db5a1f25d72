"""`dfr emulator` and `dfr demo`.

The emulator's options are generated from `dfr_emulator.EmulatorConfig`'s fields
(their type, default and `metadata["help"]`, else the first sentence the class's
docstring gives the field), when the command is used: `dfr --version` does not
import the emulator. `OVERRIDES` holds what the command line says differently.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from typing import TYPE_CHECKING, Any

import click

from reconciler.cli.options import err, invocation, out

if TYPE_CHECKING:
    from reconciler.invocation import Invocation

#: Fields a command line cannot give.
SKIPPED = frozenset({"clock"})

#: Where `dfr emulator` differs from the dataclass: a fixed port by default, the key
#: from the environment, the choices and ranges click checks.
OVERRIDES: dict[str, dict[str, Any]] = {
    "port": {
        "type": click.IntRange(0, 65535),
        "default": 8080,
        "help": "Port on 127.0.0.1 (0 picks a free one).",
    },
    "api_key": {
        "envvar": "DFR_EMULATOR_API_KEY",
        "help": "Accept only this bearer token (default: any non-empty token).",
    },
    "page_size": {"type": click.IntRange(min=0)},
    "status_spelling": {"type": click.Choice(["PROCESSING", "IN_PROGRESS"])},
}

_TYPES: dict[Any, Any] = {int: int, float: float, str: str}


class GeneratedOptions(click.Command):
    """A command whose options come from a dataclass, built on first use."""

    def __init__(self, *args: Any, config: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config = config
        self._generated = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._generated:
            self._generated = True
            self.params = [*options_of(_load(self._config)), *self.params]
        return super().get_params(ctx)


def _load(path: str) -> type:
    import importlib

    module, _, name = path.rpartition(".")
    found: type = getattr(importlib.import_module(module), name)
    return found


def options_of(config: type) -> list[click.Option]:
    """One click option per field of the dataclass `config` (SKIPPED aside)."""
    hints = typing.get_type_hints(config)
    docs = field_docs(config.__doc__ or "")
    options = []
    for field in dataclasses.fields(config):
        if field.name in SKIPPED:
            continue
        flag = "--" + field.name.replace("_", "-")
        settings: dict[str, Any] = {
            "default": field.default,
            "show_default": field.default is not None,
            "help": field.metadata.get("help") or docs.get(field.name),
        }
        kind = _plain(hints[field.name])
        if kind is bool:
            settings["show_default"] = True
            decls = [flag if not field.default else f"{flag}/--no-{flag[2:]}"]
            settings["is_flag"] = True
        else:
            decls = [flag]
            settings["type"] = _TYPES.get(kind, str)
        settings.update(OVERRIDES.get(field.name, {}))
        options.append(click.Option(decls, **settings))
    return options


def _plain(hint: Any) -> Any:
    """`float | None` -> float; other hints unchanged."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 else hint


def field_docs(doc: str) -> dict[str, str]:
    """The first sentence the docstring's `name: text` entries give each field."""
    found: dict[str, str] = {}
    entry = re.compile(r"^\s+([a-z0-9_]+(?: / [a-z0-9_]+)*): (.*)$")
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        match = entry.match(line)
        if match is None:
            continue
        text = match.group(2)
        for more in lines[i + 1 :]:
            if not more.strip() or entry.match(more):
                break
            text += " " + more.strip()
        sentence = re.split(r"(?<=[a-z)])[.;] ", text + " ")[0].strip().rstrip(".")
        for name in match.group(1).split(" / "):
            found.setdefault(name, sentence[:1].upper() + sentence[1:] + ".")
    return found


@click.command(cls=GeneratedOptions, config="dfr_emulator.config.EmulatorConfig")
@invocation(project="none")
def emulator(inv: Invocation, **knobs: Any) -> int:
    """Serve a local Dataframer-compatible API on 127.0.0.1 until stopped.

    It answers as the official SDK (pydataframer 0.19.2) describes the API;
    --legacy answers as the old reference page did. Every flag is a knob of
    `dfr_emulator.EmulatorConfig`; the fault knobs are seeded, so a run
    of faults is repeatable with the same --seed.
    """
    from reconciler.commands.emulator import EmulatorArgs, run_emulator

    return run_emulator(inv, EmulatorArgs(knobs), out(), err())


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--keep-state", metavar="FILE", help="Write the demo's state here instead of a temporary file."
)
@invocation(project="none")
def demo(inv: Invocation, paths: tuple[str, ...], keep_state: str | None) -> int:
    """Run validate, plan, apply and status on PATHS against a built-in emulator.

    Without PATHS: examples/manifests here, else the examples installed with dfr.

    No account needed: an emulator starts in this process on a free port, runs
    finish in a few seconds, and the state goes to a temporary file.
    """
    from reconciler.cli import run
    from reconciler.commands.emulator import DemoArgs, run_demo

    args = DemoArgs(paths, keep_state)
    return run_demo(inv, args, out(), err(), dfr=run)


COMMANDS = (emulator, demo)
