"""The emulated API: one request in, one `Reply` out, faults included.

This module knows routes, auth, validation and fault injection but nothing
about sockets: `server.py` reads a `Request` off the wire and carries out the
`Reply` (send it, delay it, or drop the connection unanswered). The same
object also offers the Python control API that tests use through `Emulator`.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from dfr_emulator.config import EmulatorConfig, coerce_knobs, default_clock
from dfr_emulator.faults import (
    BAD_GATEWAY,
    GARBAGE,
    WRITE_FAULTS,
    Dice,
    RateLimiter,
    Stats,
    WriteFaults,
    retry_after_header,
)
from dfr_emulator.outputs import OUTPUT_KINDS, Outputs
from dfr_emulator.routes import ADMIN_PREFIX, route
from dfr_emulator.specs import SpecApi, SpecBook
from dfr_emulator.store import (
    FAILED,
    SUCCEEDED,
    ApiProblem,
    Outcome,
    Run,
    Store,
    Timeline,
)
from dfr_emulator.validation import json_body, validate_body

#: Fields `missing_fields_rate` may take out of a run object (it only ever removes).
MISSING_FIELD_CANDIDATES = (
    "id",
    "status",
    "created_at",
    "completed_at",
    "spec_id",
    "spec_version",
    "samples_completed",
    "samples_failed",
    "total_cost",
    "runtime_params",
)

_FAILURE_REASONS = (
    "Generation model returned too many invalid samples",
    "Upstream model provider rate limit exceeded; run aborted",
    "Worker lost: out of memory while generating samples",
    "Seed examples exceed the model's context window",
)


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    client_host: str
    #: "127.0.0.1:PORT" the server listens on: the host of absolute URLs
    #: (`next` of a page) when the request has no Host header.
    server_host: str = "127.0.0.1"


@dataclass
class Reply:
    """What to do with a request: an answer, maybe late, or a dropped connection."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait after acting, before answering (hang)
    drop: bool = False  # close the connection abruptly, answering nothing

    @classmethod
    def json(cls, status: int, payload: Any, **kwargs: Any) -> Reply:
        body = b"" if payload is None else json.dumps(payload).encode()
        return cls(status=status, body=body, **kwargs)


