"""A spec's editable content as one canonical YAML text, and its digest.

The API keeps a spec's content as `content_yaml`: a YAML document whose root
key `spec:` holds the editable fields (`description`, `requirements`,
`data_property_variations`, `selected_sql_schema_column`,
`selected_sql_query_columns`); a `metadata:` section is read-only and ignored
by the API. Two texts that say the same thing (keys in another order, other
quoting, flow or block style, comments) must compare equal, both in the planner
(manifest content against the version state recorded) and in the applier (an
update whose answer was lost is resolved by comparing the latest version's
text with what was sent). Both use this module, so they cannot disagree.

The canonical form (`normalise_yaml`, `content_yaml`):
- parsed as YAML 1.2 with `reconciler.yamlsafe` (the manifests' own reader:
  `yes` stays a string, so a value never changes meaning between the two);
- only the `spec:` mapping is kept (`metadata:` and anything else dropped);
- mapping keys sorted at every depth, block style, multi-line strings as
  literal blocks where YAML allows it, no line folding;
- re-parsing the canonical text gives the same value, so normalising twice
  gives the same text (checked here; a value plain style cannot carry back
  unchanged is written with every string double-quoted instead).

`content_sha256` is the hex SHA-256 of the canonical text's UTF-8 bytes: what
state records per version (`SpecRecord.versions[].sha256`) and plans carry.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from reconciler.yamlsafe import YAMLProblem, parse_documents

#: The fields of a spec's content the API lets a PUT change (SpecUpdateParams' docstring).
EDITABLE_FIELDS = (
    "description",
    "requirements",
    "data_property_variations",
    "selected_sql_schema_column",
    "selected_sql_query_columns",
)
ROOT = "spec"


class ContentError(ValueError):
    """Text that is not a spec's content YAML (`line`, `column`: 1-based, when known)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as literal blocks (readable in the web app)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # The emitter falls back to a quoted style when a literal block cannot hold
    # the text exactly (trailing spaces, special characters).
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def parse_content(text: str) -> dict[str, Any]:
    """The `spec:` mapping of a content YAML text (`metadata:` and the rest dropped).

    A text whose root mapping has no `spec:` key is taken as the editable fields
    themselves (the form a manifest's `content:` and a `content_file:` may use).
    Raises ContentError for text that is not one YAML mapping.
    """
    try:
        documents = [d for d in parse_documents(text) if d.value is not None]
    except YAMLProblem as p:
        raise ContentError(p.message, p.line + 1, p.column + 1) from None
    if not documents:
        return {}
    if len(documents) > 1:
        second = documents[1]
        raise ContentError("expected one YAML document, found several", second.line, second.column)
    value = documents[0].value
    if not isinstance(value, dict):
        raise ContentError("a spec's content is a mapping", documents[0].line, documents[0].column)
    if ROOT in value:
        inner = value[ROOT]
        if inner is None:
            return {}
        if not isinstance(inner, dict):
            raise ContentError(f"the {ROOT!r} key of a spec's content holds a mapping")
        return dict(inner)
    return {k: v for k, v in value.items() if k != "metadata"}


def _dump(document: Mapping[str, Any], *, quoted: bool = False) -> str:
    return yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=True,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
        default_style='"' if quoted else None,
    )


def content_yaml(content: Mapping[str, Any]) -> str:
    """The canonical content YAML (`spec:` root) of a spec's editable fields.

    This is the exact text an update PUTs as `content_yaml`.
    """
    document = {ROOT: dict(content)}
    text = _dump(document)
    try:
        if parse_content(text) == document[ROOT]:
            return text
    except ContentError:
        pass
    return _dump(document, quoted=True)  # every string quoted: nothing can be read otherwise


def normalise_yaml(text: str) -> str:
    """The canonical form of any content YAML text (an API answer, a file, a manifest's)."""
    return content_yaml(parse_content(text))


def sha256_of(canonical: str) -> str:
    """Hex SHA-256 of a canonical text (already normalised)."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_sha256(content: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the canonical form of `content` (the editable fields)."""
    return sha256_of(content_yaml(content))


def text_sha256(text: str) -> str:
    """Hex SHA-256 of the canonical form of a content YAML text (raises ContentError)."""
    return sha256_of(normalise_yaml(text))


def same_content(a: str, b: str) -> bool:
    """Do two content YAML texts say the same thing? False when either does not parse."""
    try:
        return normalise_yaml(a) == normalise_yaml(b)
    except ContentError:
        return False


__all__ = [
    "EDITABLE_FIELDS",
    "ContentError",
    "content_sha256",
    "content_yaml",
    "normalise_yaml",
    "parse_content",
    "same_content",
    "sha256_of",
    "text_sha256",
]
