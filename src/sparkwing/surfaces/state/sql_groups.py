"""Concurrency groups in the ``group_members`` table, shared by the SQLite and Postgres
backends: each call reads a group's rows, applies :func:`groups.step` and writes the result
back in one transaction, serialised per group (SQLite's write lock, or a Postgres advisory
lock), with lease times from the database's clock where it has one."""

from __future__ import annotations

import time

from sparkwing.surfaces.state.groups import GroupTurn, Member, Op, SteppedGroups, step
from sparkwing.surfaces.state.sql_common import Conn, SqlStateStore

_SELECT = (
    "SELECT run_id, state, lease_expires, submitted, preempted_by FROM group_members"
    " WHERE group_name = ?"
)
_DELETE = "DELETE FROM group_members WHERE group_name = ?"
_INSERT = (
    "INSERT INTO group_members (group_name, run_id, state, submitted, preempted_by,"
    " lease_expires) VALUES (?, ?, ?, ?, ?, ?)"
)


def _row(member: Member) -> tuple[str, str, str, str, float]:
    return (
        member.run_id,
        member.state,
        member.submitted,
        member.preempted_by or "",
        member.expires,
    )


class SqlGroups(SteppedGroups):
    """``lock``: a statement taking a transaction-scoped lock on one group (parameters: the
    group name), empty where the transaction itself serialises writers. ``clock``: a query
    for the database's time in epoch seconds; empty to use this host's."""

    def __init__(self, state: SqlStateStore, *, lock: str = "", clock: str = "") -> None:
        self._state = state
        self._lock = lock
        self._clock = clock

    def _now(self, conn: Conn) -> float:
        if not self._clock:
            return time.time()
        return float(conn.execute(self._clock).fetchone()[0])

    def _apply(
        self, group: str, op: Op, run_id: str, on_busy: str, lease: float, submitted: str
    ) -> tuple[list[Member], GroupTurn]:
        def tx(conn: Conn) -> tuple[list[Member], GroupTurn]:
            if self._lock:
                conn.execute(self._lock, (group,))
            rows = conn.execute(_SELECT, (group,)).fetchall()
            before = [Member(str(r[0]), str(r[1]), float(r[2]), str(r[3]), r[4]) for r in rows]
            snapshot = sorted(_row(m) for m in before)
            members, turn = step(
                before,
                self._now(conn),
                op,
                run_id,
                on_busy=on_busy,
                lease_seconds=lease,
                submitted=submitted,
            )
            if op != "read" and sorted(_row(m) for m in members) != snapshot:
                conn.execute(_DELETE, (group,))
                conn.executemany(
                    _INSERT,
                    [
                        (group, m.run_id, m.state, m.submitted, m.preempted_by, m.expires)
                        for m in members
                    ],
                )
            return members, turn

        return self._state._sql_write(tx)
