"""`dfr emulator`'s options are generated from `EmulatorConfig`'s fields, so a knob
added to the emulator is a flag without copying it by hand (issue 15, item 2)."""

from __future__ import annotations

import dataclasses

import click

from dfr_emulator.config import EmulatorConfig
from reconciler.cli import cli
from reconciler.cli.emulator import OVERRIDES, SKIPPED, field_docs


def emulator_options() -> dict[str, click.Option]:
    command = cli.commands["emulator"]
    with click.Context(command) as ctx:
        params = command.get_params(ctx)
    return {p.name: p for p in params if isinstance(p, click.Option) and p.name}


def test_every_field_is_an_option_with_its_default() -> None:
    options = emulator_options()
    for field in dataclasses.fields(EmulatorConfig):
        if field.name in SKIPPED:
            assert field.name not in options
            continue
        option = options[field.name]
        want = OVERRIDES.get(field.name, {}).get("default", field.default)
        assert option.default == want, field.name
        assert option.help, f"--{field.name.replace('_', '-')} has no help"


def test_the_help_comes_from_the_metadata_else_the_docstring() -> None:
    options = emulator_options()
    docs = field_docs(EmulatorConfig.__doc__ or "")
    assert options["pending_seconds"].help == docs["pending_seconds"]
    with_metadata = [f for f in dataclasses.fields(EmulatorConfig) if f.metadata.get("help")]
    for field in with_metadata:
        if "help" not in OVERRIDES.get(field.name, {}):
            assert options[field.name].help == field.metadata["help"]


def test_a_true_default_is_an_on_off_pair() -> None:
    option = emulator_options()["retry_after"]
    assert option.is_flag and option.default is True
    assert option.secondary_opts == ["--no-retry-after"]


def test_the_generated_options_build_the_config() -> None:
    """What click parses is what EmulatorConfig takes: every option, no more."""
    command = cli.commands["emulator"]
    ctx = command.make_context(
        "emulator", ["--port", "0", "--fail-rate", "0.5", "--no-retry-after"]
    )
    knobs = dict(ctx.params)
    config = EmulatorConfig(**knobs)
    assert (config.port, config.fail_rate, config.retry_after) == (0, 0.5, False)
