"""Whether each run's output folder holds what state recorded, for `dfr status`.

`reconciler.views.status` shows a DATA column (and `status --json` a `data`
object per run) from the `FolderCheck`s `reconciler.outputs.scan.check_records`
read: `pulled`, `missing`, `modified`; `-` for a run with no recorded pull.
Status reads state only, so it cannot tell a run whose manifest declares
`outputs:` from one that does not: `dfr plan` shows which need a `pull`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.outputs.compare import FolderCheck
from reconciler.state.model import RunRecord
from reconciler.textsafe import one_line

__all__ = ["data_cell", "data_json", "data_notes"]


def data_cell(record: RunRecord, checks: Mapping[str, FolderCheck]) -> str:
    """The DATA cell of a run."""
    check = checks.get(record.name)
    return "-" if check is None else check.state.value


def data_json(record: RunRecord, checks: Mapping[str, FolderCheck]) -> dict[str, Any]:
    """`{"state", "path", "missing", "modified"}` of a run (state null: nothing to say)."""
    check = checks.get(record.name)
    cell = data_cell(record, checks)
    return {
        "state": None if cell == "-" else cell,
        "path": record.outputs.path if record.outputs is not None else None,
        "missing": list(check.missing) if check is not None else [],
        "modified": list(check.modified) if check is not None else [],
    }


def data_notes(records: Sequence[RunRecord], checks: Mapping[str, FolderCheck]) -> list[str]:
    """One line per run whose folder differs from state, with what to do about it."""
    out = []
    for record in records:
        check = checks.get(record.name)
        if check is None or not check.differs or record.outputs is None:
            continue
        out.append(
            one_line(
                f"{record.name}: {record.outputs.path} differs from state ({check.summary});"
                f" `dfr pull {record.name}` writes it again"
            )
        )
    return out
