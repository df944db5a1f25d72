"""`kind: Spec` manifests in the validate pass, and the rules across spec and run manifests.

`reconciler.validate` hands each document claiming `kind: Spec` to
`check_spec_document`, which checks it against `schemas/spec.schema.json`
(errors placed on the key or value, `FILE:LINE:COL: error: ...`), reads its
`content_file` (relative to the manifest's folder, never outside the project
root, symbolic links included) and checks that file's content too, placed in
that file. After every file was read, `finish` checks what needs them all:
Spec names unique among Spec manifests (a run and a spec may share a name:
their keys are `run/NAME` and `spec/NAME`), and every run's
`spec_ref.name` naming a Spec manifest or an adopted spec (`known_specs`:
the names `State.specs` records, asked only when some name is not a
manifest's).

Reading files is the only I/O here.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reconciler import diagnostics as diag
from reconciler import schema
from reconciler.diagnostics import Diagnostic
from reconciler.manifests import (
    API_GROUP,
    Manifest,
    SourceFile,
    SpecManifest,
    read_documents,
)
from reconciler.yamlsafe import Document, key_node_of, locate, position, yaml11_reading

SPEC_KIND = "Spec"
SPEC_SCHEMA_FILE = "spec.schema.json"
#: The manifest's spelling -> the create body's (SpecCreateParams).
RENAMED = {"objectives": "generation_objectives"}
#: Keys of a Spec manifest's `spec:` that are not create options.
NOT_SENT = ("content", "content_file")


@functools.cache
def spec_manifest_schema() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(schema.schema_text(SPEC_SCHEMA_FILE))
    return result


@functools.cache
def _validator() -> Any:
    return schema.make_validator(spec_manifest_schema())


@functools.cache
def _content_validator() -> Any:
    doc = spec_manifest_schema()
    return schema.make_validator({**doc["$defs"]["content"], "$defs": doc["$defs"]})


def is_spec_document(value: Any) -> bool:
    """A `kind: Spec` document with an apiVersion of the dataframer.ai group (the schema
    checks the version): another tool's `kind: Spec` is not a manifest of ours."""
    if not isinstance(value, dict) or value.get("kind") != SPEC_KIND:
        return False
    version = value.get("apiVersion")
    return isinstance(version, str) and version.split("/", 1)[0].lower() == API_GROUP


