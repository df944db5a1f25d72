"""The spec endpoints that change things, and the spec as read with its versions.

`DataframerClient` delegates here (`create_spec`, `update_spec`,
`get_spec_versions`, `find_specs`); the values are parsed as tolerantly as
`api.models` parses runs: a field of the wrong type becomes None, never an error.

Creating a spec is a paid, non-idempotent POST and an update makes a new
version each time it is sent, so both go through the client's retry rule as
non-idempotent requests (`api.retry`): sent again only when the server surely
did not act (a connection never made, a 429). After anything else the outcome
is unknown (`OutcomeUnknown`), and the caller looks before it sends again: a
create by the spec's unique name (`find_specs`), an update by reading the
versions (`get_spec_versions`) and comparing the latest content with what was
sent. A 409 on create is `SpecNameTaken`: a spec with that name exists.

Versions: the current API lists `versions` oldest first with no number; version
N is the Nth entry. The old page's API numbered them (`version`), used when
every entry has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.api.models import Spec, as_dict, as_int, as_str, normalize_status, str_fields
from reconciler.errors import RequestRejected

if TYPE_CHECKING:
    from reconciler.api.client import DataframerClient

__all__ = [
    "SPECS_PATH",
    "SpecDetail",
    "SpecNameTaken",
    "SpecVersionText",
    "create_spec",
    "find_specs",
    "get_spec_versions",
    "update_spec",
]

SPECS_PATH = "/api/dataframer/specs/"


class SpecNameTaken(RequestRejected):
    """409 on create: a spec with this name exists already (names are unique)."""


@dataclass(frozen=True)
class SpecVersionText:
    """One version of a spec: its number (1 = the first) and its YAML (None when the
    API keeps it in the customer's own cloud)."""

    number: int
    content_yaml: str | None = None
    created_at: str | None = None


def _versions(value: object) -> tuple[SpecVersionText, ...] | None:
    if not isinstance(value, list):
        return None
    entries = [v if isinstance(v, dict) else {} for v in value]
    numbers = [as_int(v.get("version", v.get("version_number"))) for v in entries]
    if not all(isinstance(n, int) for n in numbers) or len(set(numbers)) != len(numbers):
        numbers = list(range(1, len(entries) + 1))  # version N is the Nth entry
    out = [
        SpecVersionText(number=int(n or 0), **str_fields(v, "content_yaml", "created_at"))
        for n, v in zip(numbers, entries, strict=True)
    ]
    return tuple(sorted(out, key=lambda v: v.number))


@dataclass(frozen=True)
class SpecDetail:
    """A spec as one GET (or a create/update answer) reports it, versions included
    when asked for. Every field but `id` may be None."""

    id: str
    name: str | None = None
    status: str | None = None  # PROCESSING, SUCCEEDED, FAILED (unknown strings kept)
    error: str | None = None  # why a FAILED spec failed
    dataset_id: str | None = None
    description: str | None = None
    content_yaml: str | None = None  # the latest version's YAML
    content_unavailable_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    runtime_params: Mapping[str, Any] | None = None
    versions: tuple[SpecVersionText, ...] | None = None  # oldest first
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def latest(self) -> SpecVersionText | None:
        """The newest version (None when the versions were not listed or there are none)."""
        return self.versions[-1] if self.versions else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, fallback_id: str = "") -> SpecDetail:
        return cls(
            id=as_str(data.get("id")) or fallback_id,
            status=normalize_status(data.get("status")),
            **str_fields(data, "name", "error", "dataset_id", "description", "content_yaml"),
            **str_fields(data, "content_unavailable_reason", "created_at", "updated_at"),
            runtime_params=as_dict(data.get("runtime_params")),
            versions=_versions(data.get("versions")),
            raw=dict(data),
        )


def _answer(client: DataframerClient, response: Any, method: str, path: str) -> SpecDetail:
    """The spec in a 2xx answer to a create or update; OutcomeUnknown when it has no id."""
    spec_id, data = client._created(response, method, path, noun="spec")
    return SpecDetail.from_json(data, fallback_id=spec_id)


def create_spec(client: DataframerClient, body: Mapping[str, Any]) -> SpecDetail:
    """POST a new spec (PROCESSING at first); never sent twice unless surely refused.

    SpecNameTaken on 409; OutcomeUnknown when the spec may exist unseen.
    """
    response, _ = client._send(
        "POST", SPECS_PATH, json_body=dict(body), idempotent=False, noun="spec"
    )
    if response.status_code == 409:
        try:
            client._errors.reject(response, "POST", SPECS_PATH)
        except RequestRejected as exc:
            raise SpecNameTaken(exc.message, status_code=409) from None
    if response.status_code == 404:
        # On create a 404 is about the body (the seed dataset), not the URL.
        client._errors.reject(response, "POST", SPECS_PATH)
    client._errors.raise_for_status(response, "POST", SPECS_PATH, what=None)
    return _answer(client, response, "POST", SPECS_PATH)


def update_spec(client: DataframerClient, spec_id: str, content_yaml: str) -> SpecDetail:
    """PUT new content (one new version); never sent twice unless surely refused."""
    path = client._item_path(SPECS_PATH, spec_id, "spec")
    response, _ = client._send(
        "PUT", path, json_body={"content_yaml": content_yaml}, idempotent=False, noun="spec"
    )
    client._errors.raise_for_status(response, "PUT", path, what=f"spec {spec_id}")
    return _answer(client, response, "PUT", path)


def get_spec_versions(client: DataframerClient, spec_id: str) -> SpecDetail:
    """GET a spec with `include_versions=true` (versions oldest first)."""
    path = client._item_path(SPECS_PATH, spec_id, "spec")
    data = client._get_object(path, what=f"spec {spec_id}", params={"include_versions": "true"})
    return SpecDetail.from_json(data, fallback_id=spec_id)


def find_specs(client: DataframerClient, name: str) -> list[Spec]:
    """Every listed spec named exactly `name` (names are unique per seed dataset, and
    among seedless specs: the caller tells them apart by `dataset_id`)."""
    return [spec for spec in client.list_specs() if spec.id and spec.name == name]
