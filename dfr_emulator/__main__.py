"""`python -m dfr_emulator`: serve the emulator without the dfr CLI.

Every `EmulatorConfig` field is a flag (`--failure-rate 0.2`, `--api-key K`,
`--no-retry-after`). `--print-url` prints the base URL on stdout once the
port is bound, so a test can start it with `--port 0` and read where it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from dfr_emulator.config import EmulatorConfig
from reconciler.errors import EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dfr_emulator",
        description="Serve a local Dataframer-compatible API on 127.0.0.1.",
    )
    parser.add_argument("--print-url", action="store_true", help="print the base URL once bound")
    for f in dataclasses.fields(EmulatorConfig):
        if f.name == "clock":
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        elif f.type in ("float", "float | None"):
            parser.add_argument(flag, type=float, default=f.default)
        elif f.type == "int":
            parser.add_argument(flag, type=int, default=f.default)
        else:
            parser.add_argument(flag, type=str, default=f.default)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    print_url = args.pop("print_url")
    knobs: dict[str, Any] = args
    try:
        config = EmulatorConfig(**knobs)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    from dfr_emulator.server import Emulator

    emulator = Emulator(config)
    url = emulator.start()
    if print_url:
        print(url, flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
