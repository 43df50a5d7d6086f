"""Concurrency groups in the ``group_members`` table, shared by the SQLite and Postgres
backends: each call reads a group's rows, applies :func:`groups.step` and writes the result
back in one transaction, serialised per group (SQLite's write lock, or a Postgres advisory
lock), with lease times from the database's clock where it has one."""

from __future__ import annotations

import builtins
import time

from sparkwing.ids import check_segment
from sparkwing.surfaces.state.groups import (
    ConcurrencyGroups,
    GroupTurn,
    Member,
    Op,
    check_group,
    check_on_busy,
    step,
)
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


class SqlGroups(ConcurrencyGroups):
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

    def _step(
        self,
        group: str,
        op: Op,
        run_id: str,
        on_busy: str = "queue",
        lease: float = 0.0,
        submitted: str = "",
    ) -> tuple[list[Member], GroupTurn]:
        check_group(group)
        if run_id:
            check_segment(run_id, "run id")

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

    def enter(
        self, group: str, run_id: str, on_busy: str, lease_seconds: float, submitted: str
    ) -> GroupTurn:
        check_on_busy(on_busy)
        return self._step(group, "enter", run_id, on_busy, float(lease_seconds), submitted)[1]

    def poll(self, group: str, run_id: str, lease_seconds: float) -> GroupTurn:
        return self._step(group, "poll", run_id, lease=float(lease_seconds))[1]

    def leave(self, group: str, run_id: str) -> None:
        self._step(group, "leave", run_id)

    def members(self, group: str) -> builtins.list[Member]:
        return self._step(group, "read", "")[0]
