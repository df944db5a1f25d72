"""README and docs/ say what dfr does: the claims that once disagreed with its behaviour."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _state_doc() -> str:
    """docs/state.md: README's State sections until issue 15."""
    return (ROOT / "docs" / "state.md").read_text(encoding="utf-8")


def test_readme_names_the_postgres_extra_that_the_error_message_asks_for() -> None:
    """The backend's error says `pip install 'dataframer-reconciler[postgres]'`; README,
    where people look first, never named the extra."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^\[project\.optional-dependencies\]\npostgres = ", pyproject, re.M)
    source = (ROOT / "reconciler" / "state" / "postgres.py").read_text()
    assert "pip install 'dataframer-reconciler[postgres]'" in source
    section = _state_doc().split("### The PostgreSQL backend", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"pip install '?dataframer-reconciler\[postgres\]'?", section), section
