"""`DataframerClient`: the endpoints of the Dataframer runs and specs API.

One `httpx.Client` (one transport seam: tests hand in `httpx.MockTransport`,
acceptance tests a real emulator on 127.0.0.1) is shared by every thread of
`apply`. What the client does around each request is given to it as objects,
as httpx takes `limits=` and `timeout=`: a `RetryPolicy` (`api.retry`, which
also holds the rule of when a request may be sent again), a `Pacer` or
`PacingConfig` (`api.pacing`) and an `httpx.Timeout`. Answers become the
values of `api.models`; failures the exceptions `api.errors` maps them to.

The API key lives only in the Authorization header of the `httpx.Client`;
every message and answer is scrubbed of it, in case a server echoes it back."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from reconciler import __version__
from reconciler.api import evaluations, runfiles, specs
from reconciler.api.config import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, check_base_url, timeouts
from reconciler.api.errors import ErrorMapper, Redactor, checked_key, status_text
from reconciler.api.files import FileLink, ZipLink
from reconciler.api.models import ClientStats, Run, Spec, as_float, as_str
from reconciler.api.pacing import Pacer, PacingConfig
from reconciler.api.pool import PooledHttp
from reconciler.api.retry import (
    MAY_HAVE_ACTED,
    Outcome,
    RetryPolicy,
    Step,
    outcome_of_error,
    outcome_of_status,
    retry_after,
)
from reconciler.errors import UsageError

__all__ = ["DataframerClient", "client_from_env"]

log = logging.getLogger(__name__)

RUNS_PATH = "/api/dataframer/runs/"
SPECS_PATH = "/api/dataframer/specs/"
#: A list longer than this many pages is taken for a loop.
_MAX_PAGES = 10_000


@dataclass(frozen=True)
class _Tried:
    """One attempt at a request, as `_send` needs it."""

    outcome: Outcome
    response: httpx.Response | None
    failure: str  # what went wrong, in a few redacted words ("" when answered)
    retry_after: float | None = None
    exc: httpx.TransportError | None = None

    @property
    def status_code(self) -> int | None:
        return None if self.response is None else self.response.status_code


class DataframerClient(PooledHttp):
    """Thread-safe client of the Dataframer runs and specs API.

    `retry`: when and how patiently requests are sent again (default
    `RetryPolicy()`); `pacing`: a `Pacer` (shared state, for example with
    other clients) or a `PacingConfig`, made into a pacer on the monotonic
    clock that sleeps with `retry.sleep` (default: pause after a 429 only);
    `timeout`: httpx's (default 30 s, 10 s to connect); `pool_size`: at most
    that many connections open at once. Plain http:// is refused but to
    loopback addresses, unless `allow_insecure_http`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retry: RetryPolicy | None = None,
        pacing: Pacer | PacingConfig | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = f"dfr/{__version__}",
        pool_size: int = 32,
        allow_insecure_http: bool = False,
    ) -> None:
        api_key = checked_key(api_key)
        if pool_size < 1:
            raise UsageError(f"the connection pool size must be 1 or more, not {pool_size}")
        self.base_url = check_base_url(base_url, allow_insecure_http)
        self._retry = retry if retry is not None else RetryPolicy()
        if not isinstance(pacing, Pacer):
            pacing = Pacer.from_config(
                pacing if pacing is not None else PacingConfig(), sleep=self._retry.sleep
            )
        self._pacer = pacing
        self._errors = ErrorMapper(Redactor(api_key), self.base_url, timeout.read)
        self._key_bytes = api_key.encode()
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._retries = 0
        self._rate_limited = 0
        self._server_errors = 0
        self._transport_errors = 0
        self._backoff_seconds = 0.0
        # One pool for every thread of apply: keep-alive connections are reused
        # and at most `pool_size` are open at once.
        super().__init__(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": user_agent,
            },
            timeout=timeout,
            pool_size=pool_size,
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------

    def __repr__(self) -> str:
        return f"DataframerClient(base_url={self.base_url!r})"

    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                requests=dict(self._requests),
                retries=self._retries,
                rate_limited=self._rate_limited,
                server_errors=self._server_errors,
                transport_errors=self._transport_errors,
                waited_seconds=self._backoff_seconds + self._pacer.waited_seconds,
            )

    # -- the API -----------------------------------------------------------

    def create_run(self, body: Mapping[str, Any]) -> Run:
        """Submit a run; return it as answered (the current API answers the whole run,
        the old page's only `{"id"}`). Never sent twice unless surely refused."""
        # A 404 is about the body (the spec it names), not the URL.
        run_id, data = self._create(RUNS_PATH, dict(body), noun="run")
        return Run.from_json(data, fallback_id=run_id)

    def get_run(self, run_id: str) -> Run:
        path = self._item_path(RUNS_PATH, run_id, "run")
        data = self._get_object(path, what=f"run {run_id}")
        return Run.from_json(data, fallback_id=run_id)

    def list_runs(self) -> list[Run]:
        return [Run.from_json(item) for item in self._get_list(RUNS_PATH)]

    def cancel_run(self, run_id: str) -> None:
        path = self._item_path(RUNS_PATH, run_id, "run") + "cancel/"
        # Cancelling twice asks for the same end state: safe to retry.
        response, _ = self._send("POST", path, idempotent=True)
        self._errors.raise_for_status(response, "POST", path, what=f"run {run_id}")

    def delete_run(self, run_id: str) -> None:
        path = self._item_path(RUNS_PATH, run_id, "run")
        response, earlier_attempt_lost = self._send("DELETE", path, idempotent=True)
        if response.status_code == 404 and earlier_attempt_lost:
            # An earlier attempt whose answer was lost may have deleted it:
            # the run is gone, which is what was asked.
            return
        self._errors.raise_for_status(response, "DELETE", path, what=f"run {run_id}")

    def get_spec(self, spec_id: str, include_versions: bool = False) -> Spec:
        path = self._item_path(SPECS_PATH, spec_id, "spec")
        params = {"include_versions": "true"} if include_versions else None
        data = self._get_object(path, what=f"spec {spec_id}", params=params)
        return Spec.from_json(data, fallback_id=spec_id)

    def list_specs(self) -> list[Spec]:
        return [Spec.from_json(item) for item in self._get_list(SPECS_PATH)]

    # Specs as code (`api.specs`): a create and an update are never sent twice
    # unless surely refused; after a lost answer the caller looks first.

    def create_spec(self, body: Mapping[str, Any]) -> specs.SpecDetail:
        return specs.create_spec(self, body)

    def update_spec(self, spec_id: str, content_yaml: str) -> specs.SpecDetail:
        return specs.update_spec(self, spec_id, content_yaml)

    def get_spec_versions(self, spec_id: str) -> specs.SpecDetail:
        return specs.get_spec_versions(self, spec_id)

    def find_specs(self, name: str) -> list[Spec]:
        return specs.find_specs(self, name)

    # -- a run's generated files (reconciler.api.runfiles) -----------------

    def file_download_url(self, run_id: str, file_id: str) -> FileLink:
        """A fresh presigned URL for one file of a run (or a data-plane pointer)."""
        return runfiles.file_link(self, run_id, file_id)

    def download_all(
        self, run_id: str, *, max_polls: int = 300, poll_seconds: float = 2.0
    ) -> ZipLink:
        """The ZIP of a run's files: polls while the API answers 202 (building)."""
        return runfiles.zip_link(self, run_id, max_polls=max_polls, poll_seconds=poll_seconds)

    def follow_pointer(self, run_id: str, file_id: str) -> FileLink:
        """A customer-hosted file's URL, through the official SDK (the extra)."""
        key = self._http.headers["Authorization"].removeprefix("Bearer ")
        return runfiles.follow_pointer(self.base_url, key, run_id, file_id)

    def mentions_key(self, text: str) -> bool:
        """Whether `text` holds this client's API key (a URL must not, for another host)."""
        return self.redact(text) != text

    def redact(self, text: str) -> str:
        """`text` with this client's API key as `***` (for messages built of answers)."""
        return self._errors.redact(text)

    # -- evaluations (reconciler.api.evaluations): the create is a paid POST, never
    # sent twice unless surely refused; after a lost answer the caller lists first.

    def list_evaluations(self, run_id: str) -> list[evaluations.Evaluation]:
        return evaluations.list_evaluations(self, run_id)

    def get_evaluation(self, evaluation_id: str) -> evaluations.Evaluation:
        return evaluations.get_evaluation(self, evaluation_id)

    def create_evaluation(self, run_id: str, model: str | None = None) -> evaluations.Evaluation:
        return evaluations.create_evaluation(self, run_id, model)

    # -- answers -----------------------------------------------------------

    @staticmethod
    def _item_path(collection: str, item_id: str, kind: str) -> str:
        if not isinstance(item_id, str) or not item_id.strip():
            raise UsageError(f"a {kind} id is needed, got {item_id!r}")
        # Quote everything: an id is one path segment, never "../" or "?x".
        return f"{collection}{quote(item_id.strip(), safe='')}/"

    def _create(
        self, path: str, body: Mapping[str, Any], *, noun: str
    ) -> tuple[str, Mapping[str, Any]]:
        """POST `body` to make a new `noun` (sent once unless surely refused); its id
        and the answer. A 404 is about the body (what it names), not the URL."""
        response, _ = self._send("POST", path, json_body=body, idempotent=False, noun=noun)
        if response.status_code == 404:
            self._errors.reject(response, "POST", path)
        self._errors.raise_for_status(response, "POST", path, what=None)
        return self._created(response, "POST", path, noun=noun)

    def _created(
        self, response: httpx.Response, method: str, path: str, *, noun: str
    ) -> tuple[str, Mapping[str, Any]]:
        """The id and object of a 2xx answer to a create or update;
        CreateAnswerUnreadable (the outcome is unknown) when it names no id."""
        try:
            data = self._decoded(response)
        except ValueError:
            data = None
        new_id = as_str(data.get("id")) if isinstance(data, dict) else None
        if not new_id or not isinstance(data, dict):
            raise self._errors.create_unreadable(response, path, noun=noun, method=method)
        return new_id, data

    def _get_object(
        self, path: str, *, what: str, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any]:
        response, _ = self._send("GET", path, params=params, idempotent=True)
        self._errors.raise_for_status(response, "GET", path, what=what)
        data = self._json(response, "GET", path)
        if not isinstance(data, dict):
            raise self._errors.bad_answer(
                f"GET {path}: expected a JSON object, got {type(data).__name__}", response
            )
        return data

    def _get_list(self, path: str) -> list[Mapping[str, Any]]:
        """Every item of a list: a plain JSON array (the SDK's shape), or pages of
        `{"results": [...], "next": URL}` followed to the end."""
        items: list[Mapping[str, Any]] = []
        seen: set[str] = set()
        page: str | None = path
        while page is not None:
            if page in seen or len(seen) >= _MAX_PAGES:
                raise self._errors.bad_answer(
                    f"GET {path}: the list's pages do not end (at {page})"
                )
            seen.add(page)
            response, _ = self._send("GET", page, idempotent=True)
            self._errors.raise_for_status(response, "GET", page, what=None)
            data = self._json(response, "GET", page)
            following = None
            if isinstance(data, dict) and isinstance(data.get("results"), list):
                following = self._next_page(data.get("next"), path, response)
                data = data["results"]
            if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
                raise self._errors.bad_answer(
                    f"GET {page}: expected a JSON array of objects", response
                )
            items.extend(data)
            page = following
        return items

    def _next_page(self, link: object, path: str, response: httpx.Response) -> str | None:
        """The next page's path and query, from a `next` link; None at the end.

        Only a link to this API (same scheme, host and port as the base URL) is
        followed: the key goes with every request, and must never go elsewhere.
        """
        if link is None or link == "":
            return None
        base = httpx.URL(self.base_url)
        try:
            url = base.join(link) if isinstance(link, str) else None
        except httpx.InvalidURL:
            url = None
        if url is None or (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise self._errors.bad_answer(
                f"GET {path}: the list's next page is not on this API", response
            )
        # The client joins paths to the base URL: drop the base's own path prefix.
        prefix = base.path.rstrip("/")
        route = url.path
        if prefix and route.startswith(prefix + "/"):
            route = route[len(prefix) :]
        query = url.query.decode("ascii", "replace")
        return route + (f"?{query}" if query else "")

    def _json(self, response: httpx.Response, method: str, path: str, redact: bool = True) -> Any:
        try:
            return self._decoded(response, redact=redact)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise self._errors.not_json(response, method, path) from None

    def _decoded(self, response: httpx.Response, *, redact: bool = True) -> Any:
        """The JSON of an answer, *** where it echoes the key (so nothing read from it
        carries the key into state or output; a file link's URL is refused instead)."""
        if redact and self._key_bytes in response.content:
            return json.loads(self._errors.redact(response.text))
        return response.json()

    # -- sending -----------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        noun: str = "run",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[httpx.Response, bool]:
        """Send under the retry rule (`api.retry.next_step`); return the first
        answer that is not sent again.

        The answer returned is never a 429 or 5xx (those are retried or raised)
        but may be any other status, for the caller to map. The flag says
        whether an earlier attempt may have reached the server unseen.
        Exceptions are raised `from None`: a chained httpx exception would put
        its request (and headers) in tracebacks.
        """
        attempt = 0
        lost_answer = False  # an attempt may have reached the server unseen
        while True:
            attempt += 1
            tried = self._attempt(method, path, json_body, params, attempt, headers)
            step = self._retry.next_step(tried.outcome, idempotent=idempotent, attempt=attempt)
            if step is Step.RETURN:
                assert tried.response is not None
                return tried.response, lost_answer
            if step is Step.CANNOT_SEND:
                assert tried.exc is not None
                raise self._errors.cannot_send(method, path, tried.exc) from None
            if step is Step.OUTCOME_UNKNOWN:
                # A 5xx may come after the run was created (a crash while
                # answering, a gateway timing out on a slow app).
                raise self._errors.outcome_unknown(
                    method, path, tried.failure, tried.status_code, noun
                ) from None
            if step is Step.GIVE_UP:
                raise self._errors.gave_up(
                    method,
                    path,
                    tried.failure,
                    attempts=attempt,
                    idempotent=idempotent,
                    status_code=tried.status_code,
                    noun=noun,
                ) from None
            lost_answer = lost_answer or tried.outcome in MAY_HAVE_ACTED
            self._wait_to_retry(method, path, tried, attempt)

    def _attempt(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        attempt: int,
        headers: Mapping[str, str] | None = None,
    ) -> _Tried:
        """Send once, paced; count it and tell the pacer how it went."""
        self._pacer.acquire()
        sent_at = self._pacer.clock()
        with self._lock:
            self._requests[method] = self._requests.get(method, 0) + 1
        try:
            response = self._http.request(
                method, path, json=json_body, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            outcome = outcome_of_error(exc)
            if outcome is Outcome.UNSENDABLE:
                return _Tried(outcome, None, "", exc=exc)
            with self._lock:
                self._transport_errors += 1
            return _Tried(outcome, None, self._errors.describe(exc), exc=exc)
        log.debug("%s %s -> %s (attempt %d)", method, path, response.status_code, attempt)
        outcome = outcome_of_status(response.status_code)
        if outcome is Outcome.ANSWERED:
            self._pacer.on_success()
            return _Tried(outcome, response, "")
        failure = self._errors.redact(status_text(response))
        if outcome is Outcome.RATE_LIMITED:
            with self._lock:
                self._rate_limited += 1
            self._pacer.on_rate_limited(sent_at)
        else:
            with self._lock:
                self._server_errors += 1
        return _Tried(outcome, response, failure, retry_after(response))

    def _wait_to_retry(self, method: str, path: str, tried: _Tried, attempt: int) -> None:
        delay = self._retry.backoff(attempt, tried.retry_after)
        if tried.outcome is Outcome.RATE_LIMITED:
            # The limit is the account's, not this thread's: hold every thread.
            self._pacer.pause_for(delay)
        with self._lock:
            self._retries += 1
            self._backoff_seconds += delay
        log.info(
            "%s %s: %s; retrying in %.1f s (attempt %d of %d)",
            method,
            path,
            tried.failure,
            delay,
            attempt + 1,
            self._retry.max_retries + 1,
        )
        if delay > 0:
            self._retry.sleep(delay)


def client_from_env(
    api_url: str | None,
    *,
    allow_insecure_http: bool = False,
    environ: Mapping[str, str] | None = None,
    api_key: str | None = None,
    retry: RetryPolicy | None = None,
    pacing: Pacer | PacingConfig | None = None,
    timeout: httpx.Timeout | None = None,
    transport: httpx.BaseTransport | None = None,
) -> DataframerClient:
    """A client for `api_url` (else DATAFRAMER_BASE_URL, else the public API)
    with the key `api_key` (else DATAFRAMER_API_KEY).

    Without `timeout`, DFR_HTTP_TIMEOUT (seconds) sets the read timeout of
    every request (default 30), for slow networks and for tests that make the
    API hang.
    """
    env = os.environ if environ is None else environ
    base_url = api_url or env.get("DATAFRAMER_BASE_URL") or DEFAULT_BASE_URL
    raw_timeout = env.get("DFR_HTTP_TIMEOUT", "").strip()
    if raw_timeout and timeout is None:
        seconds = as_float(raw_timeout)
        if seconds is None or seconds <= 0:
            raise UsageError(
                f"DFR_HTTP_TIMEOUT={raw_timeout!r}: expected a number of seconds above 0"
            )
        timeout = timeouts(seconds)
    return DataframerClient(
        base_url,
        env.get("DATAFRAMER_API_KEY", "") if api_key is None else api_key,
        retry=retry,
        pacing=pacing,
        timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        transport=transport,
        allow_insecure_http=allow_insecure_http,
    )
