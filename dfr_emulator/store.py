"""The emulator's runs in memory and their lifecycle (specs: `specs.py`).

A run's status is never stored as it moves; it is computed from the clock each
time the run is read (PENDING for `pending_seconds`, PROCESSING for
`processing_seconds`, then its outcome). No background thread is needed and a
manual clock makes every step reproducible. Only things that really happen to
a run are stored: its creation, a cancel, a forced status from a test.

Objects are rendered in the store's mode, fixed when it is made: as the
official SDK's models name them (default), or as the old reference page shows
them (`legacy`). See `Store._render`.

All public methods are thread-safe (one lock; every call is short).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dfr_emulator.files import RunOutput
from dfr_emulator.seeds import price_per_sample
from dfr_emulator.validation import legacy_runtime_params, runtime_params

if TYPE_CHECKING:
    from dfr_emulator.specs import Spec

PENDING = "PENDING"
PROCESSING = "PROCESSING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELED = "CANCELED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})
CANCELABLE = frozenset({PENDING, PROCESSING, "IN_PROGRESS"})

#: `list` leaves these out, as the API does.
LIST_OMITTED = ("generated_files", "runtime_params")


class ApiProblem(Exception):
    """A request the API refuses: HTTP status and JSON payload to answer with."""

    def __init__(self, status: int, payload: Any) -> None:
        super().__init__(f"{status}: {payload}")
        self.status = status
        self.payload = payload


def iso(timestamp: float) -> str:
    """ISO-8601 UTC with a `Z`, to the microsecond, as the API writes times."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Timeline:
    """Emulator time: the configured clock, scaled, plus what `advance` added.

    `wall(t)` maps an emulator time to a Unix timestamp, so `created_at` and
    `completed_at` look real and stay consistent with the lifecycle.
    """

    def __init__(self, clock: Callable[[], float], scale: float, wall_now: float) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._origin = clock()
        self._base = 0.0
        self._scale = scale
        self._wall_origin = wall_now

    def now(self) -> float:
        with self._lock:
            return self._base + (self._clock() - self._origin) * self._scale

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._lock:
            self._base += seconds

    def set_scale(self, scale: float) -> None:
        with self._lock:
            # Rebase so a new scale applies from now on, without a jump.
            now = self._clock()
            self._base += (now - self._origin) * self._scale
            self._origin = now
            self._scale = scale

    def wall(self, t: float) -> float:
        return self._wall_origin + t


@dataclass
class Run:
    """What is stored about one run; `Store.render` computes the rest."""

    id: str
    seq: int
    spec: Spec
    spec_version: int
    params: dict[str, Any]
    user_email: str
    created_t: float
    pending_s: float
    processing_s: float
    outcome: str
    failure_reason: str | None
    fail_fraction: float
    failed_share: float
    price: float
    stopped_t: float | None = None  # cancel or forced status: progress freezes here
    canceled: bool = False
    forced_status: str | None = None
    forced_reason: str | None = None

    @property
    def processing_t(self) -> float:
        return self.created_t + self.pending_s

    @property
    def end_t(self) -> float:
        return self.processing_t + self.processing_s

    def progress(self, t: float) -> float:
        """Share of the samples processed at emulator time `t`."""
        if t < self.processing_t:
            return 0.0
        if self.processing_s <= 0:
            return 1.0
        return min(1.0, (t - self.processing_t) / self.processing_s)


@dataclass(frozen=True)
class Outcome:
    """How a new run ends, decided (seeded) when it is created."""

    status: str = SUCCEEDED
    reason: str | None = None
    fail_fraction: float = 0.5
    failed_share: float = 0.01


