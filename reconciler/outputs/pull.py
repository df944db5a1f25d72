"""Pulling runs' files into their output folders: the orchestration (I/O).

`Puller.pull(targets)` pulls each target (a manifest name, its recorded run
and its `outputs:`), runs side by side, and at most `parallelism` downloads
at once across all of them. For one run:

1. a swap a crash interrupted is finished (or seen done) and recorded first
   (`Staging.recover`);
2. a folder that already holds what state recorded for this very run, path and
   patterns is left alone ("up to date"), without asking the API;
3. otherwise the run's `generated_files` are read from the API, checked
   (`select.select_files`: no hostile name is ever written) and selected by the
   manifest's globs; files verified by an interrupted pull of the same run are
   reused, unchanged files of the current folder are linked (their recorded
   sha256 re-checked), the rest downloaded and verified (`download`);
4. the user's own files in the folder are carried over, the new folder is
   marked ready and swapped in (`staging`), and the lock of the data (an
   `OutputsRecord`) is recorded through `record(name, outputs)`.

A run that fails keeps its verified files in staging for the next pull and
leaves its folder untouched; the other runs go on. `cancel` (set on Ctrl-C)
stops every download at its next chunk and every run before its swap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reconciler import hooks
from reconciler.api.files import FileHost
from reconciler.errors import DfrError
from reconciler.outputs.compare import check_folder
from reconciler.outputs.download import Cancelled, Downloader
from reconciler.outputs.needs import pull_reason
from reconciler.outputs.scan import folder_of, listing, seen_file
from reconciler.outputs.select import Wanted, check_complete, name_problem, select_files
from reconciler.outputs.staging import Staging, Verified
from reconciler.state.model import SUCCEEDED, OutputFile, OutputsRecord, RunRecord, utc_now

if TYPE_CHECKING:
    from reconciler.api.client import DataframerClient
    from reconciler.outputs.hashcache import HashCache

__all__ = ["PullObserver", "PullResult", "PullTarget", "Puller"]

PULLED, CURRENT, FAILED, SKIPPED = "pulled", "up to date", "failed", "skipped"
#: Runs prepared (listed, staged, waiting to swap) per download slot.
RUNS_PER_SLOT = 4


@dataclass(frozen=True, slots=True)
class PullTarget:
    name: str
    record: RunRecord
    outputs: Any  # reconciler.manifests.Outputs: path, files (globs), keeps(path)


@dataclass(slots=True)
class PullResult:
    name: str
    outcome: str  # pulled, up to date, failed, skipped
    message: str = ""
    downloaded: int = 0
    reused: int = 0
    bytes: int = 0
    files: int = 0
    downloaded_bytes: int = 0  # of `bytes`, those that came over the network
    record: OutputsRecord | None = field(default=None, repr=False)


class PullObserver(Protocol):
    def run_started(self, name: str, files: int, to_download: int, size: int) -> None: ...
    def bytes_received(self, name: str, count: int) -> None: ...
    def file_done(self, name: str) -> None: ...
    def run_finished(self, result: PullResult) -> None: ...


class Puller:
    """Pulls targets with one client, one file host and a bounded pool of downloads."""

    def __init__(
        self,
        client: DataframerClient,
        host: FileHost,
        root: Path,
        *,
        record: Callable[[str, OutputsRecord], None],
        observer: PullObserver,
        parallelism: int = 4,
        cancel: threading.Event | None = None,
        cache: HashCache | None = None,
    ) -> None:
        self._client = client
        self._root = root
        self._record = record
        self._observer = observer
        self._parallelism = max(1, parallelism)
        self.cancel = cancel if cancel is not None else threading.Event()
        self._downloader = Downloader(
            client, host, cancel=self.cancel, on_bytes=observer.bytes_received
        )
        self._files: ThreadPoolExecutor | None = None
        self._cache = cache  # digests of unchanged files (reconciler.outputs.hashcache)

    def pull(self, targets: Sequence[PullTarget]) -> list[PullResult]:
        """Pull every target; one result each, in the order given."""
        if not targets:
            return []
        # A run's thread mostly waits (for the API, then for its downloads): more runs
        # than download slots are prepared at once, so that a freed slot always finds
        # a listed file, never a run still waiting for a thread. Downloads stay
        # bounded by `parallelism`; the API client bounds its own connections.
        runs_at_once = min(RUNS_PER_SLOT * self._parallelism, len(targets))
        with (
            ThreadPoolExecutor(self._parallelism, thread_name_prefix="dfr-pull-file") as files,
            ThreadPoolExecutor(runs_at_once, thread_name_prefix="dfr-pull-run") as runs,
        ):
            self._files = files
            futures = [runs.submit(self._guarded, t) for t in targets]
            try:
                return [f.result() for f in futures]
            except BaseException:
                self.cancel.set()  # Ctrl-C: stop downloads at their next chunk
                raise

    def _guarded(self, target: PullTarget) -> PullResult:
        # A message may quote the API's answers (a file's path, its id): an answer
        # that echoes the key must not carry it into the output.
        try:
            result = self._pull_one(target)
        except DfrError as exc:
            result = PullResult(target.name, FAILED, self._client.redact(exc.message))
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            message = self._client.redact(f"{exc.strerror or exc}{where}")
            result = PullResult(target.name, FAILED, message)
        self._observer.run_finished(result)
        return result

    def _pull_one(self, target: PullTarget) -> PullResult:
        name, record, outputs = target.name, target.record, target.outputs
        if record.run_id is None or record.status != SUCCEEDED:
            why = "no run is recorded" if record.run_id is None else f"its run is {record.status}"
            return PullResult(name, SKIPPED, f"{why}; nothing to pull")
        folder = folder_of(self._root, outputs.path)
        staging = Staging(folder)
        recovered = staging.recover()
        if recovered is not None:
            self._record(name, recovered)
            staging.discard()
            record = replace(record, outputs=recovered)
        if self._is_current(record, outputs):
            assert record.outputs is not None
            return PullResult(name, CURRENT, files=len(record.outputs.files), record=record.outputs)
        return self._fetch_run(name, record, outputs, folder, staging)

    def _is_current(self, record: RunRecord, outputs: Any) -> bool:
        pulled = record.outputs
        if pulled is None:
            return False
        folder = folder_of(self._root, pulled.path)
        check = check_folder(pulled, listing(folder, pulled, self._cache))
        return pull_reason(record, outputs, check) is None

    def _fetch_run(
        self, name: str, record: RunRecord, outputs: Any, folder: Path, staging: Staging
    ) -> PullResult:
        assert record.run_id is not None
        run = self._client.get_run(record.run_id)
        if run.status != SUCCEEDED:
            raise DfrError(f"run {name}: the API says run {record.run_id} is {run.status}")
        run_id = record.run_id.lower()
        listed = [(f.path, f.id, f.size_bytes, f.sha256) for f in run.generated_files]
        check_complete(name, [path for path, *_ in listed], _pulled_paths(record, run_id))
        wanted = select_files(name, listed, outputs.keeps)
        verified = staging.open(run_id, wanted)
        reused = len(verified)
        todo: list[Wanted] = []
        for want in wanted:
            if want.path in verified:
                continue
            linked = self._link_unchanged(record, run_id, want, staging)
            if linked is not None:
                verified[want.path] = linked
                reused += 1
            else:
                todo.append(want)
        size = sum(w.size or 0 for w in todo)
        self._observer.run_started(name, len(wanted), len(todo), size)
        fetched = self._download(name, run_id, todo, staging)
        for entry in fetched:
            verified[entry.path] = entry
        result = self._swap_in(name, record, outputs, staging, wanted, verified, reused, len(todo))
        result.downloaded_bytes = sum(e.size for e in fetched)
        return result

    def _link_unchanged(
        self, record: RunRecord, run_id: str, want: Wanted, staging: Staging
    ) -> Verified | None:
        """Link a file of the current folder that the same run wrote and nobody changed."""
        pulled = record.outputs
        if pulled is None or (pulled.run_id or "").lower() != run_id:
            return None
        known = pulled.by_path().get(want.path)
        if known is None or known.file_id != want.file_id:
            return None
        if want.size is not None and known.size != want.size:
            return None
        old_folder = folder_of(self._root, pulled.path)
        if not self._holds(old_folder, want.path, known.size, known.sha256):
            return None
        entry = Verified(run_id, want.file_id, want.path, known.size, known.sha256)
        staging.link_from(old_folder / want.path, entry)
        self._observer.file_done(record.name)
        return entry

    def _is_run_file(self, folder: Path, path: str, entry: Verified | None) -> bool:
        """Whether the file no pull recorded at `path` already holds exactly the run's
        file there (downloaded by hand before dfr, say): replacing it loses nothing."""
        if entry is None:
            return False  # a case or file-or-folder clash: not the same file
        return self._holds(folder, path, entry.size, entry.sha256)

    def _holds(self, folder: Path, path: str, size: int, sha256: str) -> bool:
        """Whether `path` below `folder` is a regular file of that size and sha256
        (through the digest cache: an unchanged file is not read again)."""
        seen = seen_file(folder, path, size, self._cache)
        return seen is not None and seen.regular and seen.sha256 == sha256

    def _download(
        self, name: str, run_id: str, todo: Sequence[Wanted], staging: Staging
    ) -> list[Verified]:
        assert self._files is not None
        # Largest first: the big files set how long a pull takes, so they start at
        # once and the small ones fill the gaps.
        order = sorted(todo, key=lambda want: -(want.size or 0))
        futures: list[Future[Verified]] = [
            self._files.submit(self._download_one, name, run_id, want, staging) for want in order
        ]
        done: list[Verified] = []
        failure: BaseException | None = None
        for future in futures:
            try:
                done.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - the first failure is raised below
                failure = failure or exc
                for other in futures:
                    other.cancel()  # not started yet: not needed any more
        if failure is not None:
            raise failure
        return done

    def _download_one(self, name: str, run_id: str, want: Wanted, staging: Staging) -> Verified:
        entry = self._downloader.fetch(name, run_id, want, staging)
        self._observer.file_done(name)
        return entry

    def _swap_in(
        self,
        name: str,
        record: RunRecord,
        outputs: Any,
        staging: Staging,
        wanted: Sequence[Wanted],
        verified: dict[str, Verified],
        reused: int,
        downloaded: int,
    ) -> PullResult:
        if self.cancel.is_set():
            raise Cancelled("interrupted")
        tracked = set(record.outputs.by_path()) if record.outputs is not None else set()
        left_out = [
            path
            for path in staging.carry_over(tracked, [w.path for w in wanted])
            if not self._is_run_file(staging.folder, path, verified.get(path))
        ]
        if left_out:  # never replaced: a pull deletes no file it did not write
            more = f" and {len(left_out) - 1} more" if len(left_out) > 1 else ""
            raise DfrError(
                f"run {name}: {outputs.path}/{left_out[0]}{more} is yours (no pull wrote it)"
                " and a file of the run goes there; move it away, then pull again (nothing"
                " was changed; the verified files wait in staging)"
            )
        files = tuple(OutputFile(v.path, v.size, v.sha256, v.file_id) for v in verified.values())
        pulled = OutputsRecord(outputs.path, files, utc_now(), record.run_id, tuple(outputs.files))
        staging.mark_ready(pulled)
        hooks.hit("pull-before-swap")
        staging.swap()
        hooks.hit("pull-swapped")
        self._record(name, pulled)
        staging.discard()
        size = sum(f.size for f in files)
        return PullResult(
            name,
            PULLED,
            downloaded=downloaded,
            reused=reused,
            bytes=size,
            files=len(files),
            record=pulled,
        )


def _pulled_paths(record: RunRecord, run_id: str) -> tuple[str, ...]:
    """The paths an earlier pull of run `run_id` recorded (none for another run; none
    that a pull would never write: a hand-edited state's)."""
    pulled = record.outputs
    if pulled is None or (pulled.run_id or "").lower() != run_id:
        return ()
    return tuple(p for p in pulled.by_path() if name_problem(p) is None)
