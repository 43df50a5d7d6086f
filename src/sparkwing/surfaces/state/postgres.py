"""The Postgres state backend (mode 3): psycopg 3 and a connection pool, migrations under an
advisory lock, memo leases and the run queue on row locks, dropped connections retried.

Every operation is one statement or one transaction, run again as a whole when the connection
breaks or the server asks for a retry (serialization failure, deadlock, shutdown). The few that
are not idempotent check, before running again, whether the lost attempt committed after all.
Leases use the database's clock, so runners on machines with skewed clocks agree on expiry.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sparkwing.errors import ConfigError, StorageError
from sparkwing.ids import check_key, check_segment
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
from sparkwing.surfaces.state.sql_jobs import POSTGRES_NOW, SqlJobQueue

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    Connection = psycopg.Connection[tuple[Any, ...]]

T = TypeVar("T")

APPLICATION_NAME = "sparkwing-state"
CONNECT_TIMEOUT_SECONDS = 10
# A transient failure (restart, failover, dropped connection) is retried for this long.
RETRY_DEADLINE_SECONDS = 60.0
POOL_SIZE = 4
# pg_advisory_xact_lock keys: one for migrations, one class for per-run node writes.
MIGRATION_LOCK = 0x53707277_4D696772  # "Sprw" "Migr"
NODES_LOCK_CLASS = 0x53574E44  # "SWND"

# The database's clock in seconds since the epoch, as leases are stored.
_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"

_APPEND_EVENTS = """
WITH bumped AS (
  INSERT INTO event_seqs AS s (run_id, last_seq) VALUES (%(run)s, %(n)s)
  ON CONFLICT (run_id) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
  RETURNING last_seq)
INSERT INTO events (run_id, seq, ts, kind, node_id, data, batch)
SELECT %(run)s, bumped.last_seq - %(n)s + e.ord, e.ts, e.kind, e.node_id, e.data,
  CASE WHEN e.ord = 1 THEN %(batch)s END
FROM bumped, unnest(%(ts)s::text[], %(kind)s::text[], %(node)s::text[], %(data)s::text[])
  WITH ORDINALITY AS e(ts, kind, node_id, data, ord)