class Store:
    def __init__(self, timeline: Timeline, *, legacy: bool = False) -> None:
        self._timeline = timeline
        self.legacy = legacy
        self._lock = threading.RLock()
        self._runs: dict[str, Run] = {}  # insertion order is creation order
        self._seq = 0

    # ----- runs ------------------------------------------------------------

    def create(
        self,
        spec: Spec,
        version: int,
        body: dict[str, Any],
        *,
        outcome: Outcome,
        pending_s: float,
        processing_s: float,
        user_email: str,
    ) -> Run:
        if self.legacy:
            params = legacy_runtime_params(body)
        else:
            params = runtime_params(body, seeded=spec.seed.dataset_id is not None)
        with self._lock:
            self._seq += 1
            run = Run(
                id=str(uuid.uuid4()),
                seq=self._seq,
                spec=spec,
                spec_version=version,
                params=params,
                user_email=user_email,
                created_t=self._timeline.now(),
                pending_s=pending_s,
                processing_s=processing_s,
                outcome=outcome.status,
                failure_reason=outcome.reason,
                fail_fraction=outcome.fail_fraction,
                failed_share=outcome.failed_share,
                price=price_per_sample(params),
            )
            self._runs[run.id] = run
            return run

    def get(self, run_id: str, spelling: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(run_id.lower())
            return None if run is None else self._render(run, spelling)

    def list(self, spelling: str, *, full: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            runs = reversed(self._runs.values())
            out = [self._render(run, spelling, files=full) for run in runs]
        if not full:
            for item in out:
                for name in LIST_OMITTED:
                    item.pop(name, None)
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def cancel(self, run_id: str, spelling: str) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(run_id.lower())
            if run is None:
                raise ApiProblem(404, {"detail": "Not found."})
            status = self._status(run, self._timeline.now())
            if status not in CANCELABLE:
                raise ApiProblem(
                    400,
                    {
                        "detail": f"Run cannot be canceled in status {status}: only PENDING or "
                        "PROCESSING runs can be canceled"
                    },
                )
            run.stopped_t = run.stopped_t if run.forced_status else self._timeline.now()
            run.forced_status = None
            run.canceled = True
            return self._render(run, spelling)

    def delete(self, run_id: str) -> bool:
        with self._lock:
            return self._runs.pop(run_id.lower(), None) is not None

    def runs_of(self, spec_id: str) -> tuple[str, ...]:
        """Ids of the runs made from spec `spec_id`, oldest first."""
        with self._lock:
            return tuple(run.id for run in self._runs.values() if run.spec.id == spec_id.lower())

    def force_status(self, run_id: str, status: str, reason: str | None) -> None:
        with self._lock:
            run = self._lookup(run_id)
            if run.stopped_t is None:
                run.stopped_t = self._timeline.now()
            run.forced_status = status
            run.forced_reason = reason

    def set_outcome(self, run_id: str, status: str, reason: str | None) -> None:
        if status not in (SUCCEEDED, FAILED):
            raise ValueError("a run's outcome is SUCCEEDED or FAILED")
        with self._lock:
            run = self._lookup(run_id)
            run.outcome = status
            failing = status == FAILED
            run.failure_reason = (reason or "Forced to fail by the emulator") if failing else None

    def output(self, run_id: str) -> tuple[str, RunOutput | None] | None:
        """A run's status and, once SUCCEEDED, what it generated; None: no such run."""
        with self._lock:
            run = self._runs.get(run_id.lower())
            if run is None:
                return None
            shown = self._render(run, PROCESSING, files=False)
        done = int(shown["samples_completed"])
        return shown["status"], _output(run, done) if shown["status"] == SUCCEEDED else None

    def _lookup(self, run_id: str) -> Run:
        run = self._runs.get(run_id.lower())
        if run is None:
            raise KeyError(f"no run {run_id} in the emulator")
        return run

    # ----- rendering -------------------------------------------------------

    def _status(self, run: Run, now: float) -> str:
        if run.forced_status is not None:
            return run.forced_status
        if run.canceled:
            return CANCELED
        if now < run.processing_t:
            return PENDING
        if now < run.end_t:
            return PROCESSING
        return run.outcome

    def _render(self, run: Run, spelling: str, *, files: bool = True) -> dict[str, Any]:
        now = self._timeline.now()
        status = self._status(run, now)
        completed_t: float | None = None
        if run.stopped_t is not None:
            # Canceled or forced: progress stops where it was.
            fraction = 1.0 if status == SUCCEEDED else run.progress(run.stopped_t)
            if status in TERMINAL:
                completed_t = run.stopped_t
        elif status in TERMINAL:
            fraction = 1.0 if status == SUCCEEDED else run.fail_fraction
            completed_t = run.end_t
        else:
            fraction = run.progress(now)
        n = int(run.params["number_of_samples"])
        processed = math.floor(n * fraction)
        failed = math.floor(processed * run.failed_share)
        wall = self._timeline.wall
        out: dict[str, Any] = {
            "id": run.id,
            "status": spelling if status == PROCESSING else status,
            "spec_id": run.spec.id,
            "spec_name": run.spec.seed.name,
            "spec_version": run.spec_version,
            "created_at": iso(wall(run.created_t)),
            "completed_at": None if completed_t is None else iso(wall(completed_t)),
            "created_by_email": run.user_email,
            "dataset_id": run.spec.seed.dataset_id,
            "dataset_name": run.spec.seed.dataset_name,
            "dataset_type": run.spec.seed.dataset_type,
            "samples_completed": processed - failed,
            "samples_failed": failed,
            "total_cost": round(processed * run.price, 4),
            "runtime_params": dict(run.params),
        }
        if self.legacy:
            # The old page's run: when it started, and why it failed. The SDK's
            # run has neither (no failure-reason field at all).
            out["started_at"] = iso(wall(run.processing_t)) if now >= run.processing_t else None
            if status == FAILED:
                reason = run.forced_reason or run.failure_reason or "Run failed"
                out["error"] = reason
                out["failure_reason"] = reason
        if status == SUCCEEDED and files:  # not for a list: it leaves them out
            generated = _output(run, processed - failed).files()
            out["generated_files"] = [file.listing() for file in generated]
        return out


def _output(run: Run, samples: int) -> RunOutput:
    seed = run.spec.seed
    return RunOutput(run.id, seed.name, samples, seed.properties)
