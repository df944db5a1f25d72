"""What the commands share: load -> check -> plan -> budget -> preflight, written once
(`prepare_plan`), and a command's client and locked state (`session`).

Layers: `reconciler.cli` parses, `reconciler.commands` run one command each, this
package wires the core (`plan`, `apply`, `api`, `state`) for them; nothing below
imports it.

The names are loaded on first use, so that importing one submodule (`dfr validate`
reads `engine.specnames`) does not load the planner.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Light (contextlib, dataclasses), and named like its module: imported here, so that
# the package's `session` is the function, not the submodule.
from reconciler.engine.session import Session, session

if TYPE_CHECKING:
    from reconciler.engine.pipeline import Loaded, Prepared, prepare_plan

__all__ = ["Loaded", "Prepared", "Session", "prepare_plan", "session"]

_HOMES = {
    "Loaded": "pipeline",
    "Prepared": "pipeline",
    "prepare_plan": "pipeline",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'reconciler.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"reconciler.engine.{home}"), name)
