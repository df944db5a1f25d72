"""The endpoints of a run's generated files, for `DataframerClient`.

    GET /api/dataframer/runs/{run_id}/files/{file_id}/download/   -> FileLink
    GET /api/dataframer/runs/{run_id}/files/download/             -> 202 ..., 200 ZipLink

Both are reads, sent under the client's retry rule. They carry the SDK's
`X-Data-Plane-Follow` header: a customer-hosted deployment then answers with a
data-plane pointer (rather than refusing with 501), which `follow_pointer`
hands to the official SDK's `dataframer.lib.data_plane` (the optional extra
`dataframer-reconciler[dataplane]`, imported only then): dfr does not
re-implement that protocol. Without the extra, the error says what to install.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reconciler.api.errors import Redactor
from reconciler.api.files import FileLink, ZipLink
from reconciler.errors import APIUnavailable, BadAnswer, UsageError

if TYPE_CHECKING:
    from reconciler.api.client import DataframerClient

__all__ = ["DATAPLANE_EXTRA", "FOLLOW_HEADER", "file_link", "follow_pointer", "zip_link"]

#: The SDK's header saying "this client can follow a data-plane pointer".
FOLLOW_HEADER = "X-Data-Plane-Follow"
#: What to install for customer-hosted deployments.
DATAPLANE_EXTRA = "dataframer-reconciler[dataplane]"
_FOLLOW = {FOLLOW_HEADER: "1"}


def _files_path(client: DataframerClient, run_id: str) -> str:
    from reconciler.api.client import RUNS_PATH

    return client._item_path(RUNS_PATH, run_id, "run") + "files/"


def file_link(client: DataframerClient, run_id: str, file_id: str) -> FileLink:
    """A fresh presigned URL (one hour) for one generated file, or a data-plane pointer."""
    path = _files_path(client, run_id) + client._item_path("", file_id, "file") + "download/"
    response, _ = client._send("GET", path, idempotent=True, headers=_FOLLOW)
    client._errors.raise_for_status(response, "GET", path, what=f"file {file_id} of run {run_id}")
    data = client._json(response, "GET", path, redact=False)
    if not isinstance(data, dict):
        raise client._errors.bad_answer(f"GET {path}: expected a JSON object", response)
    link = FileLink.from_json(data)
    if link.download_url is None and link.pointer is None:
        raise client._errors.bad_answer(f"GET {path}: the answer has no download_url", response)
    return link


def zip_link(
    client: DataframerClient, run_id: str, *, max_polls: int, poll_seconds: float
) -> ZipLink:
    """The ZIP of every file of a run: asked again while the API answers 202 (building)."""
    path = _files_path(client, run_id) + "download/"
    for poll in range(max(1, max_polls)):
        if poll:
            client._retry.sleep(poll_seconds)
        response, _ = client._send("GET", path, idempotent=True, headers=_FOLLOW)
        if response.status_code == 202:
            continue
        client._errors.raise_for_status(response, "GET", path, what=f"run {run_id}")
        data = client._json(response, "GET", path)
        if not isinstance(data, dict):
            raise client._errors.bad_answer(f"GET {path}: expected a JSON object", response)
        link = ZipLink.from_json(data)
        if link.download_url is not None or link.pointer is not None:
            return link
    raise APIUnavailable(
        f"GET {path}: the ZIP of run {run_id} was still being built after {max_polls} polls"
    )


def _sdk() -> Any:
    """The official SDK (`pydataframer`), or a UsageError saying how to install it."""
    try:
        return importlib.import_module("dataframer")
    except ImportError:
        raise UsageError(
            "this deployment keeps the run's files in your own cloud (a customer-hosted"
            " data plane: the API answered with content_location instead of a download_url);"
            f" dfr reads those through the official SDK: pip install '{DATAPLANE_EXTRA}'"
            " (it installs pydataframer==0.19.2)"
        ) from None


def follow_pointer(
    base_url: str, api_key: str, run_id: str, file_id: str, *, http_client: Any = None
) -> FileLink:
    """The presigned URL of a customer-hosted file, through the SDK.

    The SDK asks the API again (with its follow header), gets the pointer and
    has the customer's gateway presign it; its session sends the key only to
    the API. `http_client`: an `httpx.Client` for the SDK (tests).
    """
    sdk = _sdk()
    errors = (sdk.DataframerError,)
    try:
        with sdk.Dataframer(api_key=api_key, base_url=base_url, http_client=http_client) as api:
            answer = api.dataframer.runs.files.download(file_id, run_id=run_id)
    except errors as exc:
        message = str(getattr(exc, "message", None) or type(exc).__name__)
        raise APIUnavailable(
            Redactor(api_key)(
                f"file {file_id} of run {run_id}: the customer-hosted data plane failed: {message}"
            )
        ) from None
    link = FileLink.from_json(answer.to_dict())
    if link.download_url is None:
        raise BadAnswer(f"file {file_id} of run {run_id}: the data plane gave no download URL")
    return link
