"""The manifest field table and model list (docs/manifests.md, README's until issue 15)
are the schema's, and the examples of README and docs/ are current."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler import schema
from reconciler.validate import validate_paths

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "docs" / "manifests.md").read_text(encoding="utf-8")
# README and every page of docs/, for what holds wherever the docs say it
ALL_DOCS = "\n".join(
    p.read_text(encoding="utf-8")
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)


def section(title: str) -> str:
    """From `title` to the next heading (## or ###)."""
    rest = README.split(title, 1)[1]
    return title + re.split(r"^#{2,3} ", rest, maxsplit=1, flags=re.M)[0]


def table_rows() -> dict[str, str]:
    """`spec.X` -> its row in the manifest field table."""
    rows = re.findall(r"^\| `spec\.([a-z_]+)` \|(.*)$", README, flags=re.M)
    return dict(rows)


def test_the_field_table_has_every_spec_field_in_the_schemas_order() -> None:
    assert list(table_rows()) == list(schema.spec_schema()["properties"])


def test_deprecated_fields_are_marked_in_the_table() -> None:
    rows = table_rows()
    for name, prop in schema.spec_schema()["properties"].items():
        assert ("deprecated" in rows[name]) == bool(prop.get("deprecated")), name


def test_thinking_and_revision_only_fields_are_marked() -> None:
    rows = table_rows()
    for budget in schema.THINKING_BUDGETS:
        assert "thinking-only" in rows[budget], budget
    for name in ("revision_model", "max_revision_cycles", "revision_thinking_budget"):
        assert "revision-only" in rows[name], name


def test_the_model_list_is_the_current_one() -> None:
    listed = section("\nModels (the current API's")
    assert re.findall(r"`([A-Za-z][^`\s]*/[^`\s]+)`", listed) == schema.current_models()


def test_the_api_version_section_names_the_schemas_sdk_version() -> None:
    text = section("### Which API version dfr speaks")
    assert f"**`pydataframer`\n{schema.sdk_version()}**" in text
    assert "extra_models: [acme/new-model-9" in text
    assert "python scripts/sync_sdk_schema.py --check" in text


def test_readme_manifests_validate_without_a_warning(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", ALL_DOCS, flags=re.S)
    # README's tour repeats docs/manifests.md's example: each distinct one once
    manifests = list(dict.fromkeys(b for b in blocks if "kind: GenerationRun" in b))
    assert manifests
    for i, text in enumerate(manifests):
        (tmp_path / f"m{i}.yaml").write_text(text, encoding="utf-8")
    result = validate_paths([str(tmp_path)])
    assert result.diagnostics == []
    assert len(result.manifests) == len(manifests)


def test_readme_names_no_model_the_current_api_dropped_outside_its_own_paragraph() -> None:
    dropped = [m for m in schema.legacy_models() if m not in schema.current_models()]
    outside = ALL_DOCS.replace(section("### Which API version dfr speaks"), "")
    for line in outside.splitlines():
        if "did you mean" in line:
            continue  # examples/invalid's documented output: a typo of an old model
        for model in dropped:
            assert model not in line, line
