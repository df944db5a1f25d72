"""Parsing and checking manifest files in forked worker processes (`--jobs`).

`validate_paths` hands the files still to parse here when there are at least
`PARALLEL_MIN_FILES` of them; the outcomes come back in order, plain values, so
the result is the same as in one process.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from reconciler import schema

if TYPE_CHECKING:
    from reconciler.manifests import SourceFile
    from reconciler.policy import DocumentCheck
    from reconciler.validate import _Outcome, _Read


#: What the workers read, set in the parent just before they are forked (never pickled).
_SHARED: (
    tuple[list[SourceFile], list[_Read], list[int], bool, Sequence[DocumentCheck], tuple[str, ...]]
    | None
)
_SHARED = None


def examine_in_pool(
    sources: list[SourceFile],
    reads: list[_Read],
    todo: list[int],
    skip_non_manifests: bool,
    checks: Sequence[DocumentCheck],
    jobs: int,
    extra: tuple[str, ...] = (),
) -> Generator[_Outcome, None, None] | None:
    """The outcomes of the files `todo`, in order, from `jobs` forked workers.

    None when fork is unavailable, other threads run (forking them is unsafe) or
    the pool cannot start: the caller then parses in this process.
    """
    import threading

    if threading.active_count() > 1:
        return None
    try:
        import multiprocessing

        context = multiprocessing.get_context("fork")
    except (ImportError, ValueError):
        return None
    global _SHARED
    schema.validator(extra)  # compiled once here: the workers inherit it
    size = max(16, min(250, -(-len(todo) // (jobs * 8))))
    chunks = [(lo, min(lo + size, len(todo))) for lo in range(0, len(todo), size)]
    _SHARED = (sources, reads, todo, skip_non_manifests, checks, extra)
    try:
        pool = context.Pool(min(jobs, len(chunks)), initializer=_worker_start)
    except OSError:
        _SHARED = None
        return None
    return _collect(pool, pool.imap(_examine_chunk, chunks))


def _collect(pool: Any, results: Iterator[list[_Outcome]]) -> Generator[_Outcome, None, None]:
    global _SHARED
    try:
        for outcomes in results:
            yield from outcomes
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
        _SHARED = None


def _worker_start() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _examine_chunk(bounds: tuple[int, int]) -> list[_Outcome]:
    from reconciler.validate import _examine

    assert _SHARED is not None
    sources, reads, todo, skip_non_manifests, checks, extra = _SHARED
    return [
        _examine(sources[i], reads[i].data, skip_non_manifests, checks, extra)
        for i in todo[bounds[0] : bounds[1]]
    ]
