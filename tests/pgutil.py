"""Postgres helpers for the tests: a throwaway database on the server ``scripts/test`` starts
(``$SPARKWING_TEST_PG_URL``), emptied between tests, and dropped connections on demand."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.servers import server

# What PostgresState sets as application_name on its connections.
STATE_APP = "sparkwing-state"


def connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database (dropped afterwards) on the test server."""
    base = server("postgres")
    name = f"sw_{prefix}_{uuid.uuid4().hex[:12]}"
    with connect(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(base, name)
    finally:
        with connect(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_tables(url: str) -> None:
    """Delete every row but the schema version, so a migrated database looks new."""
    with connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'schema_version'"
            ).fetchall()
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))


def terminate_state_connections(url: str) -> int:
    """Kill every server process serving a PostgresState connection to ``url``'s database
    (what a restart, failover or network cut does to them); returns how many."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s"
            " AND pid <> pg_backend_pid()",
            (STATE_APP,),
        ).fetchall()
    return sum(1 for row in rows if row[0])
