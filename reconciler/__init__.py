"""dataframer-reconciler: config-as-code for Dataframer generation runs.

Import nothing heavy here: `dfr --version` must start in well under 0.15 s.
"""

__version__ = "0.1.0"
