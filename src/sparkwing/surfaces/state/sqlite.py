"""The SQLite state backend (mode 1): WAL, immediate transactions, safe for many processes.

Every write is one short ``BEGIN IMMEDIATE`` transaction; "database is locked" is retried both
by SQLite's busy timeout and here, because first-use setup (switching to WAL, creating the
schema) can fail busy without SQLite ever calling its busy handler.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sparkwing.errors import (
    NotFoundError,
    PreconditionFailedError,
    StorageError,
    UsageError,
)
from sparkwing.ids import check_key, check_segment
from sparkwing.surfaces.state import sql_schema
from sparkwing.surfaces.state.base import (
    GATE_RESOLUTIONS,
    Event,
    Gate,
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunPage,
    RunRecord,
    StateStore,
    already_resolved,
    check_gate,
)

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 30.0
# Application-level retries stop after this long; SQLite's own timeout covers each attempt.
RETRY_DEADLINE_SECONDS = 120.0
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6

_RUN_COLUMNS = ("pipeline", "status", "created_at", "started_at", "finished_at", "heartbeat_at")
_RUN_FIELDS = frozenset(RunRecord.__dataclass_fields__) - {"run_id"}
_NODE_COLUMNS = frozenset({"run_id", "node_id", "status"})

_INSERT_RUN = (
    "INSERT INTO runs (run_id, pipeline, status, created_at, started_at, finished_at,"
    " heartbeat_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING"
)
_SELECT_RUN_COLUMNS = (
    "SELECT run_id, pipeline, status, created_at, started_at, finished_at, heartbeat_at, data"
    " FROM runs"
)
_UPSERT_PLAN = (
    "INSERT INTO plans (run_id, data) VALUES (?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET data = excluded.data"
)
_UPSERT_NODE = (
    "INSERT INTO nodes (run_id, node_id, ord, status, data) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, data = excluded.data"
)
_INSERT_EVENT = (
    "INSERT INTO events (run_id, seq, ts, kind, node_id, data) VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_EVENTS = (
    "SELECT seq, ts, kind, node_id, data FROM events"
    " WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?"
)
_COMPLETE_MEMO = (
    "INSERT INTO memo (key, holder, state, result, expires_at) VALUES (?, ?, 'done', ?, NULL)"
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, state = 'done',"
    " result = excluded.result, expires_at = NULL"
)


def _is_busy(err: sqlite3.Error) -> bool:
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise StorageError(f"{what} is not JSON-serializable: {err}") from None


class SqliteState(StateStore):
    """State in one SQLite file; one connection per handle, shared by its threads under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
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

    # -- connection plumbing ----------------------------------------------------------
    def _retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` again while SQLite reports busy/locked; other errors become StorageError."""
        deadline = time.monotonic() + RETRY_DEADLINE_SECONDS
        pause = 0.002
        while True:
            try:
                return fn()
            except sqlite3.Error as err:
                if not _is_busy(err) or time.monotonic() > deadline:
                    raise StorageError(f"state database {self.path}: {err}") from None
            # Jitter so peers that collided do not collide again in lockstep.
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 0.1)

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

        def attempt() -> T:
            try:
                conn.execute("BEGIN IMMEDIATE")
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        with self._lock:
            return self._retry(attempt)

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn()
        with self._lock:
            return self._retry(lambda: fn(conn))

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
    @staticmethod
    def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
        data: dict[str, Any] = json.loads(row[7])
        data.update(zip(("run_id", *_RUN_COLUMNS), row[:7], strict=True))
        return RunRecord.from_dict(data)

    def create_run(self, run: RunRecord) -> None:
        check_segment(run.run_id, "run id")
        record = run.to_dict()
        data = {k: v for k, v in record.items() if k not in _RUN_COLUMNS and k != "run_id"}
        params = (
            run.run_id,
            *(record[c] for c in _RUN_COLUMNS),
            _dumps(data, f"run {run.run_id}"),
        )

        def tx(conn: sqlite3.Connection) -> None:
            if conn.execute(_INSERT_RUN, params).rowcount == 0:
                raise PreconditionFailedError(f"run {run.run_id} already exists")

        self._write(tx)

    def update_run(self, run_id: str, **fields: Any) -> None:
        check_segment(run_id, "run id")
        unknown = sorted(set(fields) - _RUN_FIELDS)
        if unknown:
            raise UsageError(f"cannot update run field(s): {', '.join(unknown)}")
        columns = [k for k in fields if k in _RUN_COLUMNS]
        in_data = {k: v for k, v in fields.items() if k not in _RUN_COLUMNS}

        def tx(conn: sqlite3.Connection) -> None:
            assignments = [f"{c} = ?" for c in columns]
            params: list[Any] = [fields[c] for c in columns]
            if in_data:
                row = conn.execute("SELECT data FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row is None:
                    raise NotFoundError(f"run {run_id} not found")
                data = json.loads(row[0])
                data.update(in_data)
                assignments.append("data = ?")
                params.append(_dumps(data, f"run {run_id}"))
            if not assignments:
                assignments.append("run_id = run_id")
            sql = f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ?"
            if conn.execute(sql, (*params, run_id)).rowcount == 0:
                raise NotFoundError(f"run {run_id} not found")

        self._write(tx)

    def get_run(self, run_id: str) -> RunRecord | None:
        check_segment(run_id, "run id")
        sql = _SELECT_RUN_COLUMNS + " WHERE run_id = ?"
        row = self._read(lambda c: c.execute(sql, (run_id,)).fetchone())
        return None if row is None else self._run_from_row(row)

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        if limit < 1:
            raise UsageError(f"limit must be at least 1, got {limit}")
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("pipeline = ?", pipeline),
            ("status = ?", status),
            ("created_at >= ?", since),
            ("run_id < ?", cursor),  # the cursor is the last run id of the previous page
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = _SELECT_RUN_COLUMNS
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY run_id DESC LIMIT ?"
        # One extra row tells whether another page exists without a second query.
        params.append(limit + 1)
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        runs = [self._run_from_row(row) for row in rows[:limit]]
        next_cursor = runs[-1].run_id if len(rows) > limit else None
        return RunPage(runs=runs, next_cursor=next_cursor)

    def heartbeat(self, run_id: str, at: str) -> None:
        check_segment(run_id, "run id")

        def tx(conn: sqlite3.Connection) -> None:
            sql = "UPDATE runs SET heartbeat_at = ? WHERE run_id = ?"
            if conn.execute(sql, (at, run_id)).rowcount == 0:
                raise NotFoundError(f"run {run_id} not found")

        self._write(tx)

    # -- plan, nodes, events ----------------------------------------------------------
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        check_segment(run_id, "run id")
        params = (run_id, _dumps(plan, f"plan of run {run_id}"))
        self._write(lambda c: c.execute(_UPSERT_PLAN, params))

    def get_plan(self, run_id: str) -> dict[str, Any] | None:
        check_segment(run_id, "run id")
        sql = "SELECT data FROM plans WHERE run_id = ?"
        row = self._read(lambda c: c.execute(sql, (run_id,)).fetchone())
        if row is None:
            return None
        plan: dict[str, Any] = json.loads(row[0])
        return plan

    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        if not nodes:
            return
        by_run: dict[str, list[tuple[str, str, str]]] = {}
        for node in nodes:
            check_segment(node.run_id, "run id")
            check_segment(node.node_id, "node id")
            record = node.to_dict()
            data = {k: v for k, v in record.items() if k not in _NODE_COLUMNS}
            by_run.setdefault(node.run_id, []).append(
                (node.node_id, node.status, _dumps(data, f"node {node.node_id}"))
            )

        def tx(conn: sqlite3.Connection) -> None:
            for run_id, rows in by_run.items():
                sql = "SELECT COALESCE(MAX(ord), 0) FROM nodes WHERE run_id = ?"
                base = int(conn.execute(sql, (run_id,)).fetchone()[0])
                # Existing nodes keep their ord (the upsert ignores it), so plan order holds.
                conn.executemany(
                    _UPSERT_NODE,
                    (
                        (run_id, node_id, base + i, status, data)
                        for i, (node_id, status, data) in enumerate(rows, start=1)
                    ),
                )

        self._write(tx)

    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        check_segment(run_id, "run id")
        sql = "SELECT node_id, status, data FROM nodes WHERE run_id = ? ORDER BY ord"
        rows = self._read(lambda c: c.execute(sql, (run_id,)).fetchall())
        result = []
        for node_id, status, raw in rows:
            data = json.loads(raw)
            data.update(run_id=run_id, node_id=node_id, status=status)
            result.append(NodeRecord.from_dict(data))
        return result

    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        check_segment(run_id, "run id")
        if not events:
            return []
        encoded = [
            (e.ts, e.kind, e.node_id, _dumps(e.data, f"event {e.kind} data")) for e in events
        ]

        def tx(conn: sqlite3.Connection) -> list[int]:
            sql = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE run_id = ?"
            last = int(conn.execute(sql, (run_id,)).fetchone()[0])
            seqs = list(range(last + 1, last + 1 + len(encoded)))
            conn.executemany(
                _INSERT_EVENT,
                ((run_id, seq, *row) for seq, row in zip(seqs, encoded, strict=True)),
            )
            return seqs

        return self._write(tx)

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        check_segment(run_id, "run id")
        params = (run_id, after_seq, -1 if limit is None else limit)
        rows: Iterable[tuple[Any, ...]] = self._read(
            lambda c: c.execute(_SELECT_EVENTS, params).fetchall()
        )
        return [
            Event(run_id=run_id, seq=seq, ts=ts, kind=kind, node_id=node_id, data=json.loads(data))
            for seq, ts, kind, node_id, data in rows
        ]

    # -- coordination -----------------------------------------------------------------
    def memo_acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
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

        return self._write(tx)

    def memo_renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        check_key(key, "memo key")

        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE memo SET expires_at = ? WHERE key = ? AND holder = ? AND state = 'held'",
                (time.time() + lease_seconds, key, holder),
            )
            return cur.rowcount > 0

        return self._write(tx)

    def memo_complete(self, key: str, holder: str, result: str) -> None:
        check_key(key, "memo key")
        self._write(lambda c: c.execute(_COMPLETE_MEMO, (key, holder, result)))

    def memo_release(self, key: str, holder: str) -> None:
        check_key(key, "memo key")
        sql = "DELETE FROM memo WHERE key = ? AND holder = ? AND state = 'held'"
        self._write(lambda c: c.execute(sql, (key, holder)))

    def memo_forget(self, key: str) -> None:
        check_key(key, "memo key")
        sql = "DELETE FROM memo WHERE key = ? AND state = 'done'"
        self._write(lambda c: c.execute(sql, (key,)))

    # -- human gates ---------------------------------------------------------------
    def supports_gates(self) -> bool:
        return True

    def gate_open(self, gate: Gate) -> Gate:
        check_gate(gate.run_id, gate.node_id, gate.kind)
        gate.status = "pending"
        params = (
            gate.run_id,
            gate.node_id,
            gate.kind,
            gate.status,
            gate.created_at,
            _dumps(gate.to_dict(), "gate"),
        )
        key = (gate.run_id, gate.node_id, gate.kind)

        def tx(conn: sqlite3.Connection) -> Gate:
            conn.execute(sql_schema.GATE_INSERT, params)
            row = conn.execute(sql_schema.GATE_SELECT, key).fetchone()
            return Gate.from_dict(json.loads(row[0]))

        return self._write(tx)

    def gate_resolve(
        self, run_id: str, node_id: str, kind: str, status: str, by: str, comment: str | None
    ) -> Gate:
        check_gate(run_id, node_id, kind)
        if status not in GATE_RESOLUTIONS[kind]:
            raise UsageError(
                f"a {kind} resolves to one of {', '.join(GATE_RESOLUTIONS[kind])}, not {status!r}"
            )
        key = (run_id, node_id, kind)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        def tx(conn: sqlite3.Connection) -> Gate:
            row = conn.execute(sql_schema.GATE_SELECT, key).fetchone()
            if row is None:
                raise NotFoundError(f'run {run_id} has no {kind} at job "{node_id}"')
            gate = Gate.from_dict(json.loads(row[0]))
            if gate.status != "pending":
                raise already_resolved(gate)
            gate.status, gate.resolved_by, gate.resolved_at, gate.comment = (
                status,
                by,
                now,
                comment,
            )
            conn.execute(sql_schema.GATE_RESOLVE, (status, _dumps(gate.to_dict(), "gate"), *key))
            return gate

        return self._write(tx)

    def gate_get(self, run_id: str, node_id: str, kind: str) -> Gate | None:
        check_gate(run_id, node_id, kind)
        row = self._read(
            lambda c: c.execute(sql_schema.GATE_SELECT, (run_id, node_id, kind)).fetchone()
        )
        return Gate.from_dict(json.loads(row[0])) if row else None

    def gate_list(
        self, *, run_id: str | None = None, kind: str | None = None, pending_only: bool = True
    ) -> list[Gate]:
        clauses, params = [], []
        if run_id is not None:
            check_segment(run_id, "run id")
            clauses.append("run_id = ?")
            params.append(run_id)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if pending_only:
            clauses.append("status = 'pending'")
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        sql = f"SELECT data FROM gates{where} ORDER BY created_at, run_id, node_id"
        rows = self._read(lambda c: c.execute(sql, params).fetchall())
        return [Gate.from_dict(json.loads(r[0])) for r in rows]
