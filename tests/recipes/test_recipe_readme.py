"""The "CI recipes" section (docs/ci.md, README's until issue 15) says what the
recipes do, line for line.

Issue 14: README promised what the recipes did not do (a concurrency group that
"never cancels", a refresh-only hourly job, a state saved "even when canceled" by an
after_script whose failures GitLab ignores). These tests tie the prose to the YAML:
every step, command, setting, secret, trigger, group and quoted message of the
recipes is in the section, in the recipes' order, and every message it quotes is one
the recipes print.
"""

from __future__ import annotations

import re
from typing import Any

from recipe_harness import load, scripts
from recipe_support import CI, ROOT, pinned_version

GITHUB = CI / "github-actions.yml"
GITLAB = CI / "gitlab-ci.yml"


def _section() -> str:
    ci_doc = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    start = ci_doc.index("\n## CI recipes\n")
    end = ci_doc.index("\n## ", start + 1)
    return ci_doc[start:end]


def _flat(text: str) -> str:
    return " ".join(text.split())


def _commands(path: Any) -> list[str]:
    """Every dfr command line of a recipe, continuation lines joined, output
    redirections kept, helpers (`pg`) and `|| ...` tails dropped."""
    found = []
    for _, script in scripts(path):
        joined = re.sub(r"\\\n\s*", " ", script)
        for line in joined.splitlines():
            line = line.strip()
            line = re.sub(r"^(if \[.*\]; then |pg |PGPASSWORD=\S+ )", "", line)
            line = re.sub(
                r"^PGPASSWORD=\"\$\(cat \"\$\{DFR_PGPASSWORD_FILE:-/dev/null\}\"\)\" ", "", line
            )
            line = re.sub(r"\s*(\|\|.*|\| tee .*|; fi)$", "", line)
            if line.startswith("dfr "):
                found.append(_flat(line))
    return found


def test_every_dfr_command_of_the_recipes_is_in_readme_verbatim() -> None:
    section = _flat(_section().replace("`", " "))
    for path in (GITHUB, GITLAB):
        commands = _commands(path)
        assert len(commands) >= 5, commands
        for command in commands:
            assert command in section, f"{path.name}: {command}"


def test_the_github_steps_are_in_readme_in_order() -> None:
    section = _section()
    for job_name, job in load(GITHUB)["jobs"].items():
        assert f"Job `{job_name}`" in section
        start = section.index(f"Job `{job_name}`")
        position = start
        for step in job["steps"]:
            label = f"**{step['name']}**" if "name" in step else f"`{step['uses'].split('@')[0]}`"
            found = section.find(label, position)
            assert found != -1, f"{job_name}: {label} missing (or out of order) in README"
            position = found


def test_settings_secrets_triggers_and_groups_are_in_readme() -> None:
    section = _section()
    flat = _flat(section)
    github = GITHUB.read_text()
    gitlab = GITLAB.read_text()
    names = set(re.findall(r"(?:secrets|vars)\.(\w+)", github))
    names |= set(re.findall(r"\$\{?(DFR_\w+_FILE)\b", gitlab)) | {"DFR_BACKEND"}
    assert names >= {"DATAFRAMER_API_KEY", "DFR_PGPASSWORD", "DFR_BACKEND", "DFR_PUSH_TOKEN_FILE"}
    for name in names:
        assert f"`{name}`" in section, name
    assert f'`DFR_VERSION: "{pinned_version()}"`' in section
    doc = load(GITHUB)
    assert f'cron: "{doc[True]["schedule"][0]["cron"]}"' in section
    for pattern in doc[True]["push"]["paths"]:
        assert f"`{pattern}`" in section
    group = doc["jobs"]["apply"]["concurrency"]
    assert f"{{group: {group['group']}, cancel-in-progress: false}}" in section
    assert f"`resource_group: {load(GITLAB)['apply']['resource_group']}`" in section
    for job in ("validate", "plan", "apply"):
        assert f"- `{job}`," in section
    assert "`needs: []`" in section and load(GITLAB)["plan"]["needs"] == []
    waits = set(re.findall(r"sleep (\d+)", github + gitlab))
    defaults = set(re.findall(r"DFR_STATE_LOCK_WAIT:-(\d+)", github + gitlab))
    assert len(waits) == len(defaults) == 1
    assert f"every {waits.pop()} seconds" in flat and f"(default {defaults.pop()})" in flat
    attempts = set(re.findall(r"for _ in ((?:\d )+\d);", github + gitlab))
    assert attempts == {"1 2 3"} and "(3 attempts in all)" in flat


def test_every_message_readme_quotes_is_one_the_recipes_print() -> None:
    recipes = _flat(GITHUB.read_text() + GITLAB.read_text())
    quoted = [
        text.removesuffix(" ...")
        for text in re.findall(r'"([^"]*)"', _flat(re.sub(r"(?s)```.*?```", "", _section())))
        if len(text) >= 20 and not re.search(r"[`$]", text)
    ]
    assert len(quoted) >= 5, quoted
    for message in quoted:
        assert message in recipes, message


def test_the_pinned_version_is_the_one_readme_names() -> None:
    version = pinned_version()
    readme = (ROOT / "README.md").read_text()
    ci_doc = (ROOT / "docs" / "ci.md").read_text()
    assert f"    rev: v{version}\n" in ci_doc  # the pre-commit hook's tag
    assert f"pip install 'dataframer-reconciler[postgres]=={version}'" in readme
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
