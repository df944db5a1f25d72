"""The docs hold together: README is the front door, every link lands, and
docs/architecture.md names every module of the package (issue 15, item 7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
ARCHITECTURE = ROOT / "docs" / "architecture.md"
PACKAGE = ROOT / "reconciler"

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def prose(text: str) -> list[str]:
    """The lines of a markdown text with fenced code blanked (line numbers kept)."""
    lines, fence = [], ""
    for line in text.splitlines():
        found = FENCE.match(line)
        if found:
            marker = found.group(1)
            if not fence:
                fence = marker
            elif marker.startswith(fence) and not line.strip()[len(marker) :].strip():
                fence = ""
            lines.append("")
            continue
        lines.append("" if fence else line)
    return lines


def anchors(path: Path) -> set[str]:
    """The #anchors GitHub makes from a file's headings: lower case, punctuation
    dropped, spaces as hyphens, a repeated one suffixed -1, -2, ..."""
    seen: dict[str, int] = {}
    for line in prose(path.read_text(encoding="utf-8")):
        heading = HEADING.match(line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
    found = set()
    for slug, count in seen.items():
        found.add(slug)
        found.update(f"{slug}-{n}" for n in range(1, count))
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every markdown link outside code."""
    for number, line in enumerate(prose(path.read_text(encoding="utf-8")), 1):
        for found in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            yield number, found.group(1)


def test_github_anchors_are_made_as_github_makes_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n## The project file `dfr.yaml`\n```\n## not a heading\n```\n"
        "### `dfr state list|show NAME`\n## Title\n## YAML, read strictly\n",
        encoding="utf-8",
    )
    assert anchors(page) == {
        "title",
        "title-1",
        "the-project-file-dfryaml",
        "dfr-state-listshow-name",
        "yaml-read-strictly",
    }


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    checked = 0
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        destination = (page.parent / path).resolve() if path else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        assert destination.exists(), f"{where}: no such file"
        if anchor:
            assert destination.suffix == ".md", where
            assert anchor in anchors(destination), f"{where}: no such heading"
        checked += 1
    if page == README:
        assert checked >= 10


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < 250, len(lines)
    for name in (
        "manifests",
        "commands",
        "state",
        "reliability",
        "guardrails",
        "ci",
        "performance",
        "architecture",
    ):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name
        assert f"](docs/{name}.md" in "\n".join(lines), name


def modules() -> list[str]:
    """Every module of the package as architecture.md names it, relative to
    reconciler/: `plan.py`, `state/model.py`; a package's __init__ and __main__
    are the package itself (`views/`, and `reconciler/` for the top one)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if path.stem in ("__init__", "__main__"):
            folder = relative.parent.as_posix()
            names.add("reconciler/" if folder == "." else f"{folder}/")
        else:
            names.add(relative.as_posix())
    return sorted(names)


def test_architecture_names_every_module_of_the_package() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    found = modules()
    assert "state/model.py" in found and "api/" in found and "reconciler/" in found
    missing = [
        name for name in found if not re.search(rf"(?<![\w/.]){re.escape(name)}(?![\w/])", text)
    ]
    assert not missing, f"docs/architecture.md does not name: {missing}"