def create_body(name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The POST /specs/ body of a Spec manifest's `spec:` (as written): name first, then
    the options in the schema's order, `objectives` sent as `generation_objectives`."""
    order = spec_manifest_schema()["$defs"]["spec"]["properties"]
    sent = {RENAMED.get(k, k): body[k] for k in order if k in body and k not in NOT_SENT}
    return {"name": name, **sent}


@dataclass(frozen=True, slots=True)
class SpecClaim:
    """A Spec document's metadata.name and its place, valid or not (for uniqueness)."""

    name: str
    file: str
    line: int
    column: int


def check_spec_document(
    source: SourceFile, doc: Document, diagnostics: list[Diagnostic], claims: list[SpecClaim]
) -> SpecManifest | None:
    """One `kind: Spec` document: its SpecManifest, or None with the errors appended.

    Its `content_file` is read later, by `load_content_files` (it needs the root).
    """
    value = doc.value
    metadata = value.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        line, col = position(locate(doc.node, ("metadata", "name")))
        claims.append(SpecClaim(metadata["name"], source.display, line, col))
    found = _schema_errors(value, doc, source.display, (), _validator())
    diagnostics.extend(found)
    if found:
        return None
    spec = value["spec"]
    content = spec.get("content")
    where = position(locate(doc.node, ("metadata", "name")))
    diagnostics.extend(_advice(spec, doc, source.display))
    return SpecManifest(
        name=metadata["name"],
        body={k: v for k, v in spec.items() if k not in NOT_SENT},
        content=dict(content) if content is not None else None,
        content_file=spec.get("content_file"),
        file=source.display,
        line=where[0],
        column=where[1],
        source=source.display,
    )


def _schema_errors(
    value: Any, doc: Document, file: str, prefix: tuple[str | int, ...], validator: Any
) -> list[Diagnostic]:
    out = []
    for problem in schema.problems(value, validator):
        path = (*prefix, *problem.path)
        node = key_node_of(doc.node, path) if problem.on_key else locate(doc.node, path)
        message = problem.message
        reading = None if problem.on_key else yaml11_reading(node)
        if reading is not None:
            message += f" (dfr reads YAML 1.2, where {node.value!r} is a string; write {reading})"
        line, col = position(node)
        out.append(diag.error(message, file, line, col, code="schema", path=path))
    return out


def _advice(spec: Mapping[str, Any], doc: Document, file: str) -> list[Diagnostic]:
    """Settings the schema allows that the API refuses or ignores (SDK docstrings)."""
    out = []
    if spec.get("generate_conditional_distributions") is True and (
        spec.get("generate_distributions") is not True
    ):
        line, col = position(locate(doc.node, ("spec", "generate_conditional_distributions")))
        out.append(
            diag.error(
                "spec.generate_conditional_distributions needs spec.generate_distributions: "
                "true (the API requires it)",
                file,
                line,
                col,
                code="schema",
                path=("spec", "generate_conditional_distributions"),
            )
        )
    if "objectives" in spec:
        for key in ("extrapolate_axes", "extrapolate_values"):
            if key in spec:
                line, col = position(locate(doc.node, ("spec", key)))
                out.append(
                    diag.warning(
                        f"spec.{key} has no effect on a seedless spec (one made from "
                        "objectives); remove it",
                        file,
                        line,
                        col,
                        code="no-effect",
                        path=("spec", key),
                    )
                )
    return out


# -- content_file ---------------------------------------------------------------------


def fallback_root() -> Path:
    """Without a project root given: the git repository's root, else the current folder."""
    from reconciler.project import git_root

    cwd = Path.cwd()
    return (git_root(cwd) or cwd).resolve()


def load_content_files(
    specs: Sequence[SpecManifest], root: str | os.PathLike[str] | None
) -> tuple[list[SpecManifest], list[Diagnostic]]:
    """`specs` with each `content_file` read into `content`; those that fail are dropped,
    with errors at their `content_file` key or in the content file itself."""
    out: list[SpecManifest] = []
    problems: list[Diagnostic] = []
    base = Path(root) if root is not None else fallback_root()
    for spec in specs:
        if spec.content_file is None:
            out.append(spec)
            continue
        content, found = _read_content_file(spec, spec.content_file, base)
        problems.extend(found)
        if content is not None:
            out.append(replace(spec, content=content))
    return out, problems


def content_path_problem(manifest_file: str, value: str, root: Path) -> tuple[Path | None, str]:
    """The content file's path, or None and why it is refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return None, "spec.content_file holds a control character; name a file in plain text"
    if "\\" in value:
        return None, f"spec.content_file {value!r} holds a backslash; separate folders with '/'"
    if os.path.isabs(value) or value.startswith("~"):
        return None, (
            f"spec.content_file {value!r} is an absolute path; write it relative to the "
            "manifest's folder"
        )
    target = Path(os.path.dirname(os.path.abspath(manifest_file))) / value
    real, real_root = os.path.realpath(target), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        return None, (
            f"spec.content_file {value!r} lies outside the repository ({real_root}); "
            "content files must be inside it (symbolic links are followed)"
        )
    return target, ""


def _read_content_file(
    spec: SpecManifest, value: str, root: Path
) -> tuple[dict[str, Any] | None, list[Diagnostic]]:
    path, why = content_path_problem(spec.file, value, root)

    def located(message: str) -> list[Diagnostic]:
        line, col = _place(spec.file, spec.name, ("spec", "content_file"), (spec.line, spec.column))
        return [diag.error(message, spec.file, line, col, code="content-file")]

    if path is None:
        return None, located(why)
    if not path.exists():
        return None, located(f"spec.content_file {value!r}: no such file ({path.as_posix()})")
    if not path.is_file() or path.is_fifo():
        return None, located(f"spec.content_file {value!r} is not a regular file")
    shown = os.path.normpath(os.path.join(os.path.dirname(spec.file), value))
    documents, problems = read_documents(SourceFile(path, shown, explicit=True))
    if problems:
        return None, problems
    documents = [d for d in documents if d.value is not None]
    if len(documents) != 1:
        return None, located(
            f"spec.content_file {value!r} must hold one YAML document, not {len(documents)}"
        )
    content_doc = documents[0]
    content, prefix = _content_of(content_doc.value)
    if content is None:
        where = position(content_doc.node)
        message = "a spec's content file holds a mapping (the editable fields, or `spec:` them)"
        return None, [diag.error(message, shown, where[0], where[1], code="schema")]
    errors = _schema_errors(content, content_doc, shown, prefix, _content_validator())
    return (None, errors) if errors else (content, [])


def content_file_paths(specs: Sequence[SpecManifest]) -> set[str]:
    """The content files of `specs` as their diagnostics name them (FILE of FILE:LINE:COL)."""
    return {
        os.path.normpath(os.path.join(os.path.dirname(s.file), s.content_file))
        for s in specs
        if s.content_file is not None
    }


def _content_of(value: Any) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
    """The content in a file: under `spec:` (the web app's YAML) or the fields themselves."""
    if not isinstance(value, dict):
        return None, ()
    if "spec" in value:
        inner = value["spec"]
        return (inner, ("spec",)) if isinstance(inner, dict) else (None, ())
    return {k: v for k, v in value.items() if k != "metadata"}, ()


# -- across files ---------------------------------------------------------------------


def unique_names(claims: Sequence[SpecClaim]) -> list[Diagnostic]:
    """A Spec name used twice is an error at each later use, naming the first place."""
    first: dict[str, SpecClaim] = {}
    out = []
    for claim in claims:
        other = first.setdefault(claim.name, claim)
        if other is not claim:
            out.append(
                diag.error(
                    f"metadata.name {claim.name!r} is already used by the Spec manifest at "
                    f"{other.file}:{other.line}:{other.column}; spec names are unique",
                    claim.file,
                    claim.line,
                    claim.column,
                    code="duplicate-name",
                    path=("metadata", "name"),
                )
            )
    return out


def duplicates(claims: Sequence[SpecClaim]) -> set[str]:
    """Names claimed by more than one Spec document."""
    seen: set[str] = set()
    twice: set[str] = set()
    for claim in claims:
        (twice if claim.name in seen else seen).add(claim.name)
    return twice


def check_refs(
    runs: Sequence[Manifest],
    specs: Sequence[SpecManifest],
    known_specs: Callable[[], Collection[str]] | None = None,
    claims: Sequence[SpecClaim] = (),
) -> list[Diagnostic]:
    """Each run's `spec_ref.name` must name a Spec manifest or an adopted spec.

    `known_specs` gives the spec names state records (plan, apply); without it
    (`dfr validate`, which reads no state) a name no manifest declares is a
    warning, not an error.

    `claims`: every Spec document's name, valid or not (an invalid Spec manifest
    already has its own error; its runs are not reported again).
    """
    declared = {s.name for s in specs} | {c.name for c in claims}
    missing = [m for m in runs if m.spec_ref is not None and m.spec_ref.name not in declared]
    if not missing:
        return []
    adopted = set(known_specs()) if known_specs is not None else set()
    out = []
    for run in missing:
        ref = run.spec_ref
        assert ref is not None
        if ref.name in adopted:
            continue
        where = _ref_place(run)
        near = schema.suggest(ref.name, sorted(declared | adopted))
        if known_specs is None:
            # `dfr validate` reads no state (it runs offline, in pre-commit hooks
            # too): a name no manifest declares may be an adopted spec, which
            # plan and apply check against state.
            report, message = (
                diag.warning,
                f"spec.spec_ref.name {ref.name!r} names no Spec manifest among the files "
                f"read; plan and apply need it adopted in state "
                f"(`dfr import spec {ref.name} SPEC_ID`){near}",
            )
        else:
            report, message = (
                diag.error,
                f"spec.spec_ref.name {ref.name!r} names no Spec manifest and no spec in state: "
                f"add a `kind: Spec` manifest, or adopt the spec with "
                f"`dfr import spec {ref.name} SPEC_ID`{near}",
            )
        out.append(
            report(
                message,
                run.file,
                where[0],
                where[1],
                code="unknown-spec",
                path=("spec", "spec_ref", "name"),
            )
        )
    return out


def _place(
    file: str, name: str, path: tuple[str, ...], default: tuple[int, int], *, spec: bool = True
) -> tuple[int, int]:
    """Where `path` is written in the (Spec if `spec`, else run) manifest `name` of `file`:
    the file is read again, which only error paths do."""
    documents, _ = read_documents(SourceFile(Path(file), file, explicit=True))
    for doc in documents:
        value = doc.value
        metadata = value.get("metadata") if isinstance(value, dict) else None
        named = isinstance(metadata, dict) and metadata.get("name") == name
        if named and is_spec_document(value) == spec:
            return position(locate(doc.node, path))
    return default


def _ref_place(run: Manifest) -> tuple[int, int]:
    """Where a run's `spec.spec_ref.name` is written."""
    return _place(
        run.file, run.name, ("spec", "spec_ref", "name"), (run.line, run.column), spec=False
    )


__all__ = [
    "SPEC_KIND",
    "SpecClaim",
    "check_refs",
    "check_spec_document",
    "content_file_paths",
    "content_path_problem",
    "create_body",
    "duplicates",
    "is_spec_document",
    "load_content_files",
    "spec_manifest_schema",
    "unique_names",
]
