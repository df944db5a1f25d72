"""`dfr init [DIR]`: a starter manifest with the schema modeline, and the pre-commit snippet.

Writes `DIR/dataframer/example-run.yaml` and, next to it, the JSON Schema the
modeline points at (`generation-run.schema.json`, as `dfr schema` prints it), so
editors offer completion and hover help offline, with no URL to host. It never
overwrites a file: if one exists (with other content), nothing is written and
the command exits 1. It then prints the `.pre-commit-config.yaml` snippet that
runs `dfr validate` and `dfr fmt --check` on the manifests.
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
        entry: dfr pre-commit
        language: system
        require_serial: true
        files: (^|/)(dataframer|manifests)/.+\\.ya?ml$
      - id: dfr-fmt
        name: dfr fmt --check
        entry: dfr fmt --check
        language: system
        files: (^|/)(dataframer|manifests)/.+\\.ya?ml$
"""


@dataclass(frozen=True, slots=True)
class InitArgs:
    directory: str = "."


def run_init(inv: Invocation, args: InitArgs, out: TextIO, err: TextIO) -> int:
    from reconciler.schema import schema_text

    directory = args.directory
    folder = os.path.join(directory, FOLDER)
    files = {
        os.path.join(folder, MANIFEST): STARTER,
        os.path.join(folder, SCHEMA): schema_text(),
    }
    for path, text in files.items():
        if os.path.lexists(path) and not _same(path, text):
            raise UsageError(
                f"{path} already exists; dfr init never overwrites a file (nothing was written)"
            )
    os.makedirs(folder, exist_ok=True)
    written = []
    for path, text in files.items():
        if not os.path.exists(path):
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(text)
            written.append(path)
    if written:
        out.write(f"Wrote {' and '.join(written)} (the modeline names the schema).\n")
    else:
        out.write(f"{folder} already holds the starter files; nothing was written.\n")
    out.write(
        f"Next: set spec_id to one of your specs, then `dfr validate {folder}` and "
        f"`dfr plan {folder}`.\n\n"
        "To check manifests before each commit, add this to .pre-commit-config.yaml:\n\n"
    )
    out.write(PRE_COMMIT)
    return EXIT_OK


def _same(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except (OSError, UnicodeDecodeError):
        return False
