"""The SQLite state backend (mode 1): WAL, immediate transactions, safe for many processes.

Every write is one short ``BEGIN IMMEDIATE`` transaction; "database is locked" is retried both
by SQLite's busy timeout and here, because first-use setup (switching to WAL, creating the
schema) can fail busy without SQLite ever calling its busy handler.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sparkwing.errors import (
    StorageError,
)
from sparkwing.ids import check_key, check_labels, check_segment
from sparkwing.paths import create_private_file, make_private_dirs
from sparkwing.retry import RetryPolicy
from sparkwing.surfaces.state import sql_common as sq
from sparkwing.surfaces.state import sql_schema
from sparkwing.surfaces.state.base import (
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunClaim,
    RunRecord,
)

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import ScheduleTicks
    from sparkwing.surfaces.state.fleet import Fleet
    from sparkwing.surfaces.state.groups import ConcurrencyGroups
    from sparkwing.surfaces.state.jobqueue import JobQueue

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 30.0
# Application-level retries stop after this long; SQLite's own timeout covers each attempt.
RETRY_DEADLINE_SECONDS = 120.0
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


def is_busy(err: BaseException) -> bool:
    """A failure that passes once the peer holding the file's lock lets go."""
    if not isinstance(err, sqlite3.Error):
        return False
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(err).lower()
    return "locked" in text or "busy" in text


# Short pauses: a busy SQLite file is free again within milliseconds.
BUSY_RETRY = RetryPolicy(
    deadline=RETRY_DEADLINE_SECONDS, initial=0.002, maximum=0.1, transient=is_busy
)


_SELECT_CLAIMABLE = (
    "SELECT run_id, worker FROM run_queue"
    " WHERE (state = 'queued' OR (state = 'claimed' AND lease_expires <= ?))"
    # Only runs whose every label the worker has (the worker's labels: a JSON list).
    " AND NOT EXISTS (SELECT 1 FROM json_each(COALESCE(run_queue.labels, '[]')) AS need"
    " WHERE need.value NOT IN (SELECT value FROM json_each(?)))"
    " ORDER BY run_id LIMIT 1"
)
_CLAIM = (
    "UPDATE run_queue SET state = 'claimed', worker = ?, lease_expires = ?,"
    " attempts = attempts + 1 WHERE run_id = ?"
)
_RENEW_CLAIM = (
    "UPDATE run_queue SET lease_expires = ? WHERE run_id = ? AND worker = ? AND state = 'claimed'"
)


def transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T], begin: str) -> T:
    """``fn(conn)`` between ``begin`` and COMMIT, rolled back if it raises."""
    conn.execute(begin)
    try:
        result = fn(conn)
        conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SqliteState(sq.SqlStateStore):
    """State in one SQLite file; one connection per handle, shared by its threads under a lock."""

    # The fleet, job queue, ticks and groups are built on first use: a plain run needs none
    # of them, and importing their modules costs more than its scheduling.
    @functools.cached_property
    def fleet(self) -> Fleet:  # type: ignore[override]
        from sparkwing.surfaces.state.sql_fleet import SqlFleet

        return SqlFleet(self)

    @functools.cached_property
    def jobs(self) -> JobQueue:  # type: ignore[override]
        from sparkwing.surfaces.state.sql_jobs import SQLITE_NOW, SqlJobQueue

        return SqlJobQueue(self, SQLITE_NOW)

    @functools.cached_property
    def ticks(self) -> ScheduleTicks:  # type: ignore[override]
        from sparkwing.surfaces.state.sql_ticks import SqlTicks

        return SqlTicks(self)

    @functools.cached_property
    def groups(self) -> ConcurrencyGroups:  # type: ignore[override]
        from sparkwing.surfaces.state.sql_groups import SqlGroups

        return SqlGroups(self)

    def __init__(self, path: Path) -> None:
        self.memo = _SqliteMemo(self)
        self.gates = sq.SqlGates(self)
        self.queue = _SqliteQueue(self)
        self.path = Path(path)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        try:
            make_private_dirs(self.path.parent)
            create_private_file(self.path)
        except OSError as err:
            message = f"cannot create the directory of state database {path}: {err}"
            raise StorageError(message) from None
        self._db = self._retry(self._connect)
        try:
            self._retry(self._migrate)
        except BaseException:
            self._db.close()
            raise

    def __repr__(self) -> str:
        return f"SqliteState({str(self.path)!r})"

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    # -- connection plumbing ----------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` again while SQLite reports busy/locked; other errors become StorageError."""
        try:
            return BUSY_RETRY.run(fn)
        except sqlite3.Error as err:
            raise StorageError(f"state database {self.path}: {err}") from None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
            check_same_thread=False,  # guarded by self._lock instead
            cached_statements=256,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            # Switching to WAL needs an exclusive lock and can fail busy on first creation.
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            # In WAL mode NORMAL is durable against application crashes and skips fsync per commit.
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _read_version(self, conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute(sql_schema.READ_VERSION_SQL).fetchone()
        except sqlite3.OperationalError as err:
            if "no such table" in str(err):
                return None
            raise
        return None if row is None or row[0] is None else int(row[0])

    def _migrate(self) -> None:
        conn = self._db
        location = str(self.path)
        found = self._read_version(conn)
        if found is not None and found >= sql_schema.latest_version():
            sql_schema.pending_migrations(found, location)  # raises when newer
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(sql_schema.SCHEMA_VERSION_DDL)
            # Re-read under the write lock: a peer may have migrated since our first look.
            found = self._read_version(conn)
            now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            for version, statements in sql_schema.pending_migrations(found, location):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(sql_schema.STAMP_VERSION_SQL, (version, now))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError(f"state database {self.path} is closed")
        if os.getpid() != self._pid:
            # A forked child must never use its parent's connection (SQLite forbids it).
            self._pid = os.getpid()
            self._lock = threading.Lock()
            self._db = self._retry(self._connect)
        return self._db

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one BEGIN IMMEDIATE transaction, retried as a whole when busy."""
        conn = self._conn()
        with self._lock:
            return self._retry(lambda: transaction(conn, fn, "BEGIN IMMEDIATE"))

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        with self._lock:
            return self._retry(lambda: fn(conn))

    def _sql_read(self, fn: Callable[[sq.Conn], T]) -> T:
        return self._read(fn)

    def _sql_write(self, fn: Callable[[sq.Conn], T]) -> T:
        return self._write(fn)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` for a healthy database, else the problems found."""
        rows = self._read(lambda c: c.execute("PRAGMA integrity_check").fetchall())
        return "; ".join(str(row[0]) for row in rows)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        params = sq.run_params(run)
        self._write(lambda c: sq.create_run(c, run, params))

    # -- plan, nodes, events ----------------------------------------------------------
    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        by_run = sq.encode_nodes(nodes)

        def tx(conn: sqlite3.Connection) -> None:
            for run_id, rows in by_run.items():
                sq.upsert_nodes(conn, run_id, rows)

        if by_run:
            self._write(tx)

    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        check_segment(run_id, "run id")
        if not events:
            return []
        encoded = sq.encode_events(events)
        return self._write(lambda conn: _insert_events(conn, run_id, encoded))

    def write_batch(self, run_id: str, nodes: list[NodeRecord], events: list[NewEvent]) -> None:
        """A scheduler turn's records in one transaction (one commit, one lock round)."""
        check_segment(run_id, "run id")
        by_run = sq.encode_nodes(nodes)
        encoded = sq.encode_events(events)

        def tx(conn: sqlite3.Connection) -> None:
            for node_run, rows in by_run.items():
                sq.upsert_nodes(conn, node_run, rows)
            if encoded:
                _insert_events(conn, run_id, encoded)

        if by_run or encoded:
            self._write(tx)


def _insert_events(
    conn: sqlite3.Connection, run_id: str, encoded: list[sq.EncodedEvent]
) -> list[int]:
    last = int(conn.execute(sq.BUMP_EVENT_SEQ, (run_id, len(encoded))).fetchall()[0][0])
    seqs = list(range(last - len(encoded) + 1, last + 1))
    conn.executemany(
        sq.INSERT_EVENT,
        [(run_id, seq, *row) for seq, row in zip(seqs, encoded, strict=True)],
    )
    return seqs


class _SqliteMemo(sq.SqlMemo):
    """The store's ``memo`` part: acquire and renew under SQLite's write lock."""

    _state: SqliteState

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        check_key(key, "memo key")

        def tx(conn: sqlite3.Connection) -> MemoClaim:
            # Read the clock under the write lock so lease comparisons are not stale.
            now = time.time()
            expires = now + lease_seconds
            row = conn.execute(
                "SELECT holder, state, result, expires_at FROM memo WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO memo (key, holder, state, result, expires_at)"
                    " VALUES (?, ?, 'held', NULL, ?)",
                    (key, holder, expires),
                )
                return MemoClaim("leader", holder=holder, expires_at=expires)
            current, state, result, expires_at = row
            if state == "done":
                return MemoClaim("done", holder=current, result=result)
            if current == holder or expires_at is None or expires_at <= now:
                conn.execute(
                    "UPDATE memo SET holder = ?, state = 'held', result = NULL, expires_at = ?"
                    " WHERE key = ?",
                    (holder, expires, key),
                )
                return MemoClaim("leader", holder=holder, expires_at=expires)
            return MemoClaim("held", holder=current, expires_at=float(expires_at))

        return self._state._write(tx)

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        check_key(key, "memo key")

        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE memo SET expires_at = ? WHERE key = ? AND holder = ? AND state = 'held'",
                (time.time() + lease_seconds, key, holder),
            )
            return cur.rowcount > 0

        return self._state._write(tx)


