"""`python -m reconciler.cli.precommit [--skip-non-manifests] FILE...`: the entry of
`.pre-commit-hooks.yaml`, which runs `dfr pre-commit` (`reconciler.commands.precommit`).

pre-commit puts the file names after the hook's own arguments, with no `--`:
everything after the leading flags is a file, even one named `--config=x.yaml`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

_FLAGS = ("--skip-non-manifests", "--help", "-h")


def run(argv: Sequence[str]) -> int:
    """`dfr pre-commit ARGV...` through the CLI's one error handler."""
    from reconciler import cli

    args = list(argv)
    flags = []
    while args and args[0] in _FLAGS:
        flags.append(args.pop(0))
    return cli.run(["pre-commit", *flags, "--", *args])


def main() -> NoReturn:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
