"""A customer-hosted data plane (`customer_hosted`), as the official SDK follows one.

For such a company the API never hands out a `download_url`: the files are in
the customer's own bucket, so a file answer is a pointer and the SDK
(`dataframer/lib/data_plane`) finishes the read through the customer's
gateway. This module emulates both ends the SDK talks to:

- the API: `files.download` answers `{"data_plane": true, "s3_key",
  "storage_uri", "sha256", "bytes_size", "filename", "content_type"}` (the
  DataPlaneContentLocation fields plus the file's name and type);
  `files.download_all` answers `{"data_plane": true, "resource_id": run_id,
  "entries": [], "dataset_type"}`. Both only to a client that sends
  `X-Data-Plane-Follow` (the SDK does); any other gets 501, as the API
  refuses to hand a pointer to a caller that cannot use one.
  `POST /api/data-plane/token/` mints a session token and names the gateway
  (the file host); `POST /api/data-plane/grants/` signs a grant for
  resources. Without `customer_hosted` both answer 404, as a control plane
  that mints no tokens for the company, so the SDK takes its ordinary path.
- the gateway, on the file host: `POST /gateway/objects/presign-get` turns a
  key into a presigned URL on the file host, `POST /gateway/archives/prepare`
  answers `{"status": "building"}` until the ZIP is built (the same
  `zip_build_*` settings), then `{"status": "ready", "download_url",
  "bytes_size"}`, and `POST /gateway/objects/content` returns a
  customer-hosted evaluation's result object (its API answer is a
  `content_location` pointer with `content_unavailable_reason:
  result_content_in_data_plane`). It takes the token and the grant, never
  the API key.

Credentials live `CREDENTIAL_SECONDS` of lifecycle time, as the SDK expects.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dfr_emulator.evaluations import SUCCEEDED, envelope_text, result_key
from dfr_emulator.files import GeneratedFile, RunOutput
from dfr_emulator.seeds import DATA_PLANE_COMPANY, data_plane_location
from dfr_emulator.store import ApiProblem

if TYPE_CHECKING:
    from dfr_emulator.config import EmulatorConfig
    from dfr_emulator.outputs import Answer, Outputs

FOLLOW_HEADER = "x-data-plane-follow"
GRANT_HEADER = "x-data-plane-grant"
CREDENTIAL_SECONDS = 300
_FOLLOW_REQUIRED = {
    "detail": "This company's data plane is customer-hosted: the file is in its own cloud. "
    "Use a client that follows data-plane pointers (the official Python SDK).",
    "code": "data_plane_follow_required",
}


def object_key(run_id: str, path: str) -> str:
    """Where a generated file lives in the customer's bucket."""
    return f"dataframer/{DATA_PLANE_COMPANY}/Output/{run_id}/{path}"


