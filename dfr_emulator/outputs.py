"""The API routes of a run's outputs: file downloads, the ZIP, evaluations.

    GET  /api/dataframer/runs/{run_id}/files/{file_id}/download/   files.download
    GET  /api/dataframer/runs/{run_id}/files/download/             files.download_all
    GET  /api/dataframer/runs/{run_id}/evaluations/                runs.evaluations
    POST /api/dataframer/evaluations/                              evaluations.create
    GET  /api/dataframer/evaluations/{id}/                         evaluations.get

`files.download` answers `{download_url, filename, content_type}`, the URL
presigned on the file host (`fileserver`); `files.download_all` answers 202
with `{download_url: null, size_bytes: null}` while the ZIP is built
(`zip_build_polls` answers and `zip_build_seconds`), then 200 with
`{download_url, size_bytes}`. A new SUCCEEDED evaluation of the run starts a
new build (its summary is in the ZIP). An unknown run or file is 404
`{"detail": "Not found."}`; a run that has not SUCCEEDED is 400.

With `customer_hosted` the answers are data-plane pointers instead (see
`dataplane`). `EmulatorApp` owns one `Outputs` and routes these kinds to
`act`, which answers (status, payload, headers) or raises `ApiProblem`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dfr_emulator import dataplane
from dfr_emulator.config import EmulatorConfig
from dfr_emulator.evaluations import (
    DEFAULT_EVALUATION_MODEL,
    ERROR_MESSAGES,
    SUCCEEDED,
    Evaluation,
    Evaluations,
    list_item,
    new_evaluation,
    render,
    validate,
)
from dfr_emulator.faults import Dice
from dfr_emulator.files import RunOutput, archive
from dfr_emulator.fileserver import FileHost, FileHostHooks, Presigner, Ticket
from dfr_emulator.store import ApiProblem, Store, Timeline, iso

OUTPUT_KINDS = frozenset(
    {
        "files.download",
        "files.download_all",
        "runs.evaluations",
        "evaluations.create",
        "evaluations.get",
        "dataplane.token",
        "dataplane.grants",
    }
)
#: ZIPs kept for their URLs; an older one's URL answers 404 NoSuchKey.
KEPT_ARCHIVES = 8
Answer = tuple[int, Any, dict[str, str]]
NOT_FOUND = {"detail": "Not found."}


@dataclass
class _Build:
    """A ZIP being made: for which evaluation, since when, how often asked for."""

    evaluation_id: str | None
    started_t: float
    polls: int = 0
    key: str | None = None  # the object key once built


class Outputs:
    """Files, ZIPs and evaluations of the emulator's runs, and the file host serving them."""

    def __init__(
        self,
        store: Store,
        timeline: Timeline,
        dice: Dice,
        take: Callable[[str], bool],
        config: Callable[[], EmulatorConfig],
    ) -> None:
        self.store = store
        self.timeline = timeline
        self.dice = dice
        self.take = take
        self.config = config
        self.presigner = Presigner(timeline.now)
        self.evaluations = Evaluations()
        self._lock = threading.Lock()
        self._builds: dict[str, _Build] = {}
        self._archives: OrderedDict[str, bytes] = OrderedDict()
        self.plane = dataplane.DataPlane(self)
        hooks = FileHostHooks(
            presigner=self.presigner,
            resolve=self.resolve,
            take=take,
            settings=lambda: (config().truncate_after_bytes, config().api_key),
            latency=lambda: config().download_latency,
            gateway=self.plane.gateway,
        )
        self.file_host = FileHost(hooks)

    # ----- routes ------------------------------------------------------------

    def act(
        self, kind: str, args: dict[str, str], body: bytes, headers: Mapping[str, str]
    ) -> Answer:
        cfg = self.config()
        if kind == "files.download":
            return self._file(args["id"], args["file_id"], headers, cfg)
        if kind == "files.download_all":
            output = self.succeeded(args["id"])
            if cfg.customer_hosted:
                return self.plane.archive_pointer(output, headers)
            return self.archive(output, cfg)
        if kind == "runs.evaluations":
            if self.store.output(args["id"]) is None:
                raise ApiProblem(404, NOT_FOUND)
            now = self.timeline.now()
            items = [list_item(e, now, self._iso) for e in self.evaluations.of_run(args["id"])]
            return 200, items, {}
        if kind == "evaluations.create":
            return 201, self._create_evaluation(body, cfg), {}
        if kind == "evaluations.get":
            found = self.evaluations.get(args["id"])
            if found is None:
                raise ApiProblem(404, NOT_FOUND)
            return 200, render(found, self.timeline.now(), self._iso), {}
        return self.plane.act(kind, body, cfg)

    def succeeded(self, run_id: str) -> RunOutput:
        """What a SUCCEEDED run generated; 404 for no such run, 400 for one not done."""
        found = self.store.output(run_id)
        if found is None:
            raise ApiProblem(404, NOT_FOUND)
        status, output = found
        if output is None:
            detail = f"Run {run_id} has no generated files: it is {status}, not SUCCEEDED"
            raise ApiProblem(400, {"detail": detail})
        return output

    def _file(
        self, run_id: str, file_id: str, headers: Mapping[str, str], cfg: EmulatorConfig
    ) -> Answer:
        output = self.succeeded(run_id)
        file = output.file(file_id)
        if file is None:
            raise ApiProblem(404, NOT_FOUND)
        if cfg.customer_hosted:
            return self.plane.file_pointer(output, file, headers)
        url = self.presign(f"runs/{output.run_id}/{file.path}", output, file.id, file.filename)
        return (
            200,
            {"download_url": url, "filename": file.filename, "content_type": file.file_type},
            {},
        )

    def presign(self, key: str, output: RunOutput, file_id: str | None, filename: str) -> str:
        """A URL on the file host for a file (or, `file_id` None, a built ZIP)."""
        cfg = self.config()
        file = output.file(file_id) if file_id else None
        expired = self.take("expired_urls")
        if expired:
            self.file_host.stats.injected("expired_url")
        return self.presigner.issue(
            key,
            run_id=output.run_id,
            file_id=file_id,
            filename=filename,
            content_type=file.file_type if file else "application/zip",
            ttl=cfg.download_url_ttl,
            expired=expired,
        )

    # ----- the ZIP -------------------------------------------------------------

    def archive(self, output: RunOutput, cfg: EmulatorConfig) -> Answer:
        """202 while the ZIP of `output` is being built, then 200 with its URL and size."""
        ready = self.ready_archive(output, cfg)
        if ready is None:
            return 202, {"download_url": None, "size_bytes": None}, {"Retry-After": "1"}
        url, size = ready
        return 200, {"download_url": url, "size_bytes": size}, {}

    def ready_archive(self, output: RunOutput, cfg: EmulatorConfig) -> tuple[str, int] | None:
        """Count one request for the ZIP: (its URL, its size) once built, else None."""
        key = self.archive_key(output, cfg)
        if key is None:
            return None
        with self._lock:
            data = self._archives.get(key)
        if data is None:  # pushed out by newer ZIPs meanwhile: build it again
            return None
        return self.presign(key, output, None, f"{output.run_id}.zip"), len(data)

    def archive_key(self, output: RunOutput, cfg: EmulatorConfig) -> str | None:
        """Count one request for the ZIP; its object key once built, else None."""
        evaluation = self.latest_evaluation(output.run_id)
        evaluation_id = evaluation["id"] if evaluation else None
        now = self.timeline.now()
        with self._lock:
            build = self._builds.get(output.run_id)
            if build is None or build.evaluation_id != evaluation_id:
                build = self._builds[output.run_id] = _Build(evaluation_id, now)
            build.polls += 1
            if build.polls <= cfg.zip_build_polls or now - build.started_t < cfg.zip_build_seconds:
                return None
            if build.key is not None and build.key in self._archives:
                return build.key
        data = archive(output, evaluation)
        tag = (evaluation_id or "none")[:8]
        key = f"runs/{output.run_id}/archive/{output.run_id}-{tag}.zip"
        with self._lock:
            build.key = key
            self._archives[key] = data
            self._archives.move_to_end(key)
            while len(self._archives) > KEPT_ARCHIVES:
                self._archives.popitem(last=False)
        return key

    def latest_evaluation(self, run_id: str) -> dict[str, Any] | None:
        """The newest SUCCEEDED evaluation of a run, rendered, or None."""
        now = self.timeline.now()
        for evaluation in self.evaluations.of_run(run_id):
            if evaluation.status(now) == SUCCEEDED:
                return render(evaluation, now, self._iso, full=True)
        return None

    # ----- what the file host serves ----------------------------------------

    def resolve(self, ticket: Ticket) -> bytes | None:
        """The bytes of a presigned URL, or None if its run, file or ZIP is gone."""
        found = self.store.output(ticket.run_id)
        if found is None or found[1] is None:
            return None
        output = found[1]
        if ticket.file_id is None:
            with self._lock:
                return self._archives.get(ticket.key)
        file = output.file(ticket.file_id)
        return None if file is None else output.content(file)

    # ----- evaluations --------------------------------------------------------

    def _create_evaluation(self, raw: bytes, cfg: EmulatorConfig) -> dict[str, Any]:
        body, errors = validate(raw)
        if body is None:
            raise ApiProblem(422, {"detail": errors})
        output = self.succeeded(str(body["run_id"]))
        failing = self.take("evaluation_fail_next") or self.dice.roll(
            "evaluation_fail", cfg.evaluation_fail_rate
        )
        evaluation = new_evaluation(
            output,
            model=str(body.get("evaluation_model", DEFAULT_EVALUATION_MODEL)),
            user_email=cfg.user_email,
            now=self.timeline.now(),
            pending_s=cfg.evaluation_pending_seconds,
            processing_s=cfg.evaluation_processing_seconds,
            error=self.dice.choice("evaluation_error", ERROR_MESSAGES) if failing else None,
            gap=cfg.evaluation_gap,
            hosted=cfg.customer_hosted,
        )
        self.evaluations.add(evaluation)
        return render(evaluation, self.timeline.now(), self._iso)

    def rendered(self) -> list[dict[str, Any]]:
        """Every evaluation as GET shows it, newest first (tests, `/_emulator/evaluations`)."""
        now = self.timeline.now()
        return [render(e, now, self._iso) for e in self.evaluations.all()]

    def evaluation(self, evaluation_id: str) -> Evaluation | None:
        return self.evaluations.get(evaluation_id)

    def _iso(self, t: float) -> str:
        return iso(self.timeline.wall(t))

    # ----- lifecycle ------------------------------------------------------------

    def start(self, port: int) -> str:
        return self.file_host.start(port)

    def stop(self) -> None:
        self.file_host.stop()
