"""From HTTP answers and transport failures to `reconciler.errors` exceptions.

The exception classes live in `reconciler.errors` (the one home of exit
codes); this module writes their messages: one line each, the API's own reason
for a refusal, a short excerpt of a body that is not what we expect, never a
header. Every message goes through `Redactor`: the API key never appears in
one, even when a server echoes it back.
"""

from __future__ import annotations

import json
import re
from typing import NoReturn

import httpx

from reconciler.errors import (
    APIUnavailable,
    AuthError,
    BadAnswer,
    NotFoundError,
    OutcomeUnknown,
    RequestRejected,
    UsageError,
)

__all__ = [
    "LONG_KEY_CHARS",
    "MIN_KEY_CHARS",
    "CreateAnswerUnreadable",
    "ErrorMapper",
    "Redactor",
    "api_message",
    "checked_key",
    "status_text",
]

_EXCERPT_CHARS = 80
_MESSAGE_CHARS = 300
#: Shorter keys are refused: no real key is, and they cannot be scrubbed from text.
MIN_KEY_CHARS = 8
#: Keys this long are scrubbed wherever they appear, even glued to other text.
LONG_KEY_CHARS = 16


class CreateAnswerUnreadable(BadAnswer, OutcomeUnknown):
    """A create answered 2xx but without a readable id: the run probably exists.

    It is a `BadAnswer` (the answer is malformed) and an `OutcomeUnknown` (a
    run was probably created and must be looked for before submitting again),
    so a caller that handles either one does the safe thing.
    """


# --------------------------------------------------------------------------
# The key


def checked_key(api_key: str) -> str:
    """The key without surrounding whitespace; UsageError when it cannot be one.

    The messages say what is wrong with the key, never what it is.
    """
    api_key = (api_key or "").strip()
    if not api_key:
        raise UsageError(
            "DATAFRAMER_API_KEY is empty or not set: export it with your Dataframer API key"
        )
    if not api_key.isascii() or not api_key.isprintable() or " " in api_key:
        raise UsageError(
            "DATAFRAMER_API_KEY holds spaces, control or non-ASCII characters;"
            " check that it was copied whole and alone"
        )
    if len(api_key) < MIN_KEY_CHARS:
        # A placeholder or a cut-off paste; and a key that short could not be
        # scrubbed from messages without mangling ordinary words.
        raise UsageError(
            f"DATAFRAMER_API_KEY is shorter than {MIN_KEY_CHARS} characters, so it is not"
            " a Dataframer API key; check that it was copied whole"
        )
    return api_key


def _key_pattern(key: str) -> re.Pattern[str]:
    """Where `key` stands in a text as a token of its own.

    Not inside a word ("look" stays "look" whatever the key), but after any
    non-alphanumeric character and after a percent-escape (`%3Dkey` in a
    URL). A key of LONG_KEY_CHARS or more is no ordinary word: it is replaced
    wherever it stands, glued to other text or not.
    """
    escaped = re.escape(key)
    if len(key) >= LONG_KEY_CHARS:
        return re.compile(escaped)
    before = r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))" if key[0].isalnum() else ""
    after = r"(?![A-Za-z0-9])" if key[-1].isalnum() else ""
    return re.compile(before + escaped + after)


class Redactor:
    """`redact(text)`: `text` with every occurrence of the key as a whole token
    replaced by `***` (see `_key_pattern`)."""

    def __init__(self, key: str) -> None:
        self._pattern = _key_pattern(key)

    def __call__(self, text: str) -> str:
        return self._pattern.sub("***", text)

    def __repr__(self) -> str:
        return "Redactor(***)"


# --------------------------------------------------------------------------
# Answers as text


def _one_line(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_text(response: httpx.Response) -> str:
    """`404 Not Found`."""
    reason = response.reason_phrase
    return f"{response.status_code} {reason}".strip()


def api_message(response: httpx.Response) -> str:
    """The API's reason for a 4xx, as one readable line.

    Understands FastAPI (`{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`),
    `{"error": ...}` / `{"message": ...}`, and Django REST framework's
    `{"field": ["message"]}`; anything else becomes a short excerpt.
    """
    try:
        data = response.json()
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict):
        for key in ("detail", "error", "errors", "message"):
            if key in data:
                parts.extend(_flatten_detail(data[key]))
                break
        else:
            for key, value in data.items():
                for text in _flatten_detail(value):
                    parts.append(text if key == "non_field_errors" else f"{key}: {text}")
    elif data is not None:
        parts.extend(_flatten_detail(data))
    else:
        # Not JSON (an HTML error page, say): a short excerpt is enough.
        text = response.text if response.content else ""
        if text.strip():
            parts.append(_one_line(text, _EXCERPT_CHARS))
    return _one_line("; ".join(p for p in parts if p), _MESSAGE_CHARS)


def _flatten_detail(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _flatten_detail(item)]
    if isinstance(value, dict):
        msg = value.get("msg", value.get("message"))
        if isinstance(msg, str):
            loc = value.get("loc")
            if isinstance(loc, list):
                # FastAPI prefixes where the field was: body, query, path.
                names = [str(p) for p in loc if p not in ("body", "query", "path")]
                if names:
                    return [f"{'.'.join(names)}: {msg}"]
            return [msg]
        return [f"{k}: {t}" for k, v in value.items() for t in _flatten_detail(v)]
    return [json.dumps(value, default=str)]


# --------------------------------------------------------------------------
# The exceptions of one client


