"""dfr is release-ready: built from a tag, checked by twine, pinned where users copy it.

The version comes from the git tag (hatch-vcs). `python -m build` and `twine check`
pass on the tree as it is; a clone without tags (CI's) builds a development version
and `dfr --version` says it; a tree never installed still answers --version. The
version the recipes pin is the one README's pre-commit `rev:` and install line name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from recipe_harness import git
from recipe_support import GIT_IDENTITY, ROOT, Release, copy_tree

BIN = Path(sys.executable).parent


def test_the_release_build_has_the_tag_s_version_and_passes_twine_check(release: Release) -> None:
    assert release.sdist.name == f"dataframer_reconciler-{release.version}.tar.gz"
    assert release.wheel.name == f"dataframer_reconciler-{release.version}-py3-none-any.whl"
    with zipfile.ZipFile(release.wheel) as wheel:
        names = set(wheel.namelist())
        version_file = wheel.read("reconciler/_version.py").decode()
        metadata = wheel.read(
            f"dataframer_reconciler-{release.version}.dist-info/METADATA"
        ).decode()
    assert f'__version__ = "{release.version}"' in version_file
    assert f"\nVersion: {release.version}\n" in metadata
    assert "reconciler/schemas/generation-run.schema.json" in names
    # `dfr demo` outside a checkout runs the examples the wheel carries.
    examples = {n for n in names if n.startswith("reconciler/examples/manifests/")}
    assert "reconciler/examples/manifests/product-reviews.yaml" in examples, names
    assert len(examples) == len(list((ROOT / "examples/manifests").rglob("*.yaml")))
    assert "Requires-Dist: psycopg[binary]>=3.1; extra == 'postgres'" in metadata
    done = subprocess.run(
        [str(BIN / "twine"), "check", "--strict", str(release.sdist), str(release.wheel)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_clone_without_tags_builds_a_development_version_that_dfr_reports(
    tmp_path: Path,
) -> None:
    # CI's fresh clone has no tags (and may be shallow): hatch-vcs must still give a
    # version, and the editable install's --version must print it.
    source = tmp_path / "src"
    copy_tree(source)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **GIT_IDENTITY}
    git("init", "-q", "-b", "main", cwd=source, env=env)
    git("add", "-A", cwd=source, env=env)
    git("commit", "-q", "-m", "one", cwd=source, env=env)
    clone = tmp_path / "clone"
    git("clone", "-q", "--depth=1", f"file://{source}", str(clone), cwd=tmp_path, env=env)
    build_env = {k: v for k, v in os.environ.items() if not k.startswith("SETUPTOOLS_SCM")}
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir", "dist", "."],
        cwd=clone,
        capture_output=True,
        text=True,
        env=build_env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = (clone / "dist").glob("*.whl")
    version = wheel.name.split("-")[1]
    assert re.fullmatch(r"\d+\.\d+\.dev\d+\+g[0-9a-f]+(\.d\d+)?", version), version
    # The build hook wrote the version file into the tree too, as an editable install does.
    assert (clone / "reconciler" / "_version.py").read_text().strip().endswith(f'"{version}"')
    shown = _version_shown(clone)
    assert (shown.returncode, shown.stdout) == (0, f"dfr {version}\n"), shown.stderr


def _version_shown(tree: Path) -> subprocess.CompletedProcess[str]:
    """`python -m reconciler --version` run from the source tree `tree`, on its own path."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "--version"],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
        timeout=60,
        check=False,
    )


def test_a_tree_never_installed_still_answers_version(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    (tmp_path / "reconciler" / "_version.py").unlink(missing_ok=True)
    shown = _version_shown(tmp_path)
    assert (shown.returncode, shown.stdout, shown.stderr) == (0, "dfr 0.0.0+unknown\n", "")
