"""The pre-commit hooks' command: check the files a commit touches, names across all manifests.

pre-commit hands a hook the staged files (on a normal commit) or every file
(`--all-files`, possibly split into batches). A file alone cannot show that its
`metadata.name` is taken by a manifest elsewhere, so this command reads the
whole manifest set to compare names:

- the folders `manifests:` of `dfr.yaml` names, when it names any;
- else the manifest root of each file it was given: the outermost
  `dataframer/` or `manifests/` folder above it (the hook's default `files`
  pattern), or the file's own folder.

It reports only what is found in the files it was given (and in `dfr.yaml`,
whose policy the check depends on): a broken manifest that this commit does not
touch does not block it. A given file whose name is also used by a manifest it
was not given gets the error itself ("is also used by the manifest at ..."), so
the clash is reported whichever of the two was read first.

Entry of `.pre-commit-hooks.yaml`: `python -m reconciler.cli.precommit
[--skip-non-manifests] FILE...`; `require_serial` keeps pre-commit from running
batches in parallel, and each batch still compares names across the whole set.
Errors become messages in `reconciler.cli.run`, as for every dfr command.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from reconciler.diagnostics import Diagnostic
    from reconciler.invocation import Invocation
    from reconciler.validate import ValidationResult

#: Folder names that hold manifests (the hook's default `files` pattern).
MANIFEST_FOLDERS = ("dataframer", "manifests")


def manifest_roots(files: Sequence[str]) -> list[str]:
    """The folders whose manifests share a name space with `files` (without dfr.yaml)."""
    roots: list[str] = []
    for file in files:
        parts = Path(file).parts[:-1]
        at = next((i for i, part in enumerate(parts) if part in MANIFEST_FOLDERS), None)
        folder = Path(*parts[: at + 1]) if at is not None else Path(file).parent
        root = str(folder) if parts else "."
        if root not in roots:
            roots.append(root)
    return roots


@dataclass(frozen=True, slots=True)
class HookArgs:
    files: tuple[str, ...]
    skip_non_manifests: bool = False


def check(
    inv: Invocation, files: Sequence[str], *, skip_non_manifests: bool = False
) -> tuple[list[Diagnostic], ValidationResult]:
    """The findings to report for `files`, and the whole set's validation result."""
    from reconciler import diagnostics as diag
    from reconciler.engine.loading import validate_for
    from reconciler.manifests import display_path
    from reconciler.policy import unpinned_version

    project = inv.project
    roots = list(project.manifests) or manifest_roots(files)
    # The given files first: they are read as named (explicit, so strict unless
    # skip_non_manifests), and a root's walk does not read them again.
    result = validate_for(
        inv,
        [*files, *roots],
        [*project.checks(), unpinned_version],
        skip_non_manifests=skip_non_manifests,
    )
    given = {display_path(Path(f)) for f in files}
    found = [d for d in result.diagnostics if d.file in given]
    found += _names_taken_elsewhere(result, given)
    return [*project.diagnostics, *diag.sort(found)], result


def _names_taken_elsewhere(result: ValidationResult, given: set[str]) -> list[Diagnostic]:
    """A given file's name that a file not given uses too, when the given one came first.

    `validate_paths` puts a clash on every later use; the given files are read
    first, so a later use in a file not given would carry the only error, and
    it is not reported. The given file gets one instead.
    """
    from reconciler import diagnostics as diag

    first: dict[str, tuple[bool, str, int, int]] = {}
    elsewhere: dict[str, str] = {}
    for claim in result.names:
        place = f"{claim.file}:{claim.line}:{claim.column}"
        if claim.name not in first:
            first[claim.name] = (claim.file in given, claim.file, claim.line, claim.column)
        elif claim.file in given:
            elsewhere[claim.name] = ""  # a given file carries validate's own error
        else:
            elsewhere.setdefault(claim.name, place)
    out = []
    for name, other in elsewhere.items():
        is_given, file, line, column = first[name]
        if is_given and other:
            out.append(
                diag.error(
                    f"metadata.name {name!r} is also used by the manifest at {other}; "
                    "names must be unique across all manifests",
                    file,
                    line,
                    column,
                    code="duplicate-name",
                    path=("metadata", "name"),
                )
            )
    return out


def run_hook(inv: Invocation, args: HookArgs, out: TextIO, err: TextIO) -> int:
    from reconciler import diagnostics as diag

    files = args.files
    found, _ = check(inv, files, skip_non_manifests=args.skip_non_manifests)
    diag.write_text(found, err)
    errors = diag.count_errors(found)
    if errors:
        err.write(
            f"{errors} error{'s' if errors != 1 else ''} in "
            f"{len(files)} file{'s' if len(files) != 1 else ''} checked "
            "(names compared across all manifests).\n"
        )
        return EXIT_ERROR
    return EXIT_OK
