"""One module per `dfr` command (or group of commands): each has an args dataclass
and `run(inv, args, out, err) -> int` (an exit code).

`reconciler.cli` parses the command line into the args and the `Invocation` (the
settings, resolved once); the commands wire the core through `reconciler.engine`
and write to the streams they are given. No click here.
"""
