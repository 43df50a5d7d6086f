"""The outbox file (``$SPARKWING_HOME/outbox.db``): state writes that could not reach their
store, in the order they were made, shared by every sparkwing process of the machine.

Entries are keyed by store location and scope (``run:<id>`` or ``memo:<key>``). One process
at a time drains a store's entries, under a lease kept in the same file, so a replay is
never interleaved with another replay of the same entries. Entries that fail for good (the
store refused them, it did not just time out) move to ``failed`` for ``sparkwing doctor``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sparkwing.errors import StorageError
from sparkwing.paths import create_private_file, make_private_dirs
from sparkwing.surfaces.state.sqlite import BUSY_RETRY, BUSY_TIMEOUT_SECONDS, transaction

T = TypeVar("T")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " store TEXT NOT NULL, scope TEXT NOT NULL, op TEXT NOT NULL, payload TEXT NOT NULL,"
    " created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_scope_idx ON entries (store, scope, id)",
    "CREATE TABLE IF NOT EXISTS failed ("
    " id INTEGER PRIMARY KEY,"
    " store TEXT NOT NULL, scope TEXT NOT NULL, op TEXT NOT NULL, payload TEXT NOT NULL,"
    " created_at REAL NOT NULL, failed_at REAL NOT NULL, reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS drainers ("
    " store TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL)",
)
DRAIN_LEASE_SECONDS = 60.0


@dataclass(frozen=True)
class Entry:
    id: int
    scope: str
    op: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Summary:
    """What ``sparkwing doctor`` reports: staged and failed entries per store."""

    store: str
    pending: int
    failed: int
    oldest: float | None  # created_at of the oldest staged entry


class OutboxQueue:
    """The outbox file; opened lazily, so a machine that never staged a write has none."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return self.path.exists()

    # -- plumbing -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            make_private_dirs(self.path.parent)
            create_private_file(self.path)
        except OSError as err:
            raise StorageError(
                f"cannot create the directory of outbox {self.path}: {err}"
            ) from None
        conn = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """``fn`` in one transaction (immediate when it writes), retried while the file is
        busy; reads take no write lock, so many processes checking the outbox never queue."""
        with self._lock:

            def attempt() -> T:
                if self._db is None or os.getpid() != self._pid:
                    # A forked child never reuses its parent's connection.
                    self._pid, self._db = os.getpid(), self._connect()
                return transaction(self._db, fn, "BEGIN IMMEDIATE" if write else "BEGIN")

            try:
                return BUSY_RETRY.run(attempt)
            except sqlite3.Error as err:
                raise StorageError(f"outbox {self.path}: {err}") from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None and os.getpid() == self._pid:
                self._db.close()
            self._db = None

    # -- staging ------------------------------------------------------------------------
    def push(self, store: str, scope: str, op: str, payload: dict[str, Any]) -> None:
        """Stage one write; a heartbeat right after a heartbeat of the same scope replaces it."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))

        def tx(conn: sqlite3.Connection) -> None:
            if op == "heartbeat":
                last = conn.execute(
                    "SELECT id, op FROM entries WHERE store = ? AND scope = ?"
                    " ORDER BY id DESC LIMIT 1",
                    (store, scope),
                ).fetchone()
                if last is not None and last[1] == "heartbeat":
                    conn.execute("UPDATE entries SET payload = ? WHERE id = ?", (body, last[0]))
                    return
            conn.execute(
                "INSERT INTO entries (store, scope, op, payload, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (store, scope, op, body, time.time()),
            )

        self._run(tx)

    def pending(self, store: str, scope: str | None = None) -> int:
        """Staged entries of ``store`` (of one scope when given); 0 without opening a file
        that does not exist."""
        if self._db is None and not self.exists():
            return 0
        sql = "SELECT COUNT(*) FROM entries WHERE store = ?"
        params: tuple[str, ...] = (store,)
        if scope is not None:
            sql += " AND scope = ?"
            params = (store, scope)
        return int(self._run(lambda c: c.execute(sql, params).fetchone()[0], write=False))

    # -- draining -----------------------------------------------------------------------
    def lease(self, store: str, owner: str) -> bool:
        """Take (or extend) the right to drain ``store``; False while another process has it."""

        def tx(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute(
                "SELECT owner, expires_at FROM drainers WHERE store = ?", (store,)
            ).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO drainers (store, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (store) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at",
                (store, owner, now + DRAIN_LEASE_SECONDS),
            )
            return True

        return self._run(tx)

    def unlease(self, store: str, owner: str) -> None:
        self._run(
            lambda c: c.execute(
                "DELETE FROM drainers WHERE store = ? AND owner = ?", (store, owner)
            )
        )

    def first(self, store: str) -> Entry | None:
        row = self._run(
            lambda c: c.execute(
                "SELECT id, scope, op, payload FROM entries WHERE store = ? ORDER BY id LIMIT 1",
                (store,),
            ).fetchone(),
            write=False,
        )
        return None if row is None else Entry(row[0], row[1], row[2], json.loads(row[3]))

    def done(self, entry_id: int) -> None:
        self._run(lambda c: c.execute("DELETE FROM entries WHERE id = ?", (entry_id,)))

    def fail(self, entry_id: int, reason: str) -> None:
        """Move an entry the store refused for good out of the way, keeping it for doctor."""

        def tx(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO failed (id, store, scope, op, payload, created_at, failed_at, reason)"
                " SELECT id, store, scope, op, payload, created_at, ?, ? FROM entries WHERE id = ?",
                (time.time(), reason, entry_id),
            )
            conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))

        self._run(tx)

    def summary(self) -> list[Summary]:
        """Per store: staged and failed entries (empty when there is no outbox file)."""
        if self._db is None and not self.exists():
            return []

        def tx(conn: sqlite3.Connection) -> list[Summary]:
            counts: dict[str, list[Any]] = {}
            for store, n, oldest in conn.execute(
                "SELECT store, COUNT(*), MIN(created_at) FROM entries GROUP BY store"
            ):
                counts[store] = [n, 0, oldest]
            for store, n in conn.execute("SELECT store, COUNT(*) FROM failed GROUP BY store"):
                counts.setdefault(store, [0, 0, None])[1] = n
            return [Summary(s, c[0], c[1], c[2]) for s, c in sorted(counts.items())]

        return self._run(tx, write=False)


def outbox_summary(path: Path) -> list[Summary]:
    """For ``sparkwing doctor``: what the outbox at ``path`` holds, per store."""
    queue = OutboxQueue(path)
    try:
        return queue.summary()
    finally:
        queue.close()
