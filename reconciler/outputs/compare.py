"""Does an output folder hold what state recorded? Pure: the folder comes in as a listing.

`Seen` is one recorded file as found on disk (`reconciler.outputs.scan` reads
them); `check_folder(record, listing)` says, for a run's `OutputsRecord`, which
`FolderState` its folder is in, and which files are missing or modified.

Files in the folder that no record lists are not dfr's: they never make a
folder differ (a pull leaves them in place).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from reconciler.state.model import OutputsRecord

__all__ = ["FolderCheck", "FolderState", "Seen", "check_folder"]


class FolderState(str, enum.Enum):
    """What a run's output folder holds against its record."""

    PULLED = "pulled"  # every recorded file is there, with its size and sha256
    MISSING = "missing"  # none is modified, but one (or the whole folder) is gone
    MODIFIED = "modified"  # one has other bytes, or is not a plain file now (folder, link)
    NOT_PULLED = "not pulled"  # nothing was ever recorded for the run


@dataclass(frozen=True, slots=True)
class Seen:
    """One file as found: `regular` False for a folder, a link or a device;
    `sha256` None when it was not read (its size already differs)."""

    size: int
    sha256: str | None
    regular: bool = True


@dataclass(frozen=True, slots=True)
class FolderCheck:
    state: FolderState
    missing: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        """The folder does not hold what was recorded (never pulled counts as not)."""
        return self.state in (FolderState.MISSING, FolderState.MODIFIED)

    @property
    def summary(self) -> str:
        """`2 missing, 1 modified` / `pulled` / `not pulled`."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing")
        if self.modified:
            parts.append(f"{len(self.modified)} modified")
        return ", ".join(parts) or self.state.value


def check_folder(record: OutputsRecord | None, listing: Mapping[str, Seen] | None) -> FolderCheck:
    """Compare a run's recorded files with what the folder holds.

    `listing`: the recorded paths found (a path absent from it is missing);
    None when the folder itself does not exist.
    """
    if record is None:
        return FolderCheck(FolderState.NOT_PULLED)
    found = listing or {}
    missing: list[str] = []
    modified: list[str] = []
    for file in record.files:
        seen = found.get(file.path)
        if seen is None:
            missing.append(file.path)
        elif not seen.regular or seen.size != file.size or seen.sha256 != file.sha256:
            modified.append(file.path)
    if modified:
        state = FolderState.MODIFIED
    elif missing or listing is None:
        state = FolderState.MISSING
    else:
        state = FolderState.PULLED
    return FolderCheck(state, tuple(missing), tuple(modified))
