"""`dfr import spec NAME SPEC_ID`: adopt a spec made by hand (in the web app).

The spec is read with its versions and recorded under NAME, its unique name
(the `metadata.name` of its Spec manifest, or the name runs give in
`spec_ref`): its id, status, error and every version with the digest of its
normalised content, none marked as made by dfr. Nothing is sent to the API
but the read. A plan then compares the manifest's content with the newest
version (an update back to it, or nothing).

`dfr import NAME RUN_ID` (a run) stays as it was, also for a run named
"spec": `dfr import spec RUN_ID [PATH...]` is a run's import whenever the word
after the id is an existing path or there is none (`is_spec_import`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.errors import EXIT_OK, DfrError, UsageError
from reconciler.specrecord import adopted
from reconciler.textsafe import one_line

if TYPE_CHECKING:
    from reconciler.invocation import Invocation
    from reconciler.state.model import State

#: The word that makes `dfr import` adopt a spec instead of a run.
SPEC_WORD = "spec"


@dataclass(frozen=True, slots=True)
class ImportSpecArgs:
    name: str
    spec_id: str
    extra: tuple[str, ...] = ()  # anything after SPEC_ID: refused


def is_spec_import(first: str, second: str, rest: Sequence[str]) -> bool:
    """Do `dfr import FIRST SECOND REST...` ask for a spec's import?

    Only `spec NAME SPEC_ID ...` does: the word "spec", then two words of which
    the last is not an existing path. `spec RUN_ID` and `spec RUN_ID PATH...`
    (an existing PATH) import the run of a manifest named "spec", as before.
    """
    return first == SPEC_WORD and bool(rest) and not os.path.exists(rest[0])


def run_import_spec(inv: Invocation, args: ImportSpecArgs, out: TextIO, err: TextIO) -> int:
    """Record spec SPEC_ID under NAME after reading it with its versions."""
    from reconciler.engine import session

    name, spec_id = args.name, args.spec_id.strip()
    if args.extra:
        raise UsageError(
            f"dfr import spec NAME SPEC_ID takes nothing more (got {one_line(args.extra[0])!r}); "
            "to import a run for a manifest named 'spec': dfr import spec RUN_ID [PATH...] "
            "with existing PATHs"
        )
    with session(inv, "import spec") as s:
        client, store = s.client, s.store
        recorded = store.state.specs.get(name)
        if recorded is not None and recorded.spec_id and _same(recorded.spec_id, spec_id):
            out.write(f"spec {name} already records {one_line(recorded.spec_id)}; nothing to do.\n")
            return EXIT_OK
        _check_free(store.state, name, spec_id)
        detail = client.get_spec_versions(spec_id)  # NotFoundError: no such spec
        if detail.name is not None and detail.name != name:
            raise DfrError(
                f"spec {spec_id} is named {one_line(detail.name)!r} in Dataframer, not "
                f"{name!r}: a spec is recorded under its unique name",
                hint=f"dfr import spec {one_line(detail.name)} {spec_id}",
            )
        record = adopted(name, detail, source=None, api=client.base_url)
        store.put_spec(record)
    versions = len(record.versions)
    status = one_line(record.status or "status unknown")
    out.write(
        f"Imported spec {one_line(record.spec_id)} ({status}, {versions} version"
        f"{'s' if versions != 1 else ''}) as {name}.\n"
    )
    if record.status == "FAILED":
        err.write(f"warning: spec {name} is FAILED: {one_line(record.error or 'no error')}\n")
    return EXIT_OK


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _check_free(state: State, name: str, spec_id: str) -> None:
    """Refuse when NAME records another spec, or another name records SPEC_ID."""
    recorded = state.specs.get(name)
    if recorded is not None and recorded.spec_id:
        raise DfrError(
            f"spec {name} already records {recorded.spec_id}; dfr never replaces a recorded "
            f"spec by import (a spec is never deleted either)"
        )
    if recorded is not None and recorded.intent is not None:
        raise DfrError(
            f"spec {name} has an unconfirmed {recorded.intent.kind} from an earlier apply; "
            "run `dfr apply` to resolve it first (it looks the spec up by its name)"
        )
    for other in state.specs.values():
        if other.spec_id and _same(other.spec_id, spec_id):
            raise DfrError(f"spec {spec_id} is already recorded as {other.name!r}")
