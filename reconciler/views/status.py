"""The `dfr status` table: name, run id, status, samples, cost, age, with totals.

On a terminal (and without NO_COLOR) it is a rich table with coloured
statuses; anywhere else plain, aligned text with no escape codes, so pipes,
scripts and tests see stable output. Either way the table is followed by the
totals and one line per run that needs attention: a FAILED or CANCELED run
with the API's reason and the command that resubmits it, an unconfirmed
submission with how it gets resolved.

Sorting (`--sort`): name (default); status (attention first: FAILED, CANCELED,
GONE, UNCONFIRMED, NOT SUBMITTED, then PENDING, PROCESSING, SUCCEEDED, others);
cost (highest first); age (oldest first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TextIO

from reconciler.outputs.compare import FolderCheck
from reconciler.state.model import RunRecord
from reconciler.textsafe import one_line

SORTS = ("name", "status", "cost", "age")
HEADER = ("NAME", "RUN ID", "STATUS", "SAMPLES", "COST", "AGE")
_STATUS_RANK = {
    s: i
    for i, s in enumerate(
        (
            "FAILED",
            "CANCELED",
            "GONE (404)",
            "UNCONFIRMED",
            "NOT SUBMITTED",
            "PENDING",
            "PROCESSING",
            "SUCCEEDED",
        )
    )
}
_STYLE = {
    "FAILED": "bold red",
    "CANCELED": "red",
    "GONE (404)": "red",
    "UNCONFIRMED": "magenta",
    "NOT SUBMITTED": "red",
    "PENDING": "yellow",
    "PROCESSING": "cyan",
    "SUCCEEDED": "green",
}


def display_status(record: RunRecord) -> str:
    if record.intent is not None and not record.run_id:
        return "UNCONFIRMED"
    if record.drift:
        return "GONE (404)"
    if not record.run_id:
        return "NOT SUBMITTED" if record.last_error else "-"
    # An unknown status is shown as the API sent it, on one line.
    return one_line(record.status) if record.status else "UNKNOWN"


def _when(stamp: str | None) -> datetime | None:
    from reconciler.recovery import parse_time

    return parse_time(stamp)


def age(stamp: str | None, now: datetime) -> str:
    when = _when(stamp)
    if when is None:
        return "-"
    seconds = max(0, int((now - when).total_seconds()))
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Row:
    record: RunRecord
    status: str
    samples: str
    cost: str
    age: str
    data: str | None = None  # the DATA column (reconciler.views.data_status), when shown

    @property
    def cells(self) -> tuple[str, ...]:
        r = self.record
        name, run_id = one_line(r.name), one_line(r.run_id or "-")
        cells = (name, run_id, self.status, self.samples, self.cost, self.age)
        return cells if self.data is None else (*cells, self.data)


def _samples(r: RunRecord) -> str:
    if r.samples_completed is None:
        return "-"
    requested = r.spec.get("number_of_samples")
    text = f"{r.samples_completed:,}"
    if isinstance(requested, int):
        text += f"/{requested:,}"
    if r.samples_failed:
        text += f" ({r.samples_failed:,} failed)"
    return text


def rows(records: Sequence[RunRecord], now: datetime) -> list[Row]:
    return [
        Row(
            r,
            display_status(r),
            _samples(r),
            "-" if r.total_cost is None else f"${r.total_cost:,.2f}",
            age(r.submitted_at or r.updated_at, now),
        )
        for r in records
    ]


def sort_rows(table: list[Row], by: str) -> list[Row]:
    table = sorted(table, key=lambda row: row.record.name)
    keys: dict[str, Callable[[Row], Any]] = {
        "name": lambda row: 0,
        "status": lambda row: (_STATUS_RANK.get(row.status, len(_STATUS_RANK)), row.status),
        "cost": lambda row: -(row.record.total_cost or 0.0),
        "age": lambda row: (
            _when(row.record.submitted_at or row.record.updated_at)
            or datetime.max.replace(tzinfo=timezone.utc)
        ),
    }
    return sorted(table, key=keys[by])  # stable: ties stay in name order


def totals(table: Sequence[Row]) -> str:
    n = len(table)
    done = sum(row.record.samples_completed or 0 for row in table)
    failed = sum(row.record.samples_failed or 0 for row in table)
    cost = sum(row.record.total_cost or 0.0 for row in table)
    by_status: dict[str, int] = {}
    for row in table:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    statuses = ", ".join(
        f"{count} {status.lower()}"  # lower case: the table's words stay countable
        for status, count in sorted(
            by_status.items(), key=lambda item: (_STATUS_RANK.get(item[0], 99), item[0])
        )
    )
    failed_text = f" ({failed:,} failed)" if failed else ""
    return (
        f"{n} run{'s' if n != 1 else ''}, {done:,} samples{failed_text}, ${cost:,.2f} ({statuses})."
    )


def shared_runs(records: Sequence[RunRecord]) -> dict[str, list[str]]:
    """Run ids recorded under more than one name (ids in any letter case), with the
    names: all but one of those manifests have no run of their own."""
    names: dict[str, list[str]] = {}
    for r in sorted(records, key=lambda r: r.name):
        if r.run_id:
            names.setdefault(r.run_id.lower(), []).append(r.name)
    return {run_id: found for run_id, found in names.items() if len(found) > 1}


def shared_note(run_id: str, names: Sequence[str]) -> str:
    """What to do about one run recorded under `names`."""
    quoted = [repr(n) for n in names]
    listed = ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return one_line(
        f"run {run_id} is recorded for {listed}: one run, {len(names)} manifests. Keep it "
        "where it belongs and `dfr state rm` the other names; `dfr apply` then submits "
        "their runs"
    )


def notes(table: Sequence[Row]) -> list[str]:
    """One line per run that needs attention, with what to do about it."""
    out = [
        shared_note(run_id, names)
        for run_id, names in shared_runs([row.record for row in table]).items()
    ]
    for row in table:
        r = row.record
        if r.status in ("FAILED", "CANCELED") and r.run_id and not r.drift:
            out.append(
                one_line(
                    f"{r.name}: run {r.run_id} ended {r.status}{r.end_note}; "
                    f"resubmit with: dfr apply --replace {r.name}"
                )
            )
        elif r.intent is not None and not r.run_id:
            out.append(
                f"{r.name}: a submission is unconfirmed; `dfr refresh` or `dfr apply` "
                "looks for its run"
            )
        elif r.drift:
            out.append(
                one_line(
                    f"{r.name}: run {r.run_id} no longer exists in the API; "
                    "`dfr apply` submits it again"
                )
            )
    return out


def _header(table: Sequence[Row]) -> tuple[str, ...]:
    return HEADER if not table or table[0].data is None else (*HEADER, "DATA")


def write_plain(table: Sequence[Row], out: TextIO) -> None:
    header = _header(table)
    lines = [header, *(row.cells for row in table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        out.write("\n")


def write_rich(table: Sequence[Row], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(box=None, pad_edge=False, header_style="bold")
    for title in _header(table):
        grid.add_column(title, justify="right" if title in ("SAMPLES", "COST", "AGE") else "left")
    for row in table:
        # Text, not str: rich reads "[...]" in a string as markup, and a run id or
        # status from the API may hold brackets ("[/x]" is even an error).
        cells = [Text(cell) for cell in row.cells]
        cells[2] = Text(row.status, style=_STYLE.get(row.status, ""))
        grid.add_row(*cells)
    Console(file=out, highlight=False).print(grid)


def use_rich(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _cell(value: Any) -> str:
    if value is _ABSENT:
        return "-"
    return one_line(value if isinstance(value, str) else json.dumps(value))


_ABSENT = object()


def field_lines(record: RunRecord) -> list[str]:
    """Each create field as sent and as the API reports it used, one aligned line each.

    `-` under SENT: the manifest left it to the API; `-` under USED: not read yet
    (or not reported). `null` under USED: the API says it does not apply.
    """
    order = list(record.spec) + [k for k in record.used if k not in record.spec]
    if not order:
        return []
    cells = [("FIELD", "SENT", "USED")] + [
        (
            one_line(key),
            _cell(record.spec.get(key, _ABSENT)),
            _cell(record.used.get(key, _ABSENT)),
        )
        for key in order
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(2)]
    return [f"{c[0].ljust(widths[0])}  {c[1].ljust(widths[1])}  {c[2]}".rstrip() for c in cells]


def write_status(
    records: Sequence[RunRecord],
    out: TextIO,
    *,
    sort: str = "name",
    now: datetime | None = None,
    long: bool = False,
    data: Mapping[str, FolderCheck] | None = None,
) -> None:
    """The table, the totals and the notes for `records` on `out`; with `long`, each
    run's fields as sent and as used. `data`: the output folders' checks, for a
    DATA column (shown when given)."""
    table = sort_rows(rows(records, now or datetime.now(timezone.utc)), sort)
    if data is not None:
        from reconciler.views.data_status import data_cell

        table = [replace(row, data=data_cell(row.record, data)) for row in table]
    if use_rich(out):
        write_rich(table, out)
    else:
        write_plain(table, out)
    out.write("\n" + totals(table) + "\n")
    for line in notes(table):
        out.write(line + "\n")
    if data is not None:
        from reconciler.views.data_status import data_notes

        for line in data_notes([row.record for row in table], data):
            out.write(line + "\n")
    if long:
        for row in table:
            out.write(
                f"\n{one_line(row.record.name)} ({one_line(row.record.run_id or 'no run')}):\n"
            )
            for line in field_lines(row.record):
                out.write(f"  {line}\n")
            from reconciler.views.evaluate_plan import status_lines

            for line in status_lines(row.record):
                out.write(f"  {line}\n")
