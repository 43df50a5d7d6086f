"""The state database schema as versioned migrations, shared by the SQLite and Postgres backends.

DDL sticks to types and syntax both engines accept (TEXT, BIGINT, DOUBLE PRECISION, IF NOT
EXISTS); JSON is stored as TEXT so both read it back the same way.
"""

from __future__ import annotations

from sparkwing.errors import SchemaVersionError

# Created before the version is read, so it cannot itself be a migration.
SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " applied_at TEXT NOT NULL)"
)
READ_VERSION_SQL = "SELECT MAX(version) FROM schema_version"
STAMP_VERSION_SQL = "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)"

# Append only: a released migration never changes, a new one gets the next version.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE TABLE IF NOT EXISTS runs ("
            " run_id TEXT PRIMARY KEY,"
            " pipeline TEXT NOT NULL,"
            " status TEXT NOT NULL,"
            " created_at TEXT NOT NULL,"
            " started_at TEXT,"
            " finished_at TEXT,"
            " heartbeat_at TEXT,"
            " data TEXT NOT NULL)",
            # list_runs filters, each ending in run_id so newest-first paging stays on the index.
            "CREATE INDEX IF NOT EXISTS runs_pipeline_idx ON runs (pipeline, run_id)",
            "CREATE INDEX IF NOT EXISTS runs_status_idx ON runs (status, run_id)",
            "CREATE INDEX IF NOT EXISTS runs_pipeline_status_idx"
            " ON runs (pipeline, status, run_id)",
            "CREATE INDEX IF NOT EXISTS runs_created_idx ON runs (created_at)",
            "CREATE TABLE IF NOT EXISTS plans (run_id TEXT PRIMARY KEY, data TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS nodes ("
            " run_id TEXT NOT NULL,"
            " node_id TEXT NOT NULL,"
            " ord INTEGER NOT NULL,"
            " status TEXT NOT NULL,"
            " data TEXT NOT NULL,"
            " PRIMARY KEY (run_id, node_id))",
            "CREATE INDEX IF NOT EXISTS nodes_ord_idx ON nodes (run_id, ord)",
            "CREATE TABLE IF NOT EXISTS events ("
            " run_id TEXT NOT NULL,"
            " seq BIGINT NOT NULL,"
            " ts TEXT NOT NULL,"
            " kind TEXT NOT NULL,"
            " node_id TEXT,"
            " data TEXT NOT NULL,"
            " PRIMARY KEY (run_id, seq))",
            "CREATE TABLE IF NOT EXISTS memo ("
            " key TEXT PRIMARY KEY,"
            " holder TEXT,"
            " state TEXT NOT NULL,"
            " result TEXT,"
            " expires_at DOUBLE PRECISION)",
        ],
    ),
    (
        2,
        [
            # Human gates (approvals, debug pauses): one row per (run, node, kind); the
            # status column makes "first resolution wins" a single conditional UPDATE.
            "CREATE TABLE IF NOT EXISTS gates ("
            " run_id TEXT NOT NULL,"
            " node_id TEXT NOT NULL,"
            " kind TEXT NOT NULL,"
            " status TEXT NOT NULL,"
            " created_at TEXT NOT NULL,"
            " data TEXT NOT NULL,"
            " PRIMARY KEY (run_id, node_id, kind))",
            "CREATE INDEX IF NOT EXISTS gates_status_idx ON gates (status, created_at)",
        ],
    ),
    (
        3,
        [
            # Per-run event counter: appends reserve seqs by bumping one row, whose lock
            # orders concurrent appenders (Postgres); seeded from the events already there.
            "CREATE TABLE IF NOT EXISTS event_seqs ("
            " run_id TEXT PRIMARY KEY,"
            " last_seq BIGINT NOT NULL)",
            "INSERT INTO event_seqs (run_id, last_seq)"
            " SELECT run_id, MAX(seq) FROM events GROUP BY run_id",
            # Submitted runs: state queued -> claimed (worker, lease) -> done. claim_id tells
            # a claim whose reply was lost to a dropped connection from any other.
            "CREATE TABLE IF NOT EXISTS run_queue ("
            " run_id TEXT PRIMARY KEY,"
            " state TEXT NOT NULL,"
            " spec TEXT NOT NULL,"
            " worker TEXT,"
            " claim_id TEXT,"
            " lease_expires DOUBLE PRECISION,"
            " attempts INTEGER NOT NULL,"
            " submitted_at TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS run_queue_state_idx ON run_queue (state, run_id)",
        ],
    ),
    (
        4,
        [
            # A token on each batch's first event: a retry after a dropped connection finds
            # out whether the lost attempt committed (Postgres; SQLite leaves it NULL).
            "ALTER TABLE events ADD COLUMN batch TEXT",
        ],
    ),
    (
        6,
        [
            # Jobs dispatched to workers (sparkwing.surfaces.state.jobqueue): one row per
            # attempt of a job, queued -> claimed (worker, lease; claims counts the claims,
            # so a worker whose lease lapsed cannot complete it) -> done (result).
            "CREATE TABLE IF NOT EXISTS job_queue ("
            " run_id TEXT NOT NULL,"
            " node_id TEXT NOT NULL,"
            " attempt INTEGER NOT NULL,"
            " state TEXT NOT NULL,"
            " labels TEXT NOT NULL,"
            " spec TEXT NOT NULL,"
            " worker TEXT,"
            " claims INTEGER NOT NULL,"
            " lease_expires DOUBLE PRECISION,"
            " cancel TEXT,"
            " result TEXT,"
            " enqueued_at TEXT NOT NULL,"
            " PRIMARY KEY (run_id, node_id, attempt))",
            "CREATE INDEX IF NOT EXISTS job_queue_state_idx ON job_queue (state, enqueued_at)",
        ],
    ),
]

# Gates: the queries both SQL backends run (``?`` placeholders; Postgres converts them).
GATE_INSERT = (
    "INSERT INTO gates (run_id, node_id, kind, status, created_at, data)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, node_id, kind) DO UPDATE SET status = excluded.status,"
    " created_at = excluded.created_at, data = excluded.data"
    " WHERE gates.status <> 'pending'"
)
GATE_SELECT = "SELECT data FROM gates WHERE run_id = ? AND node_id = ? AND kind = ?"
GATE_RESOLVE = (
    "UPDATE gates SET status = ?, data = ?"
    " WHERE run_id = ? AND node_id = ? AND kind = ? AND status = 'pending'"
)


def latest_version() -> int:
    """The schema version this sparkwing writes."""
    return MIGRATIONS[-1][0] if MIGRATIONS else 0


def newer_schema_error(location: str, found: int) -> SchemaVersionError:
    return SchemaVersionError(
        f"state database {location} has schema version {found}, newer than this sparkwing "
        f"supports ({latest_version()}); upgrade sparkwing"
    )


def pending_migrations(found: int | None, location: str) -> list[tuple[int, list[str]]]:
    """Migrations to apply to a database at version ``found`` (None: empty); refuses newer ones."""
    current = found or 0
    if current > latest_version():
        raise newer_schema_error(location, current)
    return [(version, ddl) for version, ddl in MIGRATIONS if version > current]