class EmulatorApp:
    """The emulated Dataframer API and its control surface."""

    def __init__(self, config: EmulatorConfig, stopping: threading.Event) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._stopping = stopping
        self.timeline = Timeline(config.clock or default_clock, config.time_scale, time.time())
        self.store = Store(self.timeline, legacy=config.legacy)
        self.dice = Dice(config.seed)
        self.limiter = RateLimiter()
        self.stats = Stats()
        self.specs = SpecBook(self.timeline, legacy=config.legacy)
        self.spec_api = SpecApi(self.specs, self.store, self.dice, self.stats, self._take)
        self.outputs = Outputs(
            self.store, self.timeline, self.dice, self._take, lambda: self.config
        )
        self.rewrites: dict[str, Callable[[Any], Any]] = {}  # see Emulator.rewrite

    # ----- settings --------------------------------------------------------

    @property
    def config(self) -> EmulatorConfig:
        with self._lock:
            return self._config

    def configure(self, knobs: Mapping[str, Any]) -> EmulatorConfig:
        with self._lock:
            new = self._config.replace(knobs)
            old, self._config = self._config, new
        if new.seed != old.seed:
            self.dice.reseed(new.seed)
        if new.time_scale != old.time_scale:
            self.timeline.set_scale(new.time_scale)
        if new.rate_limit != old.rate_limit:
            self.limiter.reset()
        return new

    def _take(self, counter: str) -> bool:
        """Use up one of a count-down knob (`ambiguous_posts`, `fail_next`, ...)."""
        with self._lock:
            left: int = getattr(self._config, counter)
            if left <= 0:
                return False
            self._config = self._config.replace({counter: left - 1})
            return True

    # ----- dispatch --------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        split = urlsplit(request.target)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
            self.stats.admin()
            return self._admin(request.method, path.rstrip("/"), request)
        kind, route_args = route(request.method, path)
        self.stats.request(request.method, kind)
        reply = self._api(request, kind, route_args, query)
        if not reply.drop:
            self.stats.response(reply.status)
        return reply

    def _api(
        self, request: Request, kind: str, route_args: dict[str, str], query: dict[str, str]
    ) -> Reply:
        cfg = self.config
        if cfg.latency > 0:
            # Interruptible, so stop() does not wait out a long latency.
            self._stopping.wait(cfg.latency)
        if self.dice.roll("reset", cfg.reset_rate):
            self.stats.injected("reset")
            return Reply(drop=True)
        if cfg.rate_limit:
            wait = self.limiter.admit(cfg.rate_limit)
            if wait is not None:
                self.stats.injected("rate_limited")
                headers = {"Retry-After": retry_after_header(wait)} if cfg.retry_after else {}
                detail = "Request was throttled."
                return Reply.json(429, {"detail": detail}, headers=headers)
        refused = self._auth(request.headers.get("authorization"), cfg)
        if refused is not None:
            return refused
        if self.dice.roll("failure", cfg.failure_rate):
            self.stats.injected("5xx")
            return self._server_error()
        write = WRITE_FAULTS.get(kind)
        if write is not None and write.before(self.dice, self.stats, cfg):
            return self._server_error()
        try:
            reply = self._act(kind, route_args, query, request, cfg)
        except ApiProblem as problem:
            reply = Reply.json(problem.status, problem.payload)
        if write is not None and reply.status == write.success:
            after = self._after_effect(write, cfg)
            if after is not None:
                return after
        if 200 <= reply.status < 300 and reply.body:
            reply = self._rewrite(kind, self._spoil(kind, reply, cfg))
        if self.dice.roll("hang", cfg.hang_rate):
            self.stats.injected("hang")
            reply.delay = cfg.hang_seconds
        return reply

    def _auth(self, header: str | None, cfg: EmulatorConfig) -> Reply | None:
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Reply.json(
                401,
                {"detail": "Authentication credentials were not provided."},
                headers={"WWW-Authenticate": 'Bearer realm="dataframer"'},
            )
        # Constant-time compare; the token itself is never logged or echoed.
        if cfg.api_key is not None and not hmac.compare_digest(
            token.encode(), cfg.api_key.encode()
        ):
            return Reply.json(403, {"detail": "Invalid API key."})
        return None

    def _after_effect(self, write: WriteFaults, cfg: EmulatorConfig) -> Reply | None:
        """A write that took effect loses its answer (dropped) or answers 5xx anyway."""
        if self._take(write.lost_next) or self.dice.roll(
            write.lost_dice, getattr(cfg, write.lost_rate)
        ):
            self.stats.injected(write.lost_stat)
            return Reply(drop=True)
        if self.dice.roll(write.after_dice, getattr(cfg, write.after_rate)):
            self.stats.injected(write.after_stat)
            return self._server_error()
        return None

    def _server_error(self) -> Reply:
        status = self.dice.choice("5xx_status", (500, 502, 503))
        if status == 502:
            return Reply(status=502, body=BAD_GATEWAY, content_type="text/html")
        if status == 503:
            return Reply.json(503, {"detail": "Service temporarily unavailable"})
        return Reply.json(500, {"detail": "Internal server error"})

    def _act(
        self,
        kind: str,
        args: dict[str, str],
        query: dict[str, str],
        request: Request,
        cfg: EmulatorConfig,
    ) -> Reply:
        spelling = cfg.running_status
        if kind == "runs.create":
            return self._create(request.body, cfg)
        if kind == "runs.list":
            return Reply.json(200, self._paged(self.store.list(spelling), query, request, cfg))
        if kind == "runs.get":
            run = self.store.get(args["id"], spelling)
            if run is None:
                raise ApiProblem(404, {"detail": "Not found."})
            return Reply.json(200, run)
        if kind == "runs.cancel":
            run = self.store.cancel(args["id"], spelling)
            self.stats.run_event("canceled")
            return Reply.json(200, run)
        if kind == "runs.delete":
            if not self.store.delete(args["id"]):
                raise ApiProblem(404, {"detail": "Not found."})
            self.stats.run_event("deleted")
            return Reply(status=204)
        if kind == "specs.list":
            return Reply.json(200, self._paged(self.specs.list_items(), query, request, cfg))
        if kind.startswith("specs."):
            status, payload = self.spec_api.act(kind, args, query, request.body, cfg)
            return Reply.json(status, payload)
        if kind in OUTPUT_KINDS:
            status, payload, headers = self.outputs.act(kind, args, request.body, request.headers)
            return Reply.json(status, payload, headers=headers)
        if kind == "method_not_allowed":
            return Reply.json(
                405, {"detail": "Method not allowed."}, headers={"Allow": args["allow"]}
            )
        raise ApiProblem(404, {"detail": "Not found."})

    def _paged(
        self,
        items: list[dict[str, Any]],
        query: dict[str, str],
        request: Request,
        cfg: EmulatorConfig,
    ) -> Any:
        """A list answer: the plain array, or with `page_size` one Django REST page of it."""
        size = cfg.page_size
        if size <= 0:
            return items
        try:
            page = int(query.get("page", "1"))
        except ValueError:
            page = 0
        pages = max(1, -(-len(items) // size))
        if not 1 <= page <= pages:
            raise ApiProblem(404, {"detail": "Invalid page."})
        split = urlsplit(request.target)
        host = request.headers.get("host") or request.server_host

        def url(number: int) -> str:
            params = {k: v for k, v in query.items() if k != "page"}
            if number > 1:  # as DRF: the first page's link has no page parameter
                params["page"] = str(number)
            tail = f"?{urlencode(params)}" if params else ""
            return f"http://{host}{split.path}{tail}"

        return {
            "count": len(items),
            "next": url(page + 1) if page < pages else None,
            "previous": url(page - 1) if page > 1 else None,
            "results": items[(page - 1) * size : page * size],
        }

    def _create(self, raw_body: bytes, cfg: EmulatorConfig) -> Reply:
        body, errors = json_body(raw_body)
        errors = errors or validate_body(body, legacy=cfg.legacy)
        if errors:
            raise ApiProblem(422, {"detail": errors})
        spec, version = self.specs.resolve(body, accept_any=cfg.accept_any_spec)
        failing = self._take("fail_next") or self.dice.roll("fail_run", cfg.fail_rate)
        outcome = Outcome(
            status=FAILED if failing else SUCCEEDED,
            reason=self.dice.choice("failure_reason", _FAILURE_REASONS) if failing else None,
            fail_fraction=self.dice.uniform("fail_fraction", 0.05, 0.9),
            failed_share=self.dice.uniform("failed_share", 0.0, 0.03),
        )
        run = self.store.create(
            spec,
            version,
            body,
            outcome=outcome,
            pending_s=cfg.pending_seconds,
            processing_s=cfg.processing_seconds,
            user_email=cfg.user_email,
        )
        self.stats.run_event("created")
        if cfg.legacy:
            return Reply.json(201, {"id": run.id})  # the old page's create answer
        # The SDK's RunCreateResponse is the whole run, as GET shows it.
        return Reply.json(201, self._created(run, cfg))

    def _created(self, run: Run, cfg: EmulatorConfig) -> dict[str, Any]:
        shown = self.store.get(run.id, cfg.running_status)
        if shown is None:  # pragma: no cover - it was just stored
            raise ApiProblem(500, {"detail": "Internal server error"})
        return shown

    def _rewrite(self, kind: str, reply: Reply) -> Reply:
        """A JSON answer as a test's rewrite of its kind makes it (a hostile API)."""
        rewrite = self.rewrites.get(kind)
        if rewrite is None or reply.content_type != "application/json":
            return reply
        try:
            payload = json.loads(reply.body)
        except ValueError:  # a garbage answer stays garbage
            return reply
        return Reply.json(reply.status, rewrite(payload), headers=reply.headers)

    def _spoil(self, kind: str, reply: Reply, cfg: EmulatorConfig) -> Reply:
        """Apply the answer-level faults: garbage, missing fields, unknown status."""
        if self.dice.roll("garbage", cfg.garbage_rate):
            self.stats.injected("garbage")
            content_type, body = self.dice.choice("garbage_body", GARBAGE)
            return Reply(status=200, body=body, content_type=content_type, headers=reply.headers)
        if kind not in ("runs.create", "runs.get", "runs.list", "runs.cancel"):
            return reply
        if cfg.missing_fields_rate <= 0 and cfg.unknown_status_rate <= 0:
            return reply
        payload = json.loads(reply.body)
        if isinstance(payload, list):
            objects = payload
        elif kind == "runs.list":
            objects = payload["results"]  # one page
        else:
            objects = [payload]
        for obj in objects:
            # A legacy create answer is only `{"id"}`: no status to make up.
            has_status = "status" in obj
            if has_status and self.dice.roll("unknown_status", cfg.unknown_status_rate):
                self.stats.injected("unknown_status")
                obj["status"] = cfg.unknown_status_value
            if self.dice.roll("missing_fields", cfg.missing_fields_rate):
                self.stats.injected("missing_fields")
                present = [name for name in MISSING_FIELD_CANDIDATES if name in obj]
                k = min(len(present), 1 + int(self.dice.uniform("missing_count", 0, 3)))
                for name in self.dice.sample("missing_which", present, k):
                    del obj[name]
        return Reply.json(reply.status, payload, headers=reply.headers)

    # ----- admin endpoints -------------------------------------------------

    def _admin(self, method: str, path: str, request: Request) -> Reply:
        if request.client_host not in ("127.0.0.1", "::1", "localhost"):
            return Reply.json(403, {"detail": "The emulator's admin endpoints are loopback only."})
        action = path[len(ADMIN_PREFIX) :].strip("/")
        try:
            if method == "GET" and action == "stats":
                return Reply.json(200, self.stats_snapshot())
            if method == "GET" and action == "runs":
                return Reply.json(200, self.runs())
            if method == "GET" and action == "specs":
                return Reply.json(200, self.specs.all())
            if method == "GET" and action == "config":
                return Reply.json(200, self.config.knobs())
            if method == "GET" and action == "evaluations":
                return Reply.json(200, self.outputs.rendered())
            if method != "POST" or action not in _ADMIN_POSTS:
                return Reply.json(404, {"detail": f"No admin endpoint {method} {path}"})
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if action == "configure":
                return Reply.json(200, self.configure(coerce_knobs(body)).knobs())
            if action == "reset_stats":
                self.stats.reset()
                self.outputs.file_host.stats.reset()
                return Reply.json(200, {})
            if action == "force_status":
                self.force_status(str(body["run_id"]), str(body["status"]), body.get("reason"))
            elif action == "set_outcome":
                self.store.set_outcome(str(body["run_id"]), str(body["status"]), body.get("reason"))
            elif action == "forget":
                self.forget(str(body["run_id"]))
            elif action == "advance":
                self.timeline.advance(float(body["seconds"]))
            return Reply.json(200, {})
        except KeyError as exc:
            return Reply.json(400, {"detail": f"missing or unknown: {exc}"})
        except (ValueError, TypeError) as exc:
            return Reply.json(400, {"detail": str(exc)})

    # ----- Python control API (used through Emulator) ---------------------

    def runs(self) -> list[dict[str, Any]]:
        return self.store.list(self.config.running_status, full=True)

    def stats_snapshot(self) -> dict[str, Any]:
        snapshot = self.stats.snapshot()
        snapshot["runs_in_store"] = len(self.store)
        snapshot["evaluations_created"] = len(self.outputs.evaluations)
        snapshot["file_host"] = self.outputs.file_host.stats.snapshot()
        return snapshot

    def force_status(self, run_id: str, status: str, reason: str | None = None) -> None:
        self.store.force_status(run_id, status, reason)

    def forget(self, run_id: str) -> None:
        if not self.store.delete(run_id):
            raise KeyError(f"no run {run_id} in the emulator")
        self.stats.run_event("forgotten")


_ADMIN_POSTS = frozenset(
    {"configure", "reset_stats", "force_status", "set_outcome", "forget", "advance"}
)