RETURNING seq"""

# The same for the most common call, one event: plain parameters, no arrays to build.
_APPEND_EVENT = """
WITH bumped AS (
  INSERT INTO event_seqs AS s (run_id, last_seq) VALUES (%(run)s, 1)
  ON CONFLICT (run_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING last_seq)
INSERT INTO events (run_id, seq, ts, kind, node_id, data, batch)
SELECT %(run)s, last_seq, %(ts)s, %(kind)s, %(node)s, %(data)s, %(batch)s FROM bumped
RETURNING seq"""

_MEMO_ACQUIRE = f"""
INSERT INTO memo AS m (key, holder, state, result, expires_at)
VALUES (%(key)s, %(holder)s, 'held', NULL, {_NOW} + %(lease)s)
ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, state = 'held', result = NULL,
  expires_at = EXCLUDED.expires_at
WHERE m.state = 'held'
  AND (m.holder = EXCLUDED.holder OR m.expires_at IS NULL OR m.expires_at <= {_NOW})
RETURNING expires_at"""
_MEMO_RENEW = (
    f"UPDATE memo SET expires_at = {_NOW} + %s WHERE key = %s AND holder = %s AND state = 'held'"
)

_CLAIM = f"""
WITH pick AS (
  SELECT run_id, worker FROM run_queue
  WHERE state = 'queued' OR (state = 'claimed' AND lease_expires <= {_NOW})
  ORDER BY run_id LIMIT 1
  FOR UPDATE SKIP LOCKED)
UPDATE run_queue AS q SET state = 'claimed', worker = %(worker)s, claim_id = %(claim)s,
  lease_expires = {_NOW} + %(lease)s, attempts = q.attempts + 1
FROM pick WHERE q.run_id = pick.run_id
RETURNING q.run_id, q.spec, q.attempts, q.lease_expires, pick.worker"""
_RENEW_CLAIM = (
    f"UPDATE run_queue SET lease_expires = {_NOW} + %s"
    " WHERE run_id = %s AND worker = %s AND state = 'claimed'"
)


_IDLE = 0  # libpq PQTRANS_IDLE: connected, no transaction open

# A library stays quiet: without a handler, the pool's reconnect warnings would reach stderr.
logging.getLogger("psycopg").addHandler(logging.NullHandler())


def _driver() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - checked here so the error names both
    except ImportError:
        raise ConfigError(
            "state backend type=postgres needs psycopg 3 and psycopg-pool: "
            'pip install "sparkwing[postgres]"'
        ) from None
    return psycopg


def _reason(err: BaseException, secret: str) -> str:
    """libpq's message in one line, without its "connection to server ... failed:" preamble."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if " failed: " in text:
        text = text.rsplit(" failed: ", 1)[1]
    text = " ".join(text.removeprefix("FATAL:").split())
    return text.replace(secret, "***") if secret else text


class _Conn:
    """A psycopg connection seen through sql_common.Conn: ``?`` placeholders, executemany."""

    def __init__(self, conn: Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        return self.raw.execute(sq.to_pyformat(sql), params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> None:
        with self.raw.cursor() as cur:
            cur.executemany(sq.to_pyformat(sql), list(params))


class PostgresState(sq.SqlStateStore):
    """State in one Postgres database; safe for any number of processes on any machines."""

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE) -> None:
        self.memo = _PostgresMemo(self)
        self.gates = sq.SqlGates(self)
        self.queue = _PostgresQueue(self)
        self.jobs = SqlJobQueue(self, POSTGRES_NOW)
        self._psycopg = _driver()
        # The first retry goes at once, on a fresh connection; later ones back off.
        self._retry_policy = RetryPolicy(
            deadline=RETRY_DEADLINE_SECONDS,
            initial=0.01,
            maximum=0.5,
            immediate=1,
            transient=self._transient,
        )
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(url)
        except self._psycopg.Error:
            # libpq's message quotes the string, which may hold a password: never repeat it.
            raise ConfigError(
                "state backend type=postgres: url is not a valid connection string"
            ) from None
        self._secret = str(params.get("password") or "")
        host = str(
            params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
        )
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        user = params.get("user") or os.environ.get("PGUSER") or ""
        db = params.get("dbname") or os.environ.get("PGDATABASE") or user or "postgres"
        self.location = f"{host}:{port}/{db}"
        extra = {
            k: v
            for k, v in (
                ("application_name", APPLICATION_NAME),
                ("connect_timeout", CONNECT_TIMEOUT_SECONDS),
            )
            if k not in params
        }
        self._conninfo = make_conninfo(url, **extra)
        self._pool_size = max(1, pool_size)
        # Batch tokens: unique across processes (random prefix) without a syscall per append.
        self._batch_prefix = f"{os.urandom(8).hex()}-"
        self._batches = itertools.count()
        self._closed = False
        self._valid_ids: set[str] = set()
        self._pid = os.getpid()
        # The lane: the connection a single-threaded caller (the runner, a CLI command) uses
        # for everything, so it pays neither a pool check-out per statement nor the pool's
        # threads. Other threads, while the lane is busy, use a pool opened on first need.
        self._lane: Connection | None = None
        self._lane_lock = threading.Lock()
        self._pool: ConnectionPool[Any] | None = None
        self._pool_lock = threading.Lock()
        # Versions this handle applied (empty when the database was already current).
        self.migrated: list[int] = []
        self._lane = self._migrate()

    def __repr__(self) -> str:
        return f"PostgresState({self.location!r})"

    def describe(self) -> str:
        return f"postgres:{self.location}"

    # -- connection plumbing ----------------------------------------------------------
    def _connect_error(self, err: BaseException) -> StorageError:
        return StorageError(
            f"cannot connect to state database {self.location}: {_reason(err, self._secret)}"
        )

    def _migrate(self) -> Connection:
        """Connect and bring the schema up to date: first a cheap look, then, if needed, one
        transaction under an advisory lock, so N processes on an empty database migrate it
        exactly once. Returns the connection (it becomes the lane)."""
        psycopg = self._psycopg
        try:
            conn: Connection = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as err:
            raise self._connect_error(err) from None
        try:
            found = self._read_version(conn)
            if found is not None and found >= sql_schema.latest_version():
                sql_schema.pending_migrations(found, self.location)  # raises when newer
                return conn
            now = sq.utc_now()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute(sql_schema.SCHEMA_VERSION_DDL)
                # Re-read under the lock: a peer may have migrated since the first look.
                found = self._read_version(conn)
                applied = []
                for version, statements in sql_schema.pending_migrations(found, self.location):
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(sq.to_pyformat(sql_schema.STAMP_VERSION_SQL), (version, now))
                    applied.append(version)
            self.migrated = applied
            return conn
        except BaseException as err:
            conn.close()
            if isinstance(err, psycopg.Error):
                message = _reason(err, self._secret)
                raise StorageError(f"state database {self.location}: {message}") from None
            raise

    def _read_version(self, conn: Connection) -> int | None:
        try:
            row = conn.execute(sql_schema.READ_VERSION_SQL).fetchone()
        except self._psycopg.errors.UndefinedTable:
            return None
        return None if row is None or row[0] is None else int(row[0])

    def _new_pool(self) -> ConnectionPool[Any]:
        from psycopg_pool import ConnectionPool

        pool: ConnectionPool[Any] = ConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=1,
            max_size=self._pool_size,
            open=False,
            name="sparkwing-state",
            timeout=RETRY_DEADLINE_SECONDS / 4,
            reconnect_timeout=RETRY_DEADLINE_SECONDS,
        )
        pool.open(wait=False)
        return pool

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"state database {self.location} is closed")
        if os.getpid() != self._pid:
            # A forked child never touches its parent's connections (dropping them is safe:
            # psycopg closes a connection only in the process that opened it) nor the pool's
            # threads, which did not survive the fork: it connects on its own.
            self._pid = os.getpid()
            self._lane, self._pool = None, None
            self._lane_lock, self._pool_lock = threading.Lock(), threading.Lock()
            self._batch_prefix = f"{os.urandom(8).hex()}-"

    def _get_pool(self) -> ConnectionPool[Any]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._new_pool()
            return self._pool

    def _transient(self, err: BaseException) -> bool:
        psycopg = self._psycopg
        if not isinstance(err, psycopg.OperationalError):
            return False
        # No SQLSTATE: the client lost the connection. 08 connection, 40 retry the
        # transaction, 53 out of resources, 57 shutdown / restart in progress.
        state = getattr(err, "sqlstate", None)
        return state is None or state[:2] in ("08", "40", "53", "57")

    def _run(
        self,
        fn: Callable[[Connection], T],
        *,
        tx: bool = True,
        recover: Callable[[Connection], tuple[T] | None] | None = None,
    ) -> T:
        """``fn`` on a pooled connection (in a transaction unless ``tx`` is False), run again
        while failures are transient. After a failure, ``recover`` is asked first whether the
        failed attempt committed after all (its answer wrapped in a 1-tuple)."""
        psycopg = self._psycopg

        def attempt(failed: int) -> T:
            # A retry takes a connection of its own (see _connection) and first asks
            # whether the failed attempt committed after all.
            with self._connection(direct=failed > 0) as conn:
                if failed and recover is not None:
                    done = recover(conn)
                    if done is not None:
                        return done[0]
                if not tx:
                    return fn(conn)
                with conn.transaction():
                    return fn(conn)

        def on_retry(err: BaseException, failed: int) -> None:
            state = getattr(err, "sqlstate", None)
            if failed == 1 and (state is None or state[:2] in ("08", "57")):
                # What killed this connection (a restart, a cut) likely killed its idle
                # siblings too: have the pool test them, so the retry gets a live one.
                self._check_pool()

        try:
            return self._retry_policy.call(attempt, on_retry=on_retry)
        except psycopg.Error as err:
            message = _reason(err, self._secret)
            raise StorageError(f"state database {self.location}: {message}") from None

    @contextlib.contextmanager
    def _connection(self, *, direct: bool) -> Iterator[Connection]:
        """The lane, or a pooled connection while another thread uses it. ``direct``: a new
        connection of its own, for a retry that must not wait while the pool, after a cut or
        restart, reconnects with its own back-off."""
        self._check_usable()
        if direct:
            conn = self._psycopg.connect(self._conninfo, autocommit=True)
            try:
                yield conn
            finally:
                conn.close()
            return
        if not self._lane_lock.acquire(blocking=False):
            with self._get_pool().connection() as conn:
                yield conn
            return
        try:
            if self._lane is None:
                self._lane = self._psycopg.connect(self._conninfo, autocommit=True)
            conn = self._lane
            try:
                yield conn
            finally:
                if conn.closed or conn.pgconn.transaction_status != _IDLE:
                    # Broken, or left mid-transaction: the next call connects afresh.
                    self._lane = None
                    conn.close()
        finally:
            self._lane_lock.release()

    def _check_run_id(self, run_id: str) -> None:
        # Validation is pure: a run's writer (the runner, thousands of calls) pays it once.
        if run_id not in self._valid_ids:
            check_segment(run_id, "run id")
            if len(self._valid_ids) > 4096:
                self._valid_ids.clear()
            self._valid_ids.add(run_id)

    def _check_pool(self) -> None:
        pool = self._pool
        if pool is None:
            return
        try:
            pool.check()
        except self._psycopg.Error:
            pass  # the retry itself reports what is wrong

    # The hooks of SqlStateStore: sql_common bodies (``?`` placeholders) through _run.
    _row_lock = " FOR UPDATE"

    def _sql_read(self, fn: Callable[[sq.Conn], T]) -> T:
        return self._run(lambda conn: fn(_Conn(conn)), tx=False)

    def _sql_write(self, fn: Callable[[sq.Conn], T]) -> T:
        return self._run(lambda conn: fn(_Conn(conn)))

    def _sql_write_one(self, fn: Callable[[sq.Conn], T]) -> T:
        return self._run(lambda conn: fn(_Conn(conn)), tx=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() != self._pid:
            return  # inherited across a fork: the parent's to close
        with self._lane_lock:
            if self._lane is not None:
                self._lane.close()
                self._lane = None
        if self._pool is not None:
            self._pool.close()

    # -- runs -------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        params = sq.run_params(run)

        def already(conn: Connection) -> tuple[None] | None:
            # A lost reply to our own INSERT: the row is there and it is exactly ours.
            got = sq.get_run(_Conn(conn), run.run_id)
            return (None,) if got is not None and sq.run_params(got) == params else None

        self._run(lambda c: sq.create_run(_Conn(c), run, params), recover=already)

    # -- plan, nodes, events ----------------------------------------------------------
    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        by_run = sq.encode_nodes(nodes)

        def tx(conn: Connection) -> None:
            for run_id, rows in by_run.items():
                # Serialise writers of one run so two batches never pick the same ord.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (NODES_LOCK_CLASS, run_id)
                )
                sq.upsert_nodes(_Conn(conn), run_id, rows)

        if by_run:
            self._run(tx)

    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        self._check_run_id(run_id)
        if not events:
            return []
        encoded = sq.encode_events(events)
        batch = f"{self._batch_prefix}{next(self._batches)}"
        params: dict[str, Any] = {"run": run_id, "batch": batch}
        if len(encoded) == 1:
            sql = _APPEND_EVENT
            params.update(zip(("ts", "kind", "node", "data"), encoded[0], strict=True))
        else:
            sql = _APPEND_EVENTS
            params["n"] = len(encoded)
            for i, name in enumerate(("ts", "kind", "node", "data")):
                params[name] = [e[i] for e in encoded]

        def append(conn: Connection) -> list[int]:
            # One statement: reserve the seqs and insert, atomically, in one round trip.
            return sorted(int(row[0]) for row in conn.execute(sql, params).fetchall())

        def already(conn: Connection) -> tuple[list[int]] | None:
            sql = "SELECT seq FROM events WHERE run_id = %s AND batch = %s"
            row = conn.execute(sql, (run_id, batch)).fetchone()
            return None if row is None else (list(range(row[0], row[0] + len(encoded))),)

        return self._run(append, tx=False, recover=already)


