"""The PostgreSQL backend's tables: their migrations, their version, and what a role needs.

Tables (in the connection's current schema; created on first write)::

    dfr_schema_version(version, applied_at, dfr_version)   # one row per migration
    dfr_workspaces(name, lineage, serial, format_version, dfr_version, updated_at, moved json,
                   policy json)
    dfr_runs(workspace, name, record json, serial)           # one row per manifest name
    dfr_specs(workspace, name, record json, serial)          # one row per spec (version 4)
    dfr_locks(workspace, lock_id, backend_pid, info json, acquired_at)   # holder info

`PostgresBackend.ensure_schema` applies `MIGRATIONS` under an advisory lock; the
hints here turn the server's refusals (privileges, timeouts) into the GRANT or
setting that fixes them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "head_sql",
    "privilege_hint",
    "schema_version",
    "state_document",
    "timeout_hint",
]


def _records_table(table: str) -> str:
    """A table of one workspace's records by name, each a statefile JSON object
    (the runs in version 1, the specs in version 4: the same columns)."""
    return f"""CREATE TABLE IF NOT EXISTS {table} (
            workspace text NOT NULL REFERENCES dfr_workspaces (name) ON DELETE CASCADE,
            name text NOT NULL,
            record json NOT NULL,
            serial bigint NOT NULL,
            PRIMARY KEY (workspace, name)
        )"""


#: The schema as a list of migrations: `MIGRATIONS[v]` takes version v-1 to v.
#: Add a new version for any change; never edit a released one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS dfr_schema_version (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now(),
            dfr_version text NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS dfr_workspaces (
            name text PRIMARY KEY,
            lineage text NOT NULL,
            serial bigint NOT NULL CHECK (serial >= 0),
            format_version integer NOT NULL,
            dfr_version text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        _records_table("dfr_runs"),
        """CREATE TABLE IF NOT EXISTS dfr_locks (
            workspace text PRIMARY KEY,
            lock_id text NOT NULL,
            backend_pid integer NOT NULL,
            info json NOT NULL,
            acquired_at timestamptz NOT NULL DEFAULT now()
        )""",
    ),
    # The tombstone `dfr state migrate` leaves on a workspace it moved away
    # (backend.Moved as JSON); NULL for a workspace in use.
    2: ("ALTER TABLE dfr_workspaces ADD COLUMN IF NOT EXISTS moved json",),
    # The spending policy in force for the workspace (statefile's `policy` object),
    # recorded by apply; NULL until one is.
    3: ("ALTER TABLE dfr_workspaces ADD COLUMN IF NOT EXISTS policy json",),
    # The specs dfr made or adopted (statefile's `specs` records), one row each.
    4: (_records_table("dfr_specs"),),
}
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The version of the dfr tables in the connection's schema; None when there are none."""
    row = conn.execute("SELECT to_regclass('dfr_schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT max(version) FROM dfr_schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def privilege_hint(action: str, detail: str, role: str) -> str:
    """What the role lacks: table privileges (to read or write), the schema's, or ownership."""
    if "must be owner" in detail:
        return (
            f"this dfr keeps the state tables at schema version {SCHEMA_VERSION}, and "
            "upgrading them (ALTER TABLE) needs the role that owns them: run one dfr "
            "command that writes (dfr refresh) as that role, once; reading works meanwhile"
        )
    if "for schema" in detail:
        return (
            f"the role needs USAGE on the schema the tables live in, and CREATE there to "
            f"create them on first write: GRANT USAGE, CREATE ON SCHEMA <schema> TO {role} "
            '(see docs/state.md, "State backends"), '
            "or create the tables once with a role that has it"
        )
    if action.startswith("read"):
        return (
            f"reading the state needs SELECT on the dfr_ tables: GRANT SELECT ON "
            f"{_TABLES}, dfr_schema_version TO {role}"
        )
    return (
        f"writing the state needs SELECT, INSERT, UPDATE and DELETE on the dfr_ tables: "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {_TABLES} TO {role}; "
        f"GRANT SELECT ON dfr_schema_version TO {role} (plan and status need only SELECT)"
    )


_TABLES = "dfr_workspaces, dfr_runs, dfr_specs, dfr_locks"


def timeout_hint(detail: str, role: str) -> str:
    """Why the server canceled a statement, and what to change."""
    if "statement timeout" in detail:
        return (
            "the server's statement_timeout (set on the database, the role or in the URL) "
            "stopped the statement: dfr's statements are short, so the limit is very low or "
            "the statement waited for another session's open transaction on the dfr_ tables. "
            f"Give dfr's role more time: ALTER ROLE {role} SET statement_timeout = 0 (or add "
            "options=-cstatement_timeout%3D0 to the URL)"
        )
    if "lock timeout" in detail:
        return (
            "the server's lock_timeout (set on the database, the role or in the URL) stopped a "
            "statement waiting for another session's row lock on the dfr_ tables; end that "
            f"session's transaction, or ALTER ROLE {role} SET lock_timeout = 0"
        )
    return "the statement was canceled on the server (an administrator or a server setting)"


_HEAD_SQL = (
    "SELECT lineage, serial, format_version, moved::text, policy::text FROM dfr_workspaces "
    "WHERE name = %s"
)


def head_sql(version: int) -> str:
    """The query of a workspace's row (lineage, serial, format, tombstone, policy) in a
    schema of `version`: version 1 has no tombstones, versions before 3 no policy."""
    sql = _HEAD_SQL if version >= 2 else _HEAD_SQL.replace("moved::text", "NULL")
    return sql if version >= 3 else sql.replace("policy::text", "NULL")


def state_document(head: Any, rows: list[tuple[str, str]], spec_rows: list[tuple[str, str]]) -> str:
    """The workspace's rows as one state document (the text a state file holds): the
    records are kept byte for byte."""
    lineage, serial, format_version, _moved, policy_text = head
    runs = ", ".join(f"{json.dumps(name)}: {text}" for name, text in rows)
    policy = f', "policy": {policy_text}' if policy_text is not None else ""
    if spec_rows:
        specs = ", ".join(f"{json.dumps(name)}: {text}" for name, text in spec_rows)
        policy += f', "specs": {{{specs}}}'
    return (
        f'{{"format_version": {int(format_version)}, "serial": {int(serial)}, '
        f'"lineage": {json.dumps(lineage)}, "runs": {{{runs}}}{policy}}}'
    )
