"""The PostgreSQL state backend: one state per workspace, shared by many runners.

Chosen with `--backend postgresql://USER@HOST:PORT/DB` (env DFR_BACKEND; `postgres://`
too, any libpq URI: `?sslmode=require`, several hosts, `options=-csearch_path=...`).
psycopg 3 is imported only here, and only when such a URL is used, so `dfr
--version` and the file backend never load it.

The parts: this module connects, reads, locks and force-unlocks; `pgstore.py`
is the write session (`PostgresStore`), `pgschema.py` the tables (one row per
workspace, one per run, one per lock holder) and their migrations, `pgurl.py`
URLs, workspace names and redaction (all without psycopg).

`record` is the exact canonical JSON text `statefile` writes for a record, intents
(the write-ahead notes of create POSTs) included: `json`, not `jsonb`, so the text
is kept byte for byte and anything the file backend can store (a NUL escape in an
API's error message) the database can too. Reading assembles the rows into a state
document and parses it with `statefile.loads`: one validation and upgrade path for
both backends.

Guarantees, mirroring the file backend:

- **Every change is one transaction** that compare-and-sets the workspace's
  `(lineage, serial)` and upserts (or deletes) the one record (`pgstore.py`),
  durable when `put` returns (`synchronous_commit` is forced on for the session).
- **The lock** is `pg_advisory_lock` on a key derived from (schema, workspace),
  taken on a dedicated connection that is held for the whole `lock()` block and
  carries every write of the session. PostgreSQL drops the lock when that
  connection ends, so a killed runner (SIGKILL, OOM, a lost machine: TCP
  keepalives are set on the session) never leaves a stale lock, and a runner
  whose connection died cannot write again without re-locking. Who holds it
  (lock id, pid, host, user, operation, time, server backend pid) goes into
  `dfr_locks`, trusted only while that backend pid really holds the advisory lock.
- **Schema** changes are `MIGRATIONS[version]`, applied in a transaction under a
  transaction-scoped advisory lock, so two first users do not race;
  a database migrated by a newer dfr is refused (StateVersionError).
- **Policy**: the spending policy in force is `dfr_workspaces.policy` (schema
  version 3), set like a record: one transaction with the serial's CAS.
- **Specs**: one row per spec in `dfr_specs` (schema version 4), set like a record.
- **Moved**: a workspace `dfr state migrate` moved away keeps its rows and a
  tombstone in `dfr_workspaces.moved` (where it went, when, by whom), set under
  its lock in one committed transaction; reading or locking it then raises
  StateMovedError (schema version 2).
- **Secrets**: the URL's password (and any `password=` parameter) never appears
  in a message; `describe()` shows `postgresql://USER@HOST:PORT/DB (workspace W)`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from reconciler import __version__
from reconciler.errors import StateError, StateLockedError, StateVersionError
from reconciler.state import backend, statefile
from reconciler.state.model import State
from reconciler.state.pgschema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    head_sql,
    privilege_hint,
    schema_version,
    state_document,
    timeout_hint,
)
from reconciler.state.pgstore import PostgresStore
from reconciler.state.pgurl import (
    DEFAULT_WORKSPACE,
    SCHEMES,
    is_postgres_url,
    redact,
    split_url,
    validate_workspace,
)
from reconciler.state.session import close_on_exit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_WORKSPACE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SCHEMES",
    "PostgresBackend",
    "PostgresStore",
    "is_postgres_url",
    "redact",
    "validate_workspace",
]

_CONNECT_TIMEOUT = 10
#: The longest lock_timeout PostgreSQL takes (an int of milliseconds, about 24.8
#: days); a longer --lock-timeout waits this long.
_MAX_LOCK_WAIT_MS = 2**31 - 1
#: Server-side keepalives on the lock session: a runner whose machine vanished
#: (no FIN ever arrives) loses its lock after about idle + interval * count seconds.
_KEEPALIVE = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


# --------------------------------------------------------------------------- backend


class PostgresBackend(backend.Backend):
    """One workspace of a dfr state database."""

    def __init__(self, url: str, workspace: str = DEFAULT_WORKSPACE) -> None:
        if not is_postgres_url(url):
            raise StateError("the postgres backend needs a postgresql:// URL")
        self.url = url
        self.workspace = validate_workspace(workspace)
        scheme, user, passwords, hosts, dbname, params = split_url(url)
        shown_user = f"{user}@" if user else ""
        query = f"?{'&'.join(params)}" if params else ""
        #: The URL without its password (names the database and schema, never secrets).
        location = f"{scheme}://{shown_user}{hosts or 'localhost'}/{dbname or ''}{query}"
        # redact() again: a password the split cannot see (an unencoded '/' or '?'
        # in it) still looks like one to the pattern, and goes.
        self.location = redact(location)
        self._display = f"{self.location} (workspace {self.workspace})"
        # Longest first, so a secret that contains another is replaced whole. Only
        # the password is secret: a URL without one names the database in full.
        secrets = set(passwords) | ({url} if redact(url) != url else set())
        self._secrets = tuple(sorted(secrets, key=len, reverse=True))
        self._role = user or "<role>"
        self._key: int | None = None
        self._schema_key: int | None = None

    # -- naming and errors

    def describe(self) -> str:
        return self._display

    def address(self) -> tuple[str, str | None]:
        return self.location, self.workspace

    def redact(self, text: str) -> str:
        if self._secrets:
            text = text.replace(self.url, self.location)  # the URL quoted whole: its password
        return redact(text, self._secrets, keep=(self._display, self.location))

    def _error(self, action: str, exc: BaseException) -> StateError:
        """A StateError for a failed database operation, without any secret in it."""
        import psycopg

        detail = str(exc).strip() or type(exc).__name__
        lines = [line.strip() for line in detail.splitlines() if line.strip()]
        detail = "; ".join(lines)
        hint = None
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            hint = privilege_hint(action, detail, self._role)
        elif isinstance(exc, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable)):
            hint = timeout_hint(detail, self._role)
        elif isinstance(exc, psycopg.errors.InvalidSchemaName) or "no schema has been selected" in (
            detail
        ):
            hint = "create the schema named in the URL's search_path, or drop search_path"
        return StateError(
            self.redact(f"state {self._display}: cannot {action}: {detail}"),
            hint=self.redact(hint) if hint else None,
        )

    @contextlib.contextmanager
    def db(self, action: str) -> Iterator[None]:
        """Turn psycopg errors inside the block into a redacted StateError."""
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise self._error(action, exc) from None

    # -- connections

    def _connect(self, *, lock_session: bool = False) -> psycopg.Connection[Any]:
        try:
            import psycopg
            from psycopg.conninfo import conninfo_to_dict, make_conninfo
        except ImportError:
            raise StateError(
                f"state {self._display}: the postgres backend needs psycopg 3: "
                "pip install 'dataframer-reconciler[postgres]'"
            ) from None
        try:
            params = conninfo_to_dict(self.url)
        except psycopg.Error as exc:
            raise self._error("parse the database URL", exc) from None
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        params.setdefault("application_name", f"dfr {__version__}")
        if lock_session:
            # Client-side keepalives: this process notices a dead server too.
            params.setdefault("keepalives", 1)
            params.setdefault("keepalives_idle", 30)
            params.setdefault("keepalives_interval", 10)
            params.setdefault("keepalives_count", 3)
        with self.db("connect to the state database"):
            conn = psycopg.connect(make_conninfo("", **params), autocommit=True)
        try:
            with self.db("configure the database session"):
                # Each put must be on disk when it returns, whatever the server's default.
                conn.execute("SET synchronous_commit = on")
                if lock_session:
                    # An idle session timeout would silently drop the lock mid-apply.
                    conn.execute("SET idle_session_timeout = 0")
                    for name, value in _KEEPALIVE.items():
                        conn.execute(f"SET {name} = {int(value)}")
                if self._key is None:
                    row = conn.execute("SELECT current_schema(), current_database()").fetchone()
                    schema, database = row or (None, None)
                    if schema is None:
                        raise StateError(
                            f"state {self._display}: the connection has no schema to keep the "
                            "state in (the search_path names no existing schema)",
                            hint="create the schema, or fix options=-csearch_path in the URL",
                        )
                    self._key = _lock_key(f"dfr-state\0{database}\0{schema}\0{self.workspace}")
                    self._schema_key = _lock_key(f"dfr-schema\0{database}\0{schema}")
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def key(self) -> int:
        """The advisory lock key of this workspace (known after the first connection)."""
        if self._key is None:
            with contextlib.closing(self._connect()):
                pass
        assert self._key is not None
        return self._key

    # -- schema

    def _check_version(self, version: int | None) -> None:
        if version is not None and version > SCHEMA_VERSION:
            raise StateVersionError(
                f"state {self._display}: the database schema is version {version}, "
                f"this dfr knows up to version {SCHEMA_VERSION}: upgrade dfr"
            )

    def ensure_schema(self, conn: psycopg.Connection[Any]) -> None:
        """Create or migrate the tables to SCHEMA_VERSION (idempotent, safe to race)."""
        with self.db("read the schema version"):
            version = schema_version(conn)
        self._check_version(version)
        if version == SCHEMA_VERSION:
            return
        # A session-level lock taken *before* the transaction: the transaction then
        # starts after the previous creator committed and sees its tables (inside
        # one transaction, a wait on an advisory lock does not refresh the catalog).
        with self.db("create or upgrade the state tables"):
            conn.execute("SELECT pg_advisory_lock(%s)", (self._schema_key,))
            try:
                with conn.transaction():
                    version = schema_version(conn)  # again, now that we are alone
                    self._check_version(version)
                    for step in range((version or 0) + 1, SCHEMA_VERSION + 1):
                        for statement in MIGRATIONS[step]:
                            conn.execute(statement.encode())
                        conn.execute(
                            "INSERT INTO dfr_schema_version (version, dfr_version) VALUES (%s, %s)",
                            (step, __version__),
                        )
            finally:
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (self._schema_key,))

    # -- reading

    def read(self) -> State:
        with contextlib.closing(self._connect()) as conn:
            with self.db("read the schema version"):
                version = schema_version(conn)
            if version is None:
                return State.empty()  # nothing was ever written here
            # An older layout is read as it is (reading never changes the tables:
            # a role that may only read can read); the next write upgrades it.
            self._check_version(version)
            return self._load(conn, version)[0]

    def _load(
        self, conn: psycopg.Connection[Any], version: int
    ) -> tuple[State, backend.Moved | None]:
        """The workspace's state and tombstone as one consistent snapshot (one read-only
        transaction); StateMovedError for a moved workspace unless allow_moved."""
        import psycopg

        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        try:
            with self.db("read the state"), conn.transaction():
                head = conn.execute(head_sql(version), (self.workspace,)).fetchone()
                if head is None:
                    return State.empty(), None
                rows = conn.execute(
                    "SELECT name, record::text FROM dfr_runs WHERE workspace = %s ORDER BY name",
                    (self.workspace,),
                ).fetchall()
                spec_rows = []
                if version >= 4:  # no specs table before schema version 4
                    spec_rows = conn.execute(
                        "SELECT name, record::text FROM dfr_specs WHERE workspace = %s "
                        "ORDER BY name",
                        (self.workspace,),
                    ).fetchall()
        finally:
            conn.isolation_level = None
            conn.read_only = None
        moved_text = head[3]
        moved = None
        if moved_text is not None:
            moved = self.admit_moved(backend.Moved.from_json(moved_text, "in dfr_workspaces.moved"))
        # One document, parsed like a state file: same validation, same upgrades.
        document = state_document(head, rows, spec_rows)
        return statefile.loads(document, self._display), moved

    # -- locking

    def _holder(self, conn: psycopg.Connection[Any]) -> tuple[int | None, dict[str, Any] | None]:
        """(server pid holding the advisory lock or None, its holder info or None)."""
        key = self.key
        row = conn.execute(
            "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database() "
            "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid "
            "AND l.objsubid = 1 AND l.granted",
            ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
        ).fetchone()
        pid = int(row[0]) if row else None
        if pid is None or schema_version(conn) is None:
            return pid, None
        info_row = conn.execute(
            "SELECT backend_pid, info::text FROM dfr_locks WHERE workspace = %s",
            (self.workspace,),
        ).fetchone()
        if info_row is None or int(info_row[0]) != pid:
            return pid, None  # no info, or a dead holder's left behind
        try:
            info = json.loads(info_row[1])
        except ValueError:
            return pid, None
        return pid, info if isinstance(info, dict) else None

    def _holder_info_of_taken(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        """The holder's info, waiting briefly for a holder that has just taken the lock."""

        def look() -> tuple[bool, dict[str, Any] | None]:
            pid, info = self._holder(conn)
            return pid is not None, info

        return backend.wait_for_holder(look, poll=0.02)

    def lock_holder(self) -> dict[str, Any] | None:
        """The info of the current lock holder, or None when the workspace is not locked."""
        with contextlib.closing(self._connect()) as conn, self.db("read the lock holder"):
            return self._holder(conn)[1]

    def _acquire(self, conn: psycopg.Connection[Any], timeout: float) -> bool:
        import psycopg

        if not timeout > 0:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            return bool(row and row[0])
        # Block in the server (woken the moment the holder lets go, in arrival
        # order) for at most `timeout`, within the server's range for lock_timeout.
        wait_ms = max(int(min(timeout, _MAX_LOCK_WAIT_MS / 1000) * 1000), 1)
        conn.execute(f"SET lock_timeout = {wait_ms}")
        conn.execute("SET statement_timeout = 0")
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (self._key,))
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
            return False
        finally:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
        return True

    @contextlib.contextmanager
    def lock(self, operation: str, timeout: float = 0.0) -> Iterator[backend.Store]:
        conn = self._connect(lock_session=True)
        try:
            self.ensure_schema(conn)
            with self.db("lock the state"):
                acquired = self._acquire(conn, timeout)
            if not acquired:
                with self.db("read the lock holder"):
                    info = self._holder_info_of_taken(conn)
                raise StateLockedError(backend.locked_message(self._display, info))
            info = backend.holder_info(operation)
            with self.db("record the lock holder"):
                row = conn.execute("SELECT pg_backend_pid()").fetchone()
                info["backend_pid"] = int(row[0]) if row else None
                # We hold the lock, so any row here is a dead holder's: replace it.
                conn.execute(
                    "INSERT INTO dfr_locks (workspace, lock_id, backend_pid, info, acquired_at) "
                    "VALUES (%s, %s, pg_backend_pid(), %s, now()) ON CONFLICT (workspace) DO "
                    "UPDATE SET lock_id = EXCLUDED.lock_id, backend_pid = EXCLUDED.backend_pid, "
                    "info = EXCLUDED.info, acquired_at = EXCLUDED.acquired_at",
                    (self.workspace, info["id"], json.dumps(info, sort_keys=True)),
                )
            try:
                # Read under the lock: a state we cannot read (or that moved) never
                # gets a Store.
                state, moved = self._load(conn, SCHEMA_VERSION)
                store = PostgresStore(self, conn, state, str(info["id"]))
                store.moved = moved
                with close_on_exit(store):
                    yield store
            finally:
                self._release(conn, str(info["id"]))
        finally:
            conn.close()  # ends the session: the advisory lock goes with it

    def _release(self, conn: psycopg.Connection[Any], lock_id: str) -> None:
        import psycopg

        # Best effort: closing the connection releases the lock anyway.
        with contextlib.suppress(psycopg.Error):
            conn.execute(
                "DELETE FROM dfr_locks WHERE workspace = %s AND lock_id = %s",
                (self.workspace, lock_id),
            )
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))

    def force_unlock(self, lock_id: str) -> None:
        """End the session holding the lock with id `lock_id` (pg_terminate_backend), as
        `backend.force_unlock_action` rules; a dead holder's row only is deleted.

        The terminated session's runner can no longer write: its writes went
        through that very connection.
        """
        with contextlib.closing(self._connect()) as conn:
            with self.db("read the lock holder"):
                pid, info = self._holder(conn)
                if pid is None and schema_version(conn) is not None:
                    info = self._recorded_holder(conn)  # what a dead holder left, if anything
            if pid is not None and info is None:
                raise StateError(
                    f"state {self._display} is locked by a session that recorded no holder "
                    f"information (server pid {pid}); nothing was changed"
                )
            action = backend.force_unlock_action(
                self._display, lock_id, info, lambda: pid is not None
            )
            doing = "remove stale lock info"  # its holder died; PostgreSQL released the lock
            if action is backend.Unlock.END_HOLD:
                assert pid is not None
                self._end_session(conn, pid)
                doing = "end the lock holder's session"
            with self.db(doing):
                conn.execute(
                    "DELETE FROM dfr_locks WHERE workspace = %s AND lock_id = %s",
                    (self.workspace, lock_id),
                )

    def _recorded_holder(self, conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
        """The holder info in dfr_locks, whether or not its session still holds the lock."""
        row = conn.execute(
            "SELECT info::text FROM dfr_locks WHERE workspace = %s", (self.workspace,)
        ).fetchone()
        info = json.loads(row[0]) if row else None
        return info if isinstance(info, dict) else None

    def _end_session(self, conn: psycopg.Connection[Any], pid: int) -> None:
        """Terminate the server session `pid` and wait until its advisory lock is gone."""
        with self.db("end the lock holder's session"):
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
            deadline = time.monotonic() + 10
            while self._holder(conn)[0] == pid:
                if time.monotonic() > deadline:
                    raise StateError(
                        f"state {self._display}: the lock holder's session (server pid "
                        f"{pid}) did not end; ask the database administrator"
                    )
                time.sleep(0.05)


def _lock_key(text: str) -> int:
    """A signed 64-bit advisory lock key for `text`."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)