class _PostgresMemo(sq.SqlMemo):
    """The store's ``memo`` part: acquire and renew with Postgres row locks."""

    _state: PostgresState

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        check_key(key, "memo key")
        params = {"key": key, "holder": holder, "lease": float(lease_seconds)}

        def tx(conn: Connection) -> MemoClaim:
            # The upsert takes the row lock whether or not its WHERE lets it update, so the
            # read below sees the row as it stays until this transaction ends.
            row = conn.execute(_MEMO_ACQUIRE, params).fetchone()
            if row is not None:
                return MemoClaim("leader", holder=holder, expires_at=float(row[0]))
            current = conn.execute(
                "SELECT holder, state, result, expires_at FROM memo WHERE key = %s", (key,)
            ).fetchone()
            if current is None:  # released between the two statements: lead next time
                raise self._state._psycopg.errors.SerializationFailure("memo row vanished")
            who, state, result, expires_at = current
            if state == "done":
                return MemoClaim("done", holder=who, result=result)
            return MemoClaim("held", holder=who, expires_at=float(expires_at))

        return self._state._run(tx)

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        check_key(key, "memo key")
        params = (float(lease_seconds), key, holder)
        return self._state._run(lambda c: c.execute(_MEMO_RENEW, params).rowcount > 0, tx=False)


