"""Deleting a finished run from the SQL state (SQLite and Postgres share it): every row the
run has, in every table, in one transaction, so a reader sees all of the run or none of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import not_final_error

# The run's own row goes last only inside the transaction; readers see one atomic change.
# A schedule tick keeps its claim (run_id included) so a pruned tick never fires again.
_TABLES = (
    "run_queue",
    "job_queue",
    "group_members",
    "gates",
    "events",
    "event_seqs",
    "nodes",
    "plans",
    "runs",
)


class _Conn(Protocol):
    """What this body uses of ``sql_common.Conn`` (not imported: sql_common calls this)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


def delete_run(conn: _Conn, run_id: str, lock: str = "") -> bool:
    """The transaction body; ``lock`` (``FOR UPDATE``) holds the run's row while it decides,
    so a concurrent update cannot turn it back into a running one halfway."""
    row = conn.execute("SELECT status FROM runs WHERE run_id = ?" + lock, (run_id,)).fetchone()
    if row is not None and row[0] not in FINAL_RUN_STATUSES:
        raise not_final_error(run_id, str(row[0]))
    for table in _TABLES:
        conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
    return row is not None
