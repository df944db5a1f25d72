"""The write session of the PostgreSQL backend: every change one transaction with a CAS.

A `PostgresStore` writes through the connection that holds its workspace's
advisory lock (so a lost connection means a lost lock and no further writes).
Each change compare-and-sets the workspace's `(lineage, serial)` from what this
session last wrote to `serial + 1` and upserts or deletes the one record, in one
transaction: O(one record), durable when `put` returns. A writer whose expected
serial is gone (someone wrote behind its back) gets StateConflictError and its
Store stops writing; nothing is overwritten.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.errors import StateConflictError
from reconciler.state import statefile
from reconciler.state.backend import Moved
from reconciler.state.model import FORMAT_VERSION, State
from reconciler.state.session import BaseStore

if TYPE_CHECKING:
    import psycopg

    from reconciler.state.postgres import PostgresBackend

__all__ = ["PostgresStore"]

#: One change in one statement: the compare-and-set of the workspace's serial,
#: and the row change only if it matched; returns how many workspaces matched.
_PUT_SQL = (
    "WITH ws AS (UPDATE dfr_workspaces SET serial = %(new)s, format_version = %(format)s, "
    "dfr_version = %(version)s, updated_at = now() "
    "WHERE name = %(ws)s AND lineage = %(lineage)s AND serial = %(old)s RETURNING name), "
    "ch AS (INSERT INTO dfr_runs (workspace, name, record, serial) "
    "SELECT name, %(run)s, %(record)s, %(new)s FROM ws ON CONFLICT (workspace, name) "
    "DO UPDATE SET record = EXCLUDED.record, serial = EXCLUDED.serial RETURNING 1) "
    "SELECT count(*) FROM ws"
)
_REMOVE_SQL = (
    "WITH ws AS (UPDATE dfr_workspaces SET serial = %(new)s, format_version = %(format)s, "
    "dfr_version = %(version)s, updated_at = now() "
    "WHERE name = %(ws)s AND lineage = %(lineage)s AND serial = %(old)s RETURNING name), "
    "ch AS (DELETE FROM dfr_runs WHERE workspace = (SELECT name FROM ws) AND name = %(run)s "
    "RETURNING 1) "
    "SELECT count(*) FROM ws"
)


class PostgresStore(BaseStore):
    """A write session on a PostgresBackend, on the connection that holds the lock."""

    def __init__(
        self,
        backend: PostgresBackend,
        conn: psycopg.Connection[Any],
        state: State,
        lock_id: str,
    ) -> None:
        super().__init__(state, name=backend.describe(), lock_id=lock_id)
        self._backend = backend
        self._conn = conn

    def _write(self, op: str, name: str, text: str | None, serial: int) -> int:
        b = self._backend
        what = {"policy": "record the policy", "spec": f"record spec {name!r}"}
        with b.db(what.get(op, f"record run {name!r}")):
            one_statement = op in ("put", "remove") and serial > 1
            if one_statement and self._write_one_statement(op, name, text, serial):
                return serial  # committed: durable already
            with self._conn.transaction():
                self._advance(serial - 1, serial, self._lineage, self._lineage)
                if op == "policy":
                    self._conn.execute(
                        "UPDATE dfr_workspaces SET policy = %s WHERE name = %s",
                        (text, b.workspace),
                    )
                    return serial
                if op == "spec":
                    self._write_spec(name, text, serial)
                    return serial
                if op == "move":
                    # The old row goes and the new one comes in this same transaction:
                    # the run is never under both names, nor under neither.
                    self._conn.execute(
                        "DELETE FROM dfr_runs WHERE workspace = %s AND name = %s",
                        (b.workspace, name),
                    )
                    name = json.loads(text or "{}")["name"]  # the new key
                if op in ("put", "move"):
                    self._conn.execute(
                        "INSERT INTO dfr_runs (workspace, name, record, serial) "
                        "VALUES (%s, %s, %s, %s) ON CONFLICT (workspace, name) DO UPDATE "
                        "SET record = EXCLUDED.record, serial = EXCLUDED.serial",
                        (b.workspace, name, text, serial),
                    )
                else:
                    self._conn.execute(
                        "DELETE FROM dfr_runs WHERE workspace = %s AND name = %s",
                        (b.workspace, name),
                    )
        return serial

    def _write_spec(self, name: str, text: str | None, serial: int) -> None:
        """Upsert (or, with `text` None, delete) the row of spec `name` (in the caller's
        transaction, after the serial's CAS)."""
        workspace = self._backend.workspace
        if text is None:
            self._conn.execute(
                "DELETE FROM dfr_specs WHERE workspace = %s AND name = %s", (workspace, name)
            )
            return
        self._conn.execute(
            "INSERT INTO dfr_specs (workspace, name, record, serial) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (workspace, name) DO UPDATE "
            "SET record = EXCLUDED.record, serial = EXCLUDED.serial",
            (workspace, name, text, serial),
        )

    def _write_one_statement(self, op: str, name: str, text: str | None, serial: int) -> bool:
        """The usual change in one round trip: CAS and row change in one statement.

        One statement in autocommit is one transaction, so this is as atomic as
        the two-statement path; it matters for a database across a network,
        where apply's thousands of changes would otherwise pay four round trips
        each. False when the CAS matched no row (first write, or a conflict):
        nothing was changed, and the caller takes the explicit path.
        """
        row = self._conn.execute(
            _PUT_SQL if op == "put" else _REMOVE_SQL,
            {
                "new": serial,
                "old": serial - 1,
                "format": FORMAT_VERSION,
                "version": __version__,
                "ws": self._backend.workspace,
                "lineage": self._lineage,
                "run": name,
                "record": text,
            },
        ).fetchone()
        return bool(row and row[0] == 1)

    def _advance(self, old: int, new: int, old_lineage: str, new_lineage: str) -> None:
        """Compare-and-set the workspace from (old_lineage, old) to (new_lineage, new)."""
        b = self._backend
        cur = self._conn.execute(
            "UPDATE dfr_workspaces SET lineage = %s, serial = %s, format_version = %s, "
            "dfr_version = %s, updated_at = now() "
            "WHERE name = %s AND lineage = %s AND serial = %s",
            (new_lineage, new, FORMAT_VERSION, __version__, b.workspace, old_lineage, old),
        )
        if cur.rowcount == 1:
            return
        if old == 0:
            # A workspace nobody wrote yet: create it, unless someone just did.
            cur = self._conn.execute(
                "INSERT INTO dfr_workspaces (name, lineage, serial, format_version, dfr_version) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
                (b.workspace, new_lineage, new, FORMAT_VERSION, __version__),
            )
            if cur.rowcount == 1:
                return
        row = self._conn.execute(
            "SELECT lineage, serial FROM dfr_workspaces WHERE name = %s", (b.workspace,)
        ).fetchone()
        now = f"serial {row[1]}, lineage {row[0]}" if row else "it no longer exists"
        raise StateConflictError(
            f"state {b.describe()} was changed by another writer ({now}; this session expected "
            f"serial {old}, lineage {old_lineage}); not overwriting it. Run the command again "
            "to start from the current state"
        )

    def _sync(self, ticket: int) -> None:
        return None  # each change committed in _write

    def _write_checkpoint(self, state: State) -> None:
        return None  # every change is already in the tables: nothing to compact

    def _write_moved(self, moved: Moved | None) -> None:
        """Set (or clear) the workspace's tombstone, if it is still the state this session holds."""
        b = self._backend
        with b.db("record where the state moved"):
            cur = self._conn.execute(
                "UPDATE dfr_workspaces SET moved = %s, updated_at = now() "
                "WHERE name = %s AND lineage = %s AND serial = %s",
                (
                    None if moved is None else moved.to_json(),
                    b.workspace,
                    self._lineage,
                    self._serial,
                ),
            )
        if cur.rowcount != 1:
            raise StateConflictError(
                f"state {b.describe()} was changed by another writer; not marking it as moved"
            )

    def _write_overwrite(self, state: State) -> None:
        """Replace the whole workspace with `state` (lineage and serial too), in one transaction."""
        b = self._backend
        with b.db("write the state"), self._conn.transaction():
            self._advance(self._serial, state.serial, self._lineage, state.lineage)
            policy = state.policy
            self._conn.execute(
                "UPDATE dfr_workspaces SET policy = %s WHERE name = %s",
                (
                    None if policy is None else statefile.encode(statefile.policy_to_dict(policy)),
                    b.workspace,
                ),
            )
            self._conn.execute("DELETE FROM dfr_runs WHERE workspace = %s", (b.workspace,))
            with self._conn.cursor().copy(
                "COPY dfr_runs (workspace, name, record, serial) FROM STDIN"
            ) as copy:
                for name in sorted(state.runs):
                    text, _ = statefile.canonical_record(state.runs[name])
                    copy.write_row((b.workspace, name, text, state.serial))
            self._conn.execute("DELETE FROM dfr_specs WHERE workspace = %s", (b.workspace,))
            for name in sorted(state.specs):
                text, _ = statefile.canonical_spec(state.specs[name])
                self._write_spec(name, text, state.serial)