class _PostgresQueue(sq.SqlQueue):
    """The store's ``queue`` part."""

    _state: PostgresState

    def submit(self, run: RunRecord, spec: dict[str, Any]) -> None:
        check_segment(run.run_id, "run id")

        def already(conn: Connection) -> tuple[None] | None:
            row = conn.execute("SELECT spec FROM run_queue WHERE run_id = %s", (run.run_id,))
            found = row.fetchone()
            return (None,) if found is not None and found[0] == sq.dumps(spec, "spec") else None

        self._state._run(lambda c: sq.submit_run(_Conn(c), run, spec), recover=already)

    def claim(self, worker: str, lease_seconds: float) -> RunClaim | None:
        claim_id = uuid.uuid4().hex
        params = {"worker": worker, "claim": claim_id, "lease": float(lease_seconds)}

        def tx(conn: Connection) -> RunClaim | None:
            row = conn.execute(_CLAIM, params).fetchone()
            return None if row is None else sq.claim_from_row(_Conn(conn), row, worker)

        def already(conn: Connection) -> tuple[RunClaim | None] | None:
            row = conn.execute(
                "SELECT run_id, spec, attempts, lease_expires, NULL FROM run_queue"
                " WHERE claim_id = %s AND state = 'claimed'",
                (claim_id,),
            ).fetchone()
            return None if row is None else (sq.claim_from_row(_Conn(conn), row, worker),)

        return self._state._run(tx, recover=already)

    def renew(self, run_id: str, worker: str, lease_seconds: float) -> bool:
        self._state._check_run_id(run_id)
        params = (float(lease_seconds), run_id, worker)
        return self._state._run(lambda c: c.execute(_RENEW_CLAIM, params).rowcount > 0, tx=False)

    def release(self, run_id: str, worker: str, *, requeue: bool = False) -> bool:
        self._state._check_run_id(run_id)
        state = "queued" if requeue else "done"

        def already(conn: Connection) -> tuple[bool] | None:
            row = conn.execute(
                "SELECT 1 FROM run_queue WHERE run_id = %s AND worker = %s AND state = %s",
                (run_id, worker, state),
            ).fetchone()
            return None if row is None else (True,)

        return self._state._run(
            lambda c: bool(_Conn(c).execute(sq.RELEASE_CLAIM, (state, run_id, worker)).rowcount),
            tx=False,
            recover=already,
        )
