"""Running a program from a test to its end, its output captured as text.

`run_text` is `subprocess.run` as the tests call it: output captured and
decoded, a time limit (a hang is a failure), and the exit code left for the
test to judge.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def run_text(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    **extra: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in `cwd` with exactly `env`; `extra` goes to `subprocess.run` as is."""
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **extra,
    )
