"""Durations: the one parser of '90', '90s', '15m', '2h', '1h30m' for flags, variables and dfr.yaml.

Every duration a user gives (`--lock-timeout`, `--timeout`, `--poll-interval`,
`poll_interval:`/`timeout:` in dfr.yaml, DFR_RECOVERY_GRACE) goes through
`parse_duration`, so one limit holds everywhere: at most `MAX_SECONDS` (366
days). Longer is refused rather than passed on, because past it the values stop
meaning anything and start breaking things: a float overflow, a thread wait
that Python refuses, a server setting out of range.
"""

from __future__ import annotations

import math
import re

from reconciler.errors import UsageError

__all__ = ["MAX_SECONDS", "parse_duration"]

#: The longest duration dfr accepts: 366 days (8784h).
MAX_SECONDS = 366 * 24 * 3600

# ASCII digits only ([0-9], not \d: int() reads other scripts' digits too).
_DURATION = re.compile(
    r"^\s*(?:([0-9]+)h)?\s*(?:([0-9]+)m)?\s*(?:([0-9]+(?:\.[0-9]+)?)s?)?\s*$", re.ASCII
)
#: More digits than this in one part is over the limit whatever the unit
#: (and keeps int() below Python's digit limit).
_MAX_DIGITS = 12
_FORMS = "use seconds or forms like 90s, 15m, 2h, 1h30m"


def parse_duration(value: str | float | None, what: str | None = None) -> float | None:
    """Seconds for '90', '90s', '15m', '2h', '1h30m' or a number; None for None or 0 (no limit).

    `what` (e.g. "--lock-timeout") starts the message of the UsageError raised
    for anything else, or for more than MAX_SECONDS.
    """
    if value is None:
        return None
    prefix = f"{what}: " if what else ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isnan(value) or value < 0:
            raise UsageError(f"{prefix}invalid duration {value!r}: {_FORMS}")
        return _bounded(float(value), value, prefix)
    text = str(value)
    match = _DURATION.match(text)
    if not text.strip() or not match or not any(match.groups()):
        raise UsageError(f"{prefix}invalid duration {text!r}: {_FORMS}")
    hours, minutes, seconds = match.groups()
    if any(part and len(part.split(".")[0]) > _MAX_DIGITS for part in match.groups()):
        return _bounded(math.inf, text, prefix)
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    return _bounded(total, text, prefix)


def _bounded(seconds: float, shown: object, prefix: str) -> float | None:
    if seconds > MAX_SECONDS:
        raise UsageError(
            f"{prefix}{shown!r} is too long: at most {MAX_SECONDS // 3600}h "
            f"({MAX_SECONDS // 86400} days)"
        )
    return seconds or None
