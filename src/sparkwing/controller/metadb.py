"""The controller's own tables (tokens, encrypted secrets, a key check, which token wrote
which run) in the database of its state surface: the same SQLite file or Postgres database,
tables prefixed ``controller_``.

They live beside the state schema rather than in its migrations: only the controller reads
them, and ``CREATE TABLE IF NOT EXISTS`` plus adding missing columns, under a lock, is all
the versioning they need (a database from an older controller keeps working).
"""

from __future__ import annotations

import abc
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sparkwing.errors import ConfigError, StorageError
from sparkwing.retry import RetryPolicy
from sparkwing.surfaces.state.sqlite import is_busy

if TYPE_CHECKING:
    from sparkwing.surfaces.secrets.base import SecretStore
    from sparkwing.surfaces.spec import SurfaceSpec

T = TypeVar("T")
Row = tuple[Any, ...]

DDL: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS controller_tokens ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " token_hash TEXT NOT NULL UNIQUE,"
    " scopes TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " last_used_at TEXT)",
    "CREATE TABLE IF NOT EXISTS controller_secrets ("
    " name TEXT PRIMARY KEY,"
    " masked INTEGER NOT NULL,"
    " sealed TEXT NOT NULL,"
    " updated_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS controller_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # The tokens that created or claimed each run: the only non-admin tokens that may write it.
    "CREATE TABLE IF NOT EXISTS controller_run_tokens ("
    " run_id TEXT NOT NULL,"
    " token_name TEXT NOT NULL,"
    " how TEXT NOT NULL,"
    " PRIMARY KEY (run_id, token_name, how))",
    # Repositories whose pushes and schedules start runs (controller/repos.py); a webhook
    # secret is only named (the environment variable holding it), never stored.
    "CREATE TABLE IF NOT EXISTS controller_repos ("
    " name TEXT PRIMARY KEY,"
    " url TEXT NOT NULL,"
    " branch TEXT NOT NULL,"
    " secret_env TEXT,"
    " created_at TEXT NOT NULL)",
    # Webhook deliveries seen, so a redelivery queues nothing again.
    "CREATE TABLE IF NOT EXISTS controller_deliveries ("
    " repo TEXT NOT NULL,"
    " delivery TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " received_at TEXT NOT NULL,"
    " runs TEXT,"
    " PRIMARY KEY (repo, delivery))",
)
# Columns added after a table's first release: (table, column, type), added when missing.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (("controller_tokens", "expires_at", "TEXT"),)
_BUSY_RETRY = RetryPolicy(deadline=60.0, initial=0.01, maximum=0.01, transient=is_busy)
# An arbitrary constant naming the advisory lock that serialises table creation on Postgres.
_PG_LOCK_ID = 0x5357_4354


class MetaDB(abc.ABC):
    """A tiny SQL executor; statements use ``?`` placeholders on every dialect."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; returns the affected row count."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abc.abstractmethod
    def describe(self) -> str: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class SqliteMetaDB(MetaDB):
    """One connection shared by the server's threads under a lock (SQLite serialises writes)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            _private_folder(self.path.parent)
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA busy_timeout = 30000")
            _private_files(self.path)
        except (OSError, sqlite3.Error) as err:
            raise StorageError(f"controller database {self.path}: {err}") from None
        self._retry(self._create)

    def _create(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in DDL:
                self._db.execute(statement)
            for table, column, kind in ADDED_COLUMNS:
                have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def _retry(self, fn: Callable[[], T]) -> T:
        with self._lock:
            try:
                return _BUSY_RETRY.run(fn)
            except sqlite3.Error as err:
                raise StorageError(f"controller database {self.path}: {err}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._retry(lambda: self._db.execute(sql, tuple(params)).rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._retry(lambda: list(self._db.execute(sql, tuple(params)).fetchall()))

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresMetaDB(MetaDB):
    """A small connection pool; each statement commits on its own."""

    def __init__(self, dsn: str, where: str) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                "a postgres-backed controller needs psycopg: pip install 'sparkwing[postgres]'"
            ) from None
        self._where = where
        self._errors: tuple[type[BaseException], ...] = (psycopg.Error,)
        try:
            self._pool = ConnectionPool(dsn, min_size=1, max_size=4, open=True, timeout=30)
            with self._pool.connection() as conn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_ID,))
                for statement in DDL:
                    conn.execute(statement)
                for table, column, kind in ADDED_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        except self._errors as err:
            raise StorageError(f"controller database {where}: {_one_line(err)}") from None

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            with self._pool.connection() as conn:
                return conn.execute(self._sql(sql), tuple(params)).rowcount
        except self._errors as err:
            raise StorageError(f"controller database {self._where}: {_one_line(err)}") from None

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self._pool.connection() as conn:
                cur = conn.execute(self._sql(sql), tuple(params))
                return [tuple(row) for row in cur.fetchall()]
        except self._errors as err:
            raise StorageError(f"controller database {self._where}: {_one_line(err)}") from None

    def describe(self) -> str:
        return self._where

    def close(self) -> None:
        self._pool.close()


def _private_folder(path: Path) -> None:
    """Create ``path`` (owner-only, 0700) if it is missing; an existing folder is left as is."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _private_files(db: Path) -> None:
    """The database and its journals hold token hashes and sealed secrets: owner-only."""
    for name in (db.name, db.name + "-wal", db.name + "-shm", db.name + "-journal"):
        try:
            (db.parent / name).chmod(0o600)
        except FileNotFoundError:
            pass


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def open_metadb(spec: SurfaceSpec, secrets: SecretStore | None, env: Mapping[str, str]) -> MetaDB:
    """The controller tables in the database ``spec`` (the controller's state) names."""
    if spec.type == "sqlite":
        from sparkwing.paths import default_state_path

        return SqliteMetaDB(Path(spec.path).expanduser() if spec.path else default_state_path())
    if spec.type == "postgres":
        from sparkwing.conf.resolve import resolve_url_source

        dsn = resolve_url_source(spec, secrets, env)
        return PostgresMetaDB(dsn, spec.describe())
    raise ConfigError(
        f'the controller needs sqlite or postgres state, not "{spec.type}" '
        "(its tokens and secrets live in that database)"
    )
