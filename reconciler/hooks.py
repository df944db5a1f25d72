"""Named moments of apply and of the state file, and the callbacks that may watch them.

`apply` and the local state backend call `hit(point)` at their risky moments, so
that a test can stop dfr exactly there: between a POST's answer and the state
write that records it (microseconds apart, out of reach of a timed kill), or
halfway through a journal line. The points:

    before-post      the intent is durable, the POST not sent
    after-post       the run exists, its id is not recorded yet
    after-record     the id is recorded
    before-evaluation-post  an evaluation's intent is durable, its POST not sent
    after-evaluation-post   the evaluation exists, its id is not recorded yet
    wait-round       before a status round while waiting
    before-spec-post a spec's create intent is durable, the POST not sent
    after-spec-post  the spec exists, its id is not recorded yet
    before-spec-put  a spec's update intent is durable, the PUT not sent
    after-spec-put   the new version exists, it is not recorded yet
    pull-chunk-written  a chunk of a download is in its part file (`reconciler.outputs`)
    pull-file-verified  a downloaded file is verified in staging and noted in its journal
    pull-before-swap    a run's new folder is complete and marked ready (`reconciler.outputs`)
    pull-exchanged      the new folder is in place, the old one not yet moved away
    pull-swap-halfway   (no atomic exchange) the old folder moved away, the new not in place
    pull-swapped        swapped in; the lock of the data not yet recorded in state
    journal-torn     before a journal line is appended (`half_done` writes half of it)
    checkpoint-STEP  between the steps of a state checkpoint (`reconciler.state.local`)

dfr itself registers no callback and reads no setting here, so `hit` finds
nothing and returns. The reliability tests run dfr through their own entry point
(`tests/support/crashing_dfr.py`), which registers callbacks that signal the
process at a chosen pass, then calls `reconciler.cli.run`.
"""

from __future__ import annotations

from collections.abc import Callable

#: What a point offers its callbacks: a step left half done (or None), to do first
#: when a callback stops the process there.
HalfDone = Callable[[], object] | None
Callback = Callable[[str, HalfDone], None]

_callbacks: dict[str, list[Callback]] = {}


def register(point: str, callback: Callback) -> None:
    """Call `callback(point, half_done)` at every pass through `point`, in this process."""
    _callbacks.setdefault(point, []).append(callback)


def clear() -> None:
    """Forget every callback."""
    _callbacks.clear()


def hit(point: str, half_done: HalfDone = None) -> None:
    """Pass through `point`: run its callbacks, if any (none in dfr itself)."""
    for callback in _callbacks.get(point, ()):
        callback(point, half_done)
