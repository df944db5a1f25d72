"""A state's lock holder in another process, for the tests of what outlives a process.

`Holder(["file", PATH, ""])` or `Holder(["postgres", URL, WORKSPACE])` starts
`python -c CHILD`, which locks that state and obeys commands on its stdin.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["CHILD", "Holder"]

#: A child process that takes the lock, says `locked LOCK_ID`, then obeys stdin:
#: `put NAME` (a record with an intent; answers `ok NAME` once durable), `flood`
#: (puts n0..n299 round and round, printing `NAME I` after each put returned),
#: `release`. A failed command answers `error TYPE MESSAGE`.
CHILD = r"""
import sys
from reconciler.state.model import Intent, RunRecord
kind, where, workspace = sys.argv[1:4]
if kind == "file":
    from reconciler.state.local import LocalBackend
    backend = LocalBackend(where)
else:
    from reconciler.state.postgres import PostgresBackend
    backend = PostgresBackend(where, workspace)
with backend.lock("apply") as store:
    print("locked", store.lock_id, flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        try:
            if command == "put":
                store.put(RunRecord.new(arg, intent=Intent.new({"name": arg})))
                print("ok", arg, flush=True)
            elif command == "flood":
                i = 0
                while True:
                    name = f"n{i % 300}"
                    store.put(RunRecord.new(name, run_id=f"run-{i}", intent=Intent.new({"i": i})))
                    print(name, i, flush=True)
                    i += 1
            elif command == "release":
                break
        except Exception as exc:
            print("error", type(exc).__name__, exc, flush=True)
print("released", flush=True)
"""


class Holder:
    """A child process holding the lock of a subject's state (see CHILD)."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid
        line = self.readline()
        if not line.startswith("locked "):
            self.proc.kill()
            raise AssertionError(f"holder did not lock: {line!r} {self.proc.communicate()[1]}")
        self.lock_id = line.split()[1]

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def ask(self, line: str) -> str:
        self.tell(line)
        return self.readline()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)
