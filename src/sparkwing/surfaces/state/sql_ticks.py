"""Schedule ticks in the ``schedule_ticks`` table (migration 8), shared by the SQLite and
Postgres backends: the (schedule, tick) primary key makes one claim win, and the claim and
the queued run are written in one transaction, so a tick is never claimed without its run."""

from __future__ import annotations

from typing import Any

from sparkwing.surfaces.state import sql_common as sq
from sparkwing.surfaces.state.base import RunRecord, ScheduleTicks, check_schedule_key

_CLAIM = (
    "INSERT INTO schedule_ticks (schedule, tick, run_id, claimed_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (schedule, tick) DO NOTHING"
)
_HOLDER = "SELECT run_id FROM schedule_ticks WHERE schedule = ? AND tick = ?"
_LAST = "SELECT MAX(tick) FROM schedule_ticks WHERE schedule = ?"


class SqlTicks(ScheduleTicks):
    def __init__(self, state: sq.SqlStateStore) -> None:
        self._state = state

    def fire(self, schedule: str, tick: str, run: RunRecord, spec: dict[str, Any]) -> bool:
        check_schedule_key(schedule, tick)
        self._state._check_run_id(run.run_id)

        def tx(conn: sq.Conn) -> bool:
            if conn.execute(_CLAIM, (schedule, tick, run.run_id, sq.utc_now())).rowcount:
                sq.submit_run(conn, run, spec)
                return True
            # Ours already when a retry follows a commit whose answer was lost.
            row = conn.execute(_HOLDER, (schedule, tick)).fetchone()
            return row is not None and row[0] == run.run_id

        return self._state._sql_write(tx)

    def last(self, schedule: str) -> str | None:
        check_schedule_key(schedule, "-")
        row = self._state._sql_read(lambda c: c.execute(_LAST, (schedule,)).fetchone())
        return None if row is None or row[0] is None else str(row[0])
