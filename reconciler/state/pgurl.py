"""The PostgreSQL backend's URLs and workspace names, and keeping passwords out of messages.

Without psycopg: `engine/backends` calls these for any `--backend` value, and
`dfr --version` or the file backend must never load the database driver.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from reconciler.errors import StateError

__all__ = [
    "DEFAULT_WORKSPACE",
    "SCHEMES",
    "is_postgres_url",
    "redact",
    "split_url",
    "validate_workspace",
]

SCHEMES = ("postgresql://", "postgres://")
DEFAULT_WORKSPACE = "default"
_WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")


def is_postgres_url(value: str | None) -> bool:
    """True for a `postgresql://` or `postgres://` URL (the postgres backend)."""
    return bool(value) and str(value).lower().startswith(SCHEMES)


def validate_workspace(name: str) -> str:
    """`name` if it is a valid workspace name, else StateError."""
    if not _WORKSPACE.match(name):
        raise StateError(
            f"invalid workspace name {name!r}: use 1 to 128 letters, digits, '.', '_', '-' "
            "or '/', starting with a letter or digit"
        )
    return name


_URL_PASSWORD = re.compile(r"(?i)(postgres(?:ql)?://[^:/?#@\s]*:)[^@\s]*@")
_PARAM_PASSWORD = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)")


def redact(text: str, secrets: tuple[str, ...] = (), keep: tuple[str, ...] = ()) -> str:
    """`text` with URL passwords, `password=` values and each of `secrets` replaced by ***.

    Each of `keep` (texts built without any secret, like the backend's description)
    is left whole, so that a password that is also a word (or the role's name)
    does not blot out which database the message is about.
    """
    for i, kept in enumerate(keep):
        if kept and kept in text:
            return kept.join(redact(part, secrets, keep[i + 1 :]) for part in text.split(kept))
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(r"\1***@", text)
    return _PARAM_PASSWORD.sub(r"\1***", text)


def split_url(url: str) -> tuple[str, str | None, list[str], str, str, list[str]]:
    """(scheme, user, passwords, hosts, dbname, other query params) of a libpq URI.

    Without psycopg. `passwords` holds the userinfo password and any `password=`
    parameter, raw and decoded; the query params keep their raw text.
    """
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.split("#", 1)[0].partition("?")
    authority, _, path = rest.partition("/")
    user = None
    passwords: list[str] = []
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        name, colon, secret = userinfo.partition(":")
        user = unquote(name) or None
        if colon and secret:
            passwords += [secret, unquote(secret)]
    params = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        if unquote(key).strip().lower() == "password":
            passwords += [value, unquote(value)] if value else []
        else:
            params.append(part)
    return scheme.lower(), user, passwords, authority, unquote(path), params
