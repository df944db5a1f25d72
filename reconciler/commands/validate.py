"""`dfr validate` (manifests against the schema, offline) and `dfr schema` (print it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from reconciler.errors import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from reconciler.invocation import Invocation


@dataclass(frozen=True, slots=True)
class ValidateArgs:
    paths: tuple[str, ...] = ()
    fmt: str = "text"  # text, json, github, gitlab (auto resolved by the CLI)
    skip_non_manifests: bool = False
    quiet: bool = False  # print only problems


def run_validate(inv: Invocation, args: ValidateArgs, out: TextIO, err: TextIO) -> int:
    """Every problem of every file as FILE:LINE:COL: error: MESSAGE; exit 1 on any error."""
    from reconciler import diagnostics as diag
    from reconciler import vcache
    from reconciler.project import validate_with_project

    result = validate_with_project(
        inv.project,
        args.paths,
        skip_non_manifests=args.skip_non_manifests,
        cache=vcache.open_cache(disabled=inv.no_cache),
        jobs=inv.jobs,
    )
    if args.fmt == "json":
        diag.write_json(result.to_json(), out)
    elif args.fmt == "github":
        from reconciler.views.github import write_diagnostics

        write_diagnostics(result.diagnostics, out, err)
    elif args.fmt == "gitlab":
        from reconciler.views.gitlab import write_code_quality

        write_code_quality(result.diagnostics, out, err)
    else:
        diag.write_text(result.diagnostics, err)
        if not args.quiet or not result.ok:
            err.write(summary(result) + "\n")
    return EXIT_OK if result.ok else EXIT_ERROR


def summary(result: Any) -> str:
    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    head = f"{n(len(result.manifests), 'manifest')} in {n(result.files, 'file')}"
    if result.ok:
        tail = f", {n(result.warnings, 'warning')}" if result.warnings else ""
        return f"{head}: valid{tail}."
    return f"{head}: {n(result.errors, 'error')}, {n(result.warnings, 'warning')}."


@dataclass(frozen=True, slots=True)
class SchemaArgs:
    state_schema: bool = False
    project_schema: bool = False
    spec_schema: bool = False  # kind: Spec manifests' (reconciler.specs_check)


def run_schema(inv: Invocation, args: SchemaArgs, out: TextIO, err: TextIO) -> int:
    """The manifest JSON Schema (or the state file's, or dfr.yaml's) on `out`."""
    from reconciler.schema import schema_text

    name = "state.schema.json" if args.state_schema else "generation-run.schema.json"
    name = "spec.schema.json" if args.spec_schema else name
    out.write(schema_text("project.schema.json" if args.project_schema else name))
    return EXIT_OK
