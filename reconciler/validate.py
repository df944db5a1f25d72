"""The `validate` pipeline: every file, every document, every problem, in one pass.

Reading, schema validation and the cross-document rules (unique names) and
cross-field rules all happen here and return values: the valid manifests and
the diagnostics. Nothing is printed and no exception escapes for bad input,
so plan and apply reuse this as their front end and refuse to go on when any
error was found.

The cross-field rules are warnings (`reconciler.model_advice`); the cross-file
rules are in `reconciler.validate_names`; `--jobs` workers in `validate_pool`.

`extra_models` (dfr.yaml's, see `reconciler.project`) are models a user
allows beyond this release's list: the schema check accepts them and no rule
warns about them; they are part of the validation cache's key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from reconciler import diagnostics as diag
from reconciler import outputs_check, schema
from reconciler.diagnostics import Diagnostic
from reconciler.manifests import (
    Manifest,
    SourceFile,
    SpecManifest,
    claims_manifest,
    discover,
    looks_like_manifest,
    parse_bytes,
    read_bytes,
    read_documents,
)
from reconciler.model_advice import cross_field_warnings
from reconciler.specs_check import SpecClaim, check_spec_document, is_spec_document
from reconciler.validate_names import check_specs, check_unique_names
from reconciler.validate_pool import examine_in_pool as _examine_in_pool
from reconciler.yamlsafe import Document, key_node_of, locate, position, yaml11_reading

if TYPE_CHECKING:
    from reconciler.vcache import Entry, ValidationCache


# A document's metadata.name and its place, valid or not, for the uniqueness rule:
# the record a Spec document's name is claimed with.
_Claim = SpecClaim


@dataclass(slots=True)
class ValidationResult:
    manifests: list[Manifest] = field(default_factory=list)
    names: list[_Claim] = field(default_factory=list)
    # `kind: Spec` manifests and every Spec document's name (reconciler.specs_check).
    specs: list[SpecManifest] = field(default_factory=list)
    spec_claims: list[SpecClaim] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0
    documents: int = 0
    skipped: int = 0

    @property
    def errors(self) -> int:
        return diag.count_errors(self.diagnostics)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.ok,
            "files": self.files,
            "manifests": len(self.manifests),
            "specs": len(self.specs),  # kind: Spec manifests
            "errors": self.errors,
            "warnings": self.warnings,
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }


#: An extra rule for each valid manifest (the project's policy, for example):
#: (file as shown, its document, the manifest) -> diagnostics. With more than
#: one job it may run in a forked worker process: it must be a pure function.
DocumentCheck = Callable[[str, Document, Manifest], list[Diagnostic]]

#: Fewest files to parse before parsing and schema checking go to a pool of
#: processes (`jobs` > 1): below it, starting the workers and sending the
#: results back cost about what the second core saves.
PARALLEL_MIN_FILES = 1_000


def validate_paths(
    paths: Sequence[str],
    *,
    skip_non_manifests: bool = False,
    checks: Sequence[DocumentCheck] = (),
    cache: ValidationCache | None = None,
    jobs: int = 1,
    parallel_min: int = PARALLEL_MIN_FILES,
    extra_models: Sequence[str] = (),
    root: str | os.PathLike[str] | None = None,
    known_specs: Callable[[], Collection[str]] | None = None,
) -> ValidationResult:
    """Read and check everything under `paths`; never raises for bad input.

    With a `cache` (`reconciler.vcache`), a file whose bytes were checked
    before without any finding is not parsed again; `checks` and the
    cross-file rules still run on every manifest. With `jobs` > 1 and at
    least `parallel_min` files to parse, forked worker processes parse and
    check them; the result is the same, in the same order, as with one job.
    `extra_models` (dfr.yaml's) are allowed beside the schema's models.
    `known_specs` gives the spec names state records (adopted specs), asked
    only when a run's `spec_ref` names no Spec manifest.
    `root` (the project root) is where `outputs.path` folders are resolved
    (`reconciler.outputs_check`); without it only the written paths are compared.
    """
    extra = tuple(sorted(set(extra_models)))
    result = ValidationResult()
    sources, problems = discover(paths)
    result.diagnostics.extend(problems)
    if jobs > 1 and len(sources) >= parallel_min:
        _validate_all(sources, result, skip_non_manifests, checks, cache, jobs, parallel_min, extra)
    else:  # one file at a time: its bytes are not kept once it is done
        for source in sources:
            read = _read(source, skip_non_manifests, cache, extra)
            _validate_file(source, read, result, skip_non_manifests, checks, cache, extra=extra)
    if cache is not None:
        cache.flush()
    check_unique_names(result)
    check_specs(result, known_specs, root)
    result.diagnostics.extend(outputs_check.check_all(result.manifests, root))
    result.diagnostics = diag.sort(result.diagnostics)
    return result


def _validate_all(
    sources: list[SourceFile],
    result: ValidationResult,
    skip_non_manifests: bool,
    checks: Sequence[DocumentCheck],
    cache: ValidationCache | None,
    jobs: int,
    parallel_min: int,
    extra: tuple[str, ...],
) -> None:
    """Every file read first (with a cache: is it in it?), then at least `parallel_min`
    to parse in a pool, or none there; merged in the files' order either way."""
    reads = [_read(source, skip_non_manifests, cache, extra) for source in sources]
    outcomes: Generator[_Outcome, None, None] | None = None
    todo = [i for i, read in enumerate(reads) if read.parse]
    if len(todo) >= parallel_min:
        outcomes = _examine_in_pool(sources, reads, todo, skip_non_manifests, checks, jobs, extra)
    ahead = iter(todo if outcomes is not None else ())
    next_todo = next(ahead, -1)
    try:
        for i, source in enumerate(sources):
            outcome = None
            if i == next_todo and outcomes is not None:
                outcome = next(outcomes)
                next_todo = next(ahead, -1)
            _validate_file(
                source, reads[i], result, skip_non_manifests, checks, cache, outcome, extra
            )
    finally:
        if outcomes is not None:
            outcomes.close()  # stops and joins the workers if this loop failed


class _Read(NamedTuple):
    """A file before parsing: with a cache, its bytes and key (read in this process)."""

    data: bytes | None
    problem: Diagnostic | None
    key: str | None
    parse: bool  # whether it will (most likely) be parsed: no cache entry for it


class _Outcome(NamedTuple):
    """What parsing and checking one file gave: plain values, picklable for a worker."""

    diagnostics: list[Diagnostic]
    clean: bool  # no diagnostic before the checks: worth remembering in the cache
    names: list[_Claim]
    documents: int
    skipped: int
    manifests: list[Manifest]
    indexes: list[int]  # each valid manifest's document index
    specs: list[SpecManifest] = []  # noqa: RUF012 - never mutated (a NamedTuple default)
    spec_claims: list[SpecClaim] = []  # noqa: RUF012


def _strict(source: SourceFile, skip_non_manifests: bool) -> bool:
    return source.explicit and not skip_non_manifests


def _read(
    source: SourceFile,
    skip_non_manifests: bool,
    cache: ValidationCache | None,
    extra: tuple[str, ...] = (),
) -> _Read:
    if cache is None:
        return _Read(None, None, None, True)  # read and parsed in one go, later
    data, problem = read_bytes(source)
    if data is None:
        return _Read(None, problem, None, False)
    key = cache.key(data, _strict(source, skip_non_manifests), extra)
    return _Read(data, None, key, not cache.has(key))


def _validate_file(
    source: SourceFile,
    read: _Read,
    result: ValidationResult,
    skip_non_manifests: bool,
    checks: Sequence[DocumentCheck] = (),
    cache: ValidationCache | None = None,
    outcome: _Outcome | None = None,
    extra: tuple[str, ...] = (),
) -> None:
    """One file into `result`; `outcome` is its parse and check when a worker made it."""
    result.files += 1
    if cache is not None:
        if read.data is None:
            result.diagnostics.extend([read.problem] if read.problem is not None else [])
            return
        assert read.key is not None
        hit = cache.get(read.key)
        if hit is not None:
            for doc, manifest in _replay(source, read.data, hit, result):
                for check in checks:
                    result.diagnostics.extend(check(source.display, doc, manifest))
            return
    if outcome is None:
        outcome = _examine(source, read.data, skip_non_manifests, checks, extra)
    result.diagnostics.extend(outcome.diagnostics)
    result.names.extend(outcome.names)
    result.manifests.extend(outcome.manifests)
    result.specs.extend(outcome.specs)
    result.spec_claims.extend(outcome.spec_claims)
    result.documents += outcome.documents
    result.skipped += outcome.skipped
    # A file with Spec documents is not cached: its content files may change alone.
    if cache is not None and outcome.clean and not outcome.spec_claims:
        from reconciler.vcache import entry

        assert read.key is not None
        found = [
            [m.name, m.spec, m.labels, m.line, m.column, index, outputs_check.cache_form(m)]
            for m, index in zip(outcome.manifests, outcome.indexes, strict=True)
        ]
        cache.put(read.key, entry(outcome.documents, outcome.skipped, found))


def _examine(
    source: SourceFile,
    data: bytes | None,
    skip_non_manifests: bool,
    checks: Sequence[DocumentCheck],
    extra: tuple[str, ...] = (),
) -> _Outcome:
    """Parse and check one file (`data`: its bytes, or None to read them here)."""
    if data is None:
        documents, problems = read_documents(source)
    else:
        documents, problems = parse_bytes(source, data)
    part = ValidationResult()
    strict = _strict(source, skip_non_manifests)
    valid = _check_documents(source, documents, problems, part, strict, extra)
    clean = not part.diagnostics
    for doc, manifest in valid:
        for check in checks:
            part.diagnostics.extend(check(source.display, doc, manifest))
    return _Outcome(
        part.diagnostics,
        clean,
        part.names,
        part.documents,
        part.skipped,
        part.manifests,
        [doc.index for doc, _ in valid],
        part.specs,
        part.spec_claims,
    )


def _replay(
    source: SourceFile, data: bytes, hit: Entry, result: ValidationResult
) -> list[tuple[Document, Manifest]]:
    """What a clean file gave last time: its manifests, counted as if read now."""
    result.documents += hit["d"]
    result.skipped += hit["s"]
    parsed: list[Document] = []  # shared by the lazy documents of this file
    out = []
    for name, spec, labels, line, column, index, cached in hit["m"]:
        result.names.append(_Claim(name, source.display, line, column))
        sections = outputs_check.from_cache_form(cached, source.display)
        manifest = Manifest(name, spec, labels, source.display, line, column, **sections)
        result.manifests.append(manifest)
        out.append((cast(Document, _LazyDocument(source, data, index, parsed)), manifest))
    return out


class _LazyDocument:
    """A cached manifest's document, parsed from the file's bytes only if a check asks.

    Checks (the project's policy) look at the document only to place a finding,
    so for a compliant manifest the file is never parsed again.
    """

    def __init__(self, source: SourceFile, data: bytes, index: int, parsed: list[Document]):
        self._source, self._data, self.index, self._parsed = source, data, index, parsed

    def _doc(self) -> Document:
        if not self._parsed:
            documents, _ = parse_bytes(self._source, self._data)
            self._parsed.extend(documents)
        for doc in self._parsed:
            if doc.index == self.index:
                return doc
        raise LookupError(f"{self._source.display}: document {self.index} is gone")

    def __getattr__(self, name: str) -> Any:
        """`value`, `node`, `line`, `column`: the parsed document's (`index` is known)."""
        if name not in _PARSED_FIELDS:
            raise AttributeError(name)
        return getattr(self._doc(), name)


_PARSED_FIELDS = frozenset({"value", "node", "line", "column"})


def _check_documents(
    source: SourceFile,
    documents: list[Document],
    problems: list[Diagnostic],
    result: ValidationResult,
    strict: bool,
    extra: tuple[str, ...] = (),
) -> list[tuple[Document, Manifest]]:
    """Schema and cross-field rules for a file's documents; the valid manifests."""
    result.diagnostics.extend(problems)
    valid: list[tuple[Document, Manifest]] = []
    for doc in documents:
        if doc.value is None:  # an empty document, e.g. after a trailing '---'
            continue
        result.documents += 1
        if is_spec_document(doc.value):  # kind: Spec, checked by reconciler.specs_check
            spec = check_spec_document(source, doc, result.diagnostics, result.spec_claims)
            result.specs.extend([spec] if spec is not None else [])
            continue
        if not claims_manifest(doc.value):
            if strict:
                result.diagnostics.append(_not_a_manifest(source, doc))
            else:
                result.skipped += 1
                if looks_like_manifest(doc.value):
                    line, col = doc.line, doc.column
                    result.diagnostics.append(
                        diag.warning(
                            "skipped: this document looks like a run but has no "
                            f"'apiVersion: {schema.API_VERSION}' and 'kind: {schema.KIND}'",
                            source.display,
                            line,
                            col,
                            code="not-a-manifest",
                        )
                    )
            continue
        manifest = _validate_document(source, doc, result, extra)
        if manifest is not None:
            valid.append((doc, manifest))
    return valid


def _not_a_manifest(source: SourceFile, doc: Document) -> Diagnostic:
    value = doc.value
    if not isinstance(value, dict):
        what = "a list" if isinstance(value, list) else f"a single value ({value!r:.40})"
        message = f"document is {what}; a manifest is a mapping"
    else:
        message = (
            f"document is not a manifest: it needs 'apiVersion: {schema.API_VERSION}' "
            f"and 'kind: {schema.KIND}'"
        )
    return diag.error(message, source.display, doc.line, doc.column, code="not-a-manifest")


def _validate_document(
    source: SourceFile, doc: Document, result: ValidationResult, extra: tuple[str, ...] = ()
) -> Manifest | None:
    metadata = doc.value.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        line, col = position(locate(doc.node, ("metadata", "name")))
        result.names.append(_Claim(metadata["name"], source.display, line, col))
    found = False
    for problem in schema.problems(doc.value, schema.validator(extra)):
        found = True
        node = (
            key_node_of(doc.node, problem.path)
            if problem.on_key
            else locate(doc.node, problem.path)
        )
        message = problem.message
        reading = None if problem.on_key else yaml11_reading(node)
        if reading is not None:
            message += (
                f" (dfr reads YAML 1.2, where {node.value!r} is a string; YAML 1.1 tools read "
                f"it as {reading}: write it as {reading if reading != 'a number' else 'digits'})"
            )
        line, col = position(node)
        result.diagnostics.append(
            diag.error(message, source.display, line, col, code="schema", path=problem.path)
        )
    if found:
        return None
    value = doc.value
    metadata = value["metadata"]
    # A manifest's place is its name: that is what other messages point at.
    claim = result.names[-1]
    line, col = claim.line, claim.column
    extra_sections, section_problems = outputs_check.sections(source.display, doc)
    if section_problems:
        result.diagnostics.extend(section_problems)
        return None
    manifest = Manifest(
        name=metadata["name"],
        spec=value["spec"],
        labels=dict(metadata.get("labels") or {}),
        file=source.display,
        line=line,
        column=col,
        **extra_sections,
    )
    result.manifests.append(manifest)
    result.diagnostics.extend(cross_field_warnings(source, doc, manifest, extra))
    return manifest