class ErrorMapper:
    """The exceptions one client raises, their messages redacted of its key.

    `base_url` is named in the messages that suggest checking it;
    `read_timeout` in the message of a read timeout.
    """

    def __init__(self, redact: Redactor, base_url: str, read_timeout: float | None) -> None:
        self.redact = redact
        self._base_url = base_url
        self._host = httpx.URL(base_url).netloc.decode("ascii", "replace")
        self._read_timeout = read_timeout

    def raise_for_status(
        self, response: httpx.Response, method: str, path: str, *, what: str | None
    ) -> None:
        """Nothing for a 2xx; else the exception for the answer. `what` names the
        object a 404 is about ("run X"); None: a 404 means a wrong URL."""
        code = response.status_code
        if 200 <= code < 300:
            return
        status = status_text(response)
        if code in (401, 403):
            raise AuthError(
                self.redact(
                    f"the API refused the key in DATAFRAMER_API_KEY ({status} for {method} {path})"
                ),
                status_code=code,
            )
        if code == 404:
            if what is not None:
                message = f"{what} was not found ({status} for {method} {path})"
            else:
                message = (
                    f"{method} {path}: {status}; check the API URL"
                    f" ({self._base_url}, from --api-url or DATAFRAMER_BASE_URL)"
                )
            raise NotFoundError(self.redact(message), status_code=code)
        if 300 <= code < 400:
            location = response.headers.get("Location", "?")
            raise BadAnswer(
                self.redact(
                    f"{method} {path}: the API answered {status}, a redirect to"
                    f" {_one_line(location, _EXCERPT_CHARS)}; check the API URL ({self._base_url})"
                ),
                status_code=code,
            )
        if 400 <= code < 500:
            self.reject(response, method, path)
        raise BadAnswer(
            self.redact(f"{method} {path}: unexpected answer {status}"), status_code=code
        )

    def reject(self, response: httpx.Response, method: str, path: str) -> NoReturn:
        """RequestRejected with the API's own reason."""
        detail = api_message(response)
        message = f"{method} {path} was rejected ({status_text(response)})"
        if detail:
            message += f": {detail}"
        raise RequestRejected(self.redact(message), status_code=response.status_code)

    def bad_answer(self, message: str, response: httpx.Response | None = None) -> BadAnswer:
        """BadAnswer with `message`; given the answer, its status and an excerpt of its body."""
        if response is None:
            return BadAnswer(self.redact(message))
        return BadAnswer(
            self.redact(f"{message} ({self.excerpt(response)})"),
            status_code=response.status_code,
        )

    def not_json(self, response: httpx.Response, method: str, path: str) -> BadAnswer:
        return self.bad_answer(
            f"{method} {path}: the API answered {status_text(response)}"
            " with a body that is not JSON",
            response,
        )

    def create_unreadable(
        self, response: httpx.Response, path: str, *, noun: str = "run", method: str = "POST"
    ) -> CreateAnswerUnreadable:
        # `noun`: what the request makes ("run"; "spec" for a spec's create or update).
        return CreateAnswerUnreadable(
            self.redact(
                f"{method} {path}: the API answered {status_text(response)} without"
                f" a {noun} id ({self.excerpt(response)}); the {noun} was probably"
                f" {'created' if method == 'POST' else 'changed'},"
                " and dfr will look for it before submitting again"
            ),
            status_code=response.status_code,
        )

    def outcome_unknown(
        self, method: str, path: str, failure: str, status_code: int | None, noun: str = "run"
    ) -> OutcomeUnknown:
        done = "created" if method == "POST" else "changed"
        return OutcomeUnknown(
            self.redact(
                f"{method} {path}: {failure}; the {noun} may or may not have been {done},"
                " and dfr will look for it before submitting again"
            ),
            status_code=status_code,
        )

    def gave_up(
        self,
        method: str,
        path: str,
        failure: str,
        *,
        attempts: int,
        idempotent: bool,
        status_code: int | None,
        noun: str = "run",
    ) -> APIUnavailable:
        # For a create, only refusals were retried: nothing was made.
        tail = (
            "" if idempotent else f"; no {noun} was {'created' if method == 'POST' else 'changed'}"
        )
        return APIUnavailable(
            self.redact(f"{method} {path}: {failure} after {attempts} attempts{tail}"),
            status_code=status_code,
        )

    def cannot_send(self, method: str, path: str, exc: httpx.TransportError) -> APIUnavailable:
        return APIUnavailable(self.redact(f"{method} {path}: could not send the request ({exc})"))

    def describe(self, exc: httpx.TransportError) -> str:
        """A transport failure in a few words, redacted."""
        return self.redact(self._describe(exc))

    def _describe(self, exc: httpx.TransportError) -> str:
        detail = _one_line(str(exc), _EXCERPT_CHARS) or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return f"could not connect to {self._host} (timed out)"
        if isinstance(exc, httpx.ConnectError):
            return f"could not connect to {self._host} ({detail})"
        if isinstance(exc, httpx.PoolTimeout):
            return "timed out waiting for a free connection"
        if isinstance(exc, httpx.ReadTimeout):
            if self._read_timeout is None:
                return "no answer (read timeout)"
            return f"no answer within {self._read_timeout:g} s (read timeout)"
        if isinstance(exc, httpx.WriteTimeout):
            return "timed out while sending the request"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"the server broke the connection ({detail})"
        return f"connection error ({detail})"

    def excerpt(self, response: httpx.Response) -> str:
        """The start of a body, for a message: `body starts '...'`, redacted."""
        try:
            text = response.text
        except (UnicodeDecodeError, LookupError):
            text = response.content[:_EXCERPT_CHARS].decode("ascii", "replace")
        if not text.strip():
            return "empty body"
        return "body starts " + repr(_one_line(self.redact(text[:1000]), _EXCERPT_CHARS))