class DataPlane:
    """Pointers on the API side, tokens and grants, and the gateway. Thread-safe."""

    def __init__(self, outputs: Outputs) -> None:
        self.outputs = outputs
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._grants: dict[str, tuple[frozenset[str], float]] = {}

    # ----- API side ------------------------------------------------------------

    def file_pointer(
        self, output: RunOutput, file: GeneratedFile, headers: Mapping[str, str]
    ) -> Answer:
        _require_follow(headers)
        key = object_key(output.run_id, file.path)
        pointer = {
            **data_plane_location(key, output.content(file)),  # file.size_bytes bytes
            "filename": file.filename,
            "content_type": file.file_type,
        }
        return 200, pointer, {}

    def archive_pointer(self, output: RunOutput, headers: Mapping[str, str]) -> Answer:
        _require_follow(headers)
        pointer = {
            "data_plane": True,
            "resource_id": output.run_id,
            "entries": [],
            "dataset_type": None,
        }
        return 200, pointer, {}

    def act(self, kind: str, body: bytes, cfg: EmulatorConfig) -> Answer:
        """`dataplane.token` and `dataplane.grants` (the control plane's credentials)."""
        if not cfg.customer_hosted:
            # As a control plane that mints no tokens for this company: the SDK
            # then takes its ordinary path.
            raise ApiProblem(404, {"detail": "Not found."})
        expires = self.outputs.timeline.now() + CREDENTIAL_SECONDS
        if kind == "dataplane.token":
            token = "dpt_" + secrets.token_hex(16)
            with self._lock:
                self._tokens[token] = expires
            gateway = self.outputs.presigner.base_url
            return (
                200,
                {"token": token, "gateway_url": gateway, "expires_in": CREDENTIAL_SECONDS},
                {},
            )
        try:
            resources = json.loads(body or b"{}").get("resources")
            granted = frozenset(f"{r['kind']}:{r['id']}" for r in resources)
        except (ValueError, AttributeError, KeyError, TypeError):
            raise ApiProblem(400, {"code": "invalid_resources", "error": "resources"}) from None
        grant = "dpg_" + secrets.token_hex(16)
        with self._lock:
            self._grants[grant] = (granted, expires)
        return 200, {"grant": grant, "expires_in": CREDENTIAL_SECONDS}, {}

    # ----- the gateway (on the file host) ----------------------------------------

    def gateway(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if not self.outputs.config().customer_hosted:
            return 404, {"detail": {"code": "no_data_plane", "error": "No gateway here."}}
        now = self.outputs.timeline.now()
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            token_ok = self._tokens.get(token, -1.0) > now
            granted, until = self._grants.get(headers.get(GRANT_HEADER, ""), (frozenset(), -1.0))
        if not token_ok:
            return 401, {"detail": {"code": "token_invalid", "error": "Session token expired."}}
        if until <= now:
            return 403, {"detail": {"code": "grant_required", "error": "A grant is required."}}
        try:
            body = json.loads(raw or b"{}")
            if path == "/gateway/objects/presign-get":
                return self._presign_get(body, granted)
            if path == "/gateway/archives/prepare":
                return self._prepare(body, granted)
            if path == "/gateway/objects/content":
                return self._content(body, granted)
        except (ValueError, AttributeError, KeyError, TypeError):
            return 400, {"detail": {"code": "invalid_request", "error": "Malformed request."}}
        return 404, {"detail": {"code": "unknown_route", "error": f"No gateway route {path}."}}

    def _presign_get(self, body: dict[str, Any], granted: frozenset[str]) -> tuple[int, Any]:
        key = str(body["s3_key"])
        prefix = f"dataframer/{DATA_PLANE_COMPANY}/Output/"
        run_id, _, path = key.removeprefix(prefix).partition("/")
        if not key.startswith(prefix) or f"run:{run_id}" not in granted:
            return 403, {"detail": {"code": "key_not_granted", "error": "Key not granted."}}
        output = self._output(run_id)
        file = None if output is None else next((f for f in output.files() if f.path == path), None)
        if output is None or file is None:
            return 404, {"detail": {"code": "unknown_object", "error": "No such object."}}
        url = self.outputs.presign(f"runs/{run_id}/{path}", output, file.id, file.filename)
        return 200, {"url": url, "content_type": file.file_type}

    def _prepare(self, body: dict[str, Any], granted: frozenset[str]) -> tuple[int, Any]:
        run_id = str(body["resource_id"])
        if f"run:{run_id}" not in granted:
            return 403, {"detail": {"code": "key_not_granted", "error": "Run not granted."}}
        output = self._output(run_id)
        if output is None:
            return 404, {"detail": {"code": "unknown_object", "error": "No such run."}}
        ready = self.outputs.ready_archive(output, self.outputs.config())
        if ready is None:
            return 200, {"status": "building"}
        url, size = ready
        return 200, {"status": "ready", "download_url": url, "bytes_size": size}

    def _content(self, body: dict[str, Any], granted: frozenset[str]) -> tuple[int, Any]:
        """A customer-hosted evaluation's result object, inline (`as_text`)."""
        key = str(body["s3_key"])
        evaluation_id = key.rsplit("/", 1)[-1].removesuffix(".json")
        if key != result_key(evaluation_id) or f"result:{evaluation_id}" not in granted:
            return 403, {"detail": {"code": "key_not_granted", "error": "Key not granted."}}
        evaluation = self.outputs.evaluation(evaluation_id)
        now = self.outputs.timeline.now()
        if evaluation is None or not evaluation.hosted or evaluation.status(now) != SUCCEEDED:
            return 404, {"detail": {"code": "unknown_object", "error": "No such object."}}
        return 200, {"content": envelope_text(evaluation)}

    def _output(self, run_id: str) -> RunOutput | None:
        found = self.outputs.store.output(run_id)
        return None if found is None else found[1]


def _require_follow(headers: Mapping[str, str]) -> None:
    if not headers.get(FOLLOW_HEADER):
        raise ApiProblem(501, _FOLLOW_REQUIRED)
