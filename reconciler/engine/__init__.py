"""What the commands share: load -> check -> plan -> budget -> preflight, written once
(`prepare_plan`), and a command's client and locked state (`session`).

Layers: `reconciler.cli` parses, `reconciler.commands` run one command each, this
package wires the core (`plan`, `apply`, `api`, `state`) for them; nothing below
imports it.
"""

from reconciler.engine.pipeline import Loaded, Prepared, prepare_plan
from reconciler.engine.session import Session, session

__all__ = ["Loaded", "Prepared", "Session", "prepare_plan", "session"]
