"""The fleet in the ``workers`` table, shared by the SQLite and Postgres backends."""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING

from sparkwing.ids import check_segment
from sparkwing.surfaces.state.fleet import Fleet, WorkerInfo
from sparkwing.surfaces.state.sql_common import dumps

if TYPE_CHECKING:
    from sparkwing.surfaces.state.sql_common import SqlStateStore

_UPSERT = (
    "INSERT INTO workers (name, last_seen, data) VALUES (?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET last_seen = excluded.last_seen, data = excluded.data"
)


class SqlFleet(Fleet):
    def __init__(self, state: SqlStateStore) -> None:
        self._state = state

    def heartbeat(self, worker: WorkerInfo) -> None:
        check_segment(worker.name, "worker name")
        params = (worker.name, worker.last_seen, dumps(worker.to_dict(), "worker"))
        self._state._sql_write_one(lambda c: c.execute(_UPSERT, params))

    def leave(self, name: str) -> bool:
        check_segment(name, "worker name")
        sql = "DELETE FROM workers WHERE name = ?"
        return bool(self._state._sql_write_one(lambda c: c.execute(sql, (name,)).rowcount))

    def list(self) -> builtins.list[WorkerInfo]:
        sql = "SELECT data FROM workers ORDER BY name"
        rows = self._state._sql_read(lambda c: c.execute(sql).fetchall())
        return [WorkerInfo.from_dict(json.loads(row[0])) for row in rows]

    def prune(self, before: str) -> int:
        sql = "DELETE FROM workers WHERE last_seen < ?"
        return int(self._state._sql_write_one(lambda c: c.execute(sql, (before,)).rowcount))
