"""The cross-document rules of the validate pass: a manifest name used twice, and the
Spec manifests' rules across files (content files, unique names, spec_ref targets)."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from reconciler import diagnostics as diag

if TYPE_CHECKING:
    from reconciler.validate import ValidationResult, _Claim


def check_unique_names(result: ValidationResult) -> None:
    """A name used twice is an error at each later use, naming the first place.

    Invalid documents count too: a typo elsewhere must not hide a clash.
    """
    first: dict[str, _Claim] = {}
    clashing: set[str] = set()
    for claim in result.names:
        other = first.setdefault(claim.name, claim)
        if other is claim:
            continue
        clashing.add(claim.name)
        result.diagnostics.append(
            diag.error(
                f"metadata.name {claim.name!r} is already used by the manifest at "
                f"{other.file}:{other.line}:{other.column}; names must be unique across "
                "all manifests",
                claim.file,
                claim.line,
                claim.column,
                code="duplicate-name",
                path=("metadata", "name"),
            )
        )
    if clashing:
        result.manifests = [m for m in result.manifests if m.name not in clashing]


def check_specs(
    result: ValidationResult,
    known_specs: Callable[[], Collection[str]] | None,
    root: str | os.PathLike[str] | None,
) -> None:
    """Content files read; Spec names unique among Spec manifests; each run's
    spec_ref names a spec (reconciler.specs_check)."""
    from reconciler.specs_check import (
        check_refs,
        content_file_paths,
        duplicates,
        load_content_files,
        unique_names,
    )

    result.specs, problems = load_content_files(result.specs, root)
    # A content file read from a directory is no manifest: it is skipped in silence.
    content = content_file_paths(result.specs)
    result.diagnostics = [
        d
        for d in result.diagnostics
        if not (d.code == "not-a-manifest" and not d.is_error and d.file in content)
    ]
    result.diagnostics.extend(problems)
    result.diagnostics.extend(unique_names(result.spec_claims))
    taken = duplicates(result.spec_claims)
    result.specs = [s for s in result.specs if s.name not in taken]
    refs = check_refs(result.manifests, result.specs, known_specs, result.spec_claims)
    result.diagnostics.extend(refs)
