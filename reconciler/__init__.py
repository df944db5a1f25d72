"""dataframer-reconciler: config-as-code for Dataframer generation runs.

Import nothing heavy here: `dfr --version` must start in well under 0.15 s.
"""

from __future__ import annotations

__version__ = "0.1.0"


def main() -> None:
    """The `dfr` console script.

    The CLI module is imported here, inside the handler, so that a Ctrl-C that
    arrives while Python is still loading modules ends with exit 130 and one
    line, not a traceback.
    """
    import sys

    try:
        from reconciler.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    cli_main()
