"""dataframer-reconciler: config-as-code for Dataframer generation runs.

Import nothing heavy here: `dfr --version` must start in well under 0.15 s.
"""

from __future__ import annotations

try:
    # Written by hatch-vcs from the git tag when dfr is built or installed (editable
    # installs too); see [tool.hatch.version] in pyproject.toml.
    from reconciler._version import __version__ as __version__
except ImportError:  # a source tree that was never installed: no build wrote the file
    __version__ = "0.0.0+unknown"


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
