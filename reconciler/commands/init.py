"""`dfr init [DIR]`: a starter manifest with the schema modeline, and the pre-commit snippet.

Writes `DIR/dataframer/example-run.yaml` and, next to it, the JSON Schema the
modeline points at (`generation-run.schema.json`, as `dfr schema` prints it), so
editors offer completion and hover help offline, with no URL to host. It never
overwrites a file: if one exists (with other content), or `dataframer` is not a
folder, nothing is written and the command exits 1. Both files are written or
neither: each is written beside its place and linked there (which fails rather
than replace a file), and a failure (a full disk, a read-only folder) removes
what this run made. It then prints the `.pre-commit-config.yaml` snippet that
runs `dfr validate` and `dfr fmt --check` on the manifests (`--` ends the
options, so a path starting with `-` is a file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from reconciler.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from reconciler.invocation import Invocation

FOLDER = "dataframer"
MANIFEST = "example-run.yaml"
SCHEMA = "generation-run.schema.json"

STARTER = """\
# yaml-language-server: $schema=generation-run.schema.json
# A Dataframer generation run, as code. `dfr plan` shows what `dfr apply` would do.
# Reference: `dfr schema` (JSON Schema) and docs/manifests.md.
apiVersion: dataframer.ai/v1
kind: GenerationRun
metadata:
  name: example-run                # the key in state; unique across all manifests
  labels:
    team: data                     # optional; `dfr status -l team=data` filters on it
spec:                              # exactly the request body of a run
  spec_id: 3c90c3cc-0d44-4b50-8888-8dd25736052a   # the spec to generate from (a UUID)
  spec_version: 1                  # leave out for the spec's latest version at submission
  number_of_samples: 100           # 1 to 20000
  generation_model: anthropic/claude-sonnet-5-5-thinking   # a model the current API lists
# outputs:                         # optional: where `dfr pull` writes the run's files
#   path: data/example-run         # a folder inside the repository (relative to its root)
#   files: ["*.jsonl"]             # globs of the files to keep; left out: every file
# evaluate: {}                     # optional: evaluate the run once it SUCCEEDED (it costs)
"""

#: The snippet `dfr init` prints; examples/ci/pre-commit-config.yaml holds the same text.
PRE_COMMIT = """\
# .pre-commit-config.yaml: check Dataframer manifests before each commit.
# Runs the dfr installed in your environment (pip install dataframer-reconciler).
repos:
  - repo: local
    hooks:
      - id: dfr-validate
        name: dfr validate
        # Names are compared across every manifest, not only the staged files.
        # `--`: every file name after it is a file, even one that starts with '-'.
        entry: dfr pre-commit --
        language: system
        require_serial: true
        files: (^|/)(dataframer|manifests)/.+\\.ya?ml$
      - id: dfr-fmt
        name: dfr fmt --check
        entry: dfr fmt --check --
        language: system
        files: (^|/)(dataframer|manifests)/.+\\.ya?ml$
"""


@dataclass(frozen=True, slots=True)
class InitArgs:
    directory: str = "."


def run_init(inv: Invocation, args: InitArgs, out: TextIO, err: TextIO) -> int:
    from reconciler.schema import schema_text

    folder = os.path.join(args.directory, FOLDER)
    files = {
        os.path.join(folder, MANIFEST): STARTER,
        os.path.join(folder, SCHEMA): schema_text(),
    }
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{_quoted(folder)} exists and is not a folder (nothing was written)")
    for path, text in files.items():
        if os.path.lexists(path) and not _same(path, text):
            raise UsageError(
                f"{_quoted(path)} already exists; dfr init never overwrites a file "
                "(nothing was written)"
            )
    written = _write_all(folder, {p: t for p, t in files.items() if not os.path.exists(p)})
    if written:
        shown = " and ".join(_quoted(p) for p in written)
        out.write(f"Wrote {shown} (the modeline names the schema).\n")
    else:
        out.write(f"{_quoted(folder)} already holds the starter files; nothing was written.\n")
    out.write(
        f"Next: set spec_id to one of your specs, then `dfr validate {_quoted(folder)}` and "
        f"`dfr plan {_quoted(folder)}`.\n\n"
        "To check manifests before each commit, add this to .pre-commit-config.yaml:\n\n"
    )
    out.write(PRE_COMMIT)
    return EXIT_OK


def _write_all(folder: str, files: dict[str, str]) -> list[str]:
    """Create every file, or none: what this call made is removed when one fails."""
    missing: list[str] = []  # the folders this call makes, deepest first
    at = os.path.abspath(folder)
    while not os.path.lexists(at):
        missing.append(at)
        at = os.path.dirname(at)
    written: list[str] = []
    where = folder
    try:
        os.makedirs(folder, exist_ok=True)
        for path, text in files.items():
            where = path
            _create(path, text)
            written.append(path)
    except OSError as exc:
        for path in written:
            os.unlink(path)
        for made in missing:
            if os.path.isdir(made) and not os.listdir(made):
                os.rmdir(made)
        raise UsageError(
            f"cannot write {_quoted(where)}: {exc.strerror or exc} (nothing was written)"
        ) from None
    return written


def _create(path: str, text: str) -> None:
    """Write `path` whole or not at all, never over a file (even one made meanwhile)."""
    temporary = f"{path}.dfr-init-{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if `path` exists: nothing is overwritten
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            _create_in_place(path, text)
    finally:
        os.unlink(temporary)


def _create_in_place(path: str, text: str) -> None:
    with open(path, "x", encoding="utf-8") as handle:
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            os.unlink(path)
            raise


def _quoted(path: str) -> str:
    from reconciler.textsafe import one_line

    return one_line(path)


def _same(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except (OSError, UnicodeDecodeError):
        return False