class _SqliteQueue(sq.SqlQueue):
    """The store's ``queue`` part."""

    _state: SqliteState

    def submit(self, run: RunRecord, spec: dict[str, Any]) -> None:
        check_segment(run.run_id, "run id")
        self._state._write(lambda c: sq.submit_run(c, run, spec))

    def claim(
        self, worker: str, lease_seconds: float, labels: Collection[str] = ()
    ) -> RunClaim | None:
        having = sq.dumps(check_labels(labels, "worker label"), "labels")

        def tx(conn: sqlite3.Connection) -> RunClaim | None:
            now = time.time()  # read under the write lock, like memo leases
            row = conn.execute(_SELECT_CLAIMABLE, (now, having)).fetchone()
            if row is None:
                return None
            run_id, previous = row
            expires = now + lease_seconds
            conn.execute(_CLAIM, (worker, expires, run_id))
            sql = "SELECT spec, attempts FROM run_queue WHERE run_id = ?"
            spec, attempts = conn.execute(sql, (run_id,)).fetchone()
            return sq.claim_from_row(conn, (run_id, spec, attempts, expires, previous), worker)

        return self._state._write(tx)

    def renew(self, run_id: str, worker: str, lease_seconds: float) -> bool:
        check_segment(run_id, "run id")

        def tx(conn: sqlite3.Connection) -> bool:
            params = (time.time() + lease_seconds, run_id, worker)
            return conn.execute(_RENEW_CLAIM, params).rowcount > 0

        return self._state._write(tx)

    def release(self, run_id: str, worker: str, *, requeue: bool = False) -> bool:
        check_segment(run_id, "run id")
        params = ("queued" if requeue else "done", run_id, worker)
        return self._state._write(lambda c: c.execute(sq.RELEASE_CLAIM, params).rowcount > 0)
