"""`dfr pull [NAME...]`: SUCCEEDED runs' files into their manifests' `outputs.path`.

For every named manifest with an `outputs:` section (all of them when none is
named) whose recorded run SUCCEEDED: download what is missing or changed,
verified, swap each run's new folder in whole, and record the lock of the data
(each file's path, size, sha256) in state (`reconciler.outputs.pull`).

`dfr pull --check` reads no API and writes nothing: exit 1 when a folder lacks
or differs from what state recorded (or was never pulled, or holds another
run's files), printing each differing file; for CI, "the committed data is
what the run produced".

Exit: 0 every run pulled or up to date; 1 on any failure or difference (and
for a named manifest whose run has nothing to pull yet); 130/143 when
interrupted (verified files are kept for the next pull).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, UsageError
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.engine.session import Session
    from reconciler.invocation import Invocation
    from reconciler.manifests import Manifest
    from reconciler.outputs.progress import PlainPullProgress
    from reconciler.outputs.pull import PullResult
    from reconciler.state.model import OutputsRecord, State


@dataclass(frozen=True, slots=True)
class PullArgs:
    names: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # where the manifests are (default: the project's)
    check: bool = False
    progress: bool | None = None  # None: a live display when stderr is a terminal
    switch_api: bool = False


def selected(manifests: Sequence[Manifest], names: Sequence[str]) -> list[Manifest]:
    """The manifests with `outputs:` to pull: those named (each must exist and have
    an `outputs:` section), or all of them when none is named."""
    by_name = {m.name: m for m in manifests}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise UsageError(f"no manifest is named {', '.join(map(repr, unknown))}")
    bare = [n for n in names if getattr(by_name[n], "outputs", None) is None]
    if bare:
        raise UsageError(
            f"{', '.join(map(repr, bare))} has no outputs: section; add one"
            " (outputs: {path: data/NAME}) to say where its files go"
        )
    if names:
        return [by_name[n] for n in dict.fromkeys(names)]
    return [m for m in manifests if getattr(m, "outputs", None) is not None]


def run(inv: Invocation, args: PullArgs, out: TextIO, err: TextIO) -> int:
    """`dfr pull`: see the module docstring."""
    from reconciler.engine.loading import load_manifests

    chosen = selected(load_manifests(inv, args.paths, err), args.names)
    if not chosen:
        out.write("No manifest has an outputs: section; nothing to pull.\n")
        return EXIT_OK
    if args.check:
        return check(inv, chosen, out)
    from reconciler.engine import session
    from reconciler.engine.client import check_api

    with session(inv, "pull") as s:
        check_api(s.store.state, s.client, switch=args.switch_api, store=s.store)
        return pull_into_folders(inv, s, chosen, args, out, err)


def check(inv: Invocation, manifests: Sequence[Manifest], out: TextIO) -> int:
    """`dfr pull --check`: compare the folders with state; 1 when any differs."""
    from reconciler.engine.backends import open_backend
    from reconciler.outputs.needs import pulls_needed
    from reconciler.outputs.scan import check_folders

    state = open_backend(inv).read()
    checks = check_folders(inv.project.root(), manifests, state)
    needs = pulls_needed(manifests, state, checks)
    for need in needs:
        out.write(f"{one_line(need.name)}: {one_line(need.path)}: {one_line(need.reason)}\n")
        found = checks.get(need.name)
        for path in () if found is None else found.missing:
            out.write(f"  missing:  {one_line(path)}\n")
        for path in () if found is None else found.modified:
            out.write(f"  modified: {one_line(path)}\n")
    if needs:
        out.write(f"{len(needs)} output folder(s) differ from state; `dfr pull` writes them.\n")
        return EXIT_ERROR
    matched = sum(1 for m in manifests if _pulled(state, m.name))
    out.write(f"{matched} output folder(s) match state.\n")
    return EXIT_OK


def _pulled(state: State, name: str) -> bool:
    record = state.get(name)
    return record is not None and record.outputs is not None


def pull_into_folders(
    inv: Invocation,
    s: Session,
    manifests: Sequence[Manifest],
    args: PullArgs,
    out: TextIO,
    err: TextIO,
) -> int:
    """Pull `manifests`' runs with the session's client and store (also `apply --pull`)."""
    from reconciler.outputs.pull import FAILED, SKIPPED, PullTarget

    targets, exit_code = [], EXIT_OK
    for manifest in manifests:
        record = s.store.get(manifest.name)
        if record is None:
            err.write(f"{one_line(manifest.name)}: no run is recorded; nothing to pull\n")
            exit_code = EXIT_ERROR if args.names else exit_code
            continue
        targets.append(PullTarget(manifest.name, record, manifest.outputs))
    cancel = threading.Event()
    results, signals = _pull(inv, s, targets, cancel, args, err)
    for result in results:
        if result.outcome == FAILED or (result.outcome == SKIPPED and args.names):
            exit_code = EXIT_ERROR
    _summary(results, out)
    if cancel.is_set() and signals:
        err.write("interrupted: verified files are kept; the next pull goes on from there\n")
        return EXIT_TERMINATED if signal.SIGTERM in signals else EXIT_INTERRUPTED
    return exit_code


def _pull(
    inv: Invocation,
    s: Session,
    targets: list[Any],
    cancel: threading.Event,
    args: PullArgs,
    err: TextIO,
) -> tuple[list[PullResult], list[int]]:
    from reconciler.api.config import timeouts
    from reconciler.api.files import FileHost
    from reconciler.commands.apply import _stop_on_signals
    from reconciler.outputs.pull import Puller

    lock = threading.Lock()

    def record(name: str, pulled: OutputsRecord) -> None:
        with lock:
            current = s.store.get(name)
            if current is not None:
                s.store.put(current.evolve(outputs=pulled))

    from reconciler.outputs.hashcache import HashCache

    observer = _observer(args, err)
    cache = HashCache.open(disabled=inv.no_cache)
    with (
        FileHost(timeout=timeouts(60.0), pool_size=inv.parallelism) as host,
        _stop_on_signals(cancel.set) as signals,
        observer,
    ):
        puller = Puller(
            s.client,
            host,
            inv.project.root(),
            record=record,
            observer=observer,
            parallelism=inv.parallelism,
            cancel=cancel,
            cache=cache,
        )
        try:
            return puller.pull(targets), signals
        finally:
            cache.flush()


def _observer(args: PullArgs, err: TextIO) -> PlainPullProgress:
    import os

    from reconciler.outputs.progress import LivePullProgress, PlainPullProgress

    live = args.progress
    if live is None:
        live = err.isatty() and not os.environ.get("NO_COLOR")
    return LivePullProgress(err) if live else PlainPullProgress(err)


def _summary(results: Sequence[PullResult], out: TextIO) -> None:
    from reconciler.outputs.pull import CURRENT, FAILED, PULLED

    counts = {o: sum(1 for r in results if r.outcome == o) for o in (PULLED, CURRENT, FAILED)}
    downloaded = sum(r.downloaded for r in results)
    out.write(
        f"Pull: {counts[PULLED]} pulled, {counts[CURRENT]} up to date, {counts[FAILED]} failed"
        f" ({downloaded} files downloaded).\n"
    )
