"""The job queue in the ``job_queue`` table, one implementation for SQLite and Postgres.

Leases use the database's own clock (so workers on machines whose clocks differ agree on
when one lapsed), and every state change is one conditional UPDATE: of two workers
claiming the same row, the second finds its condition false and moves on.
"""

from __future__ import annotations

import json
from typing import Any

from sparkwing.errors import PreconditionFailedError, UsageError
from sparkwing.ids import check_segment
from sparkwing.surfaces.state.jobqueue import (
    JobClaim,
    JobEntry,
    JobQueue,
    JobRef,
    JobResult,
    QueuedJob,
    Renewal,
    labels_fit,
)
from sparkwing.surfaces.state.sql_common import Conn, SqlStateStore, dumps, utc_now

# The database's clock in seconds since the epoch, per backend.
SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
POSTGRES_NOW = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"

# Claimable rows looked at per claim: enough that jobs this worker cannot run (labels it
# lacks) queued ahead of one it can do not hide it.
CLAIM_SCAN = 500

_KEY = "run_id = ? AND node_id = ? AND attempt = ?"


def _check(ref: JobRef) -> tuple[str, str, int]:
    check_segment(ref.run_id, "run id")
    check_segment(ref.node_id, "node id")
    if isinstance(ref.attempt, bool) or not isinstance(ref.attempt, int) or ref.attempt < 1:
        raise UsageError(f"job attempt must be a positive integer, not {ref.attempt!r}")
    return ref.run_id, ref.node_id, ref.attempt


class SqlJobQueue(JobQueue):
    """The store's ``jobs`` part; ``now_sql`` is the backend's clock expression."""

    def __init__(self, state: SqlStateStore, now_sql: str) -> None:
        self._state = state
        now = now_sql
        self._claimable = (
            "SELECT run_id, node_id, attempt, labels, claims, worker FROM job_queue"
            f" WHERE cancel IS NULL AND (state = 'queued' OR (state = 'claimed'"
            f" AND lease_expires <= {now})) ORDER BY enqueued_at, run_id, node_id, attempt"
            f" LIMIT {CLAIM_SCAN}"
        )
        # The condition is checked again by the UPDATE itself: a peer that took the row
        # since the scan (or is taking it now: Postgres waits for its commit) wins.
        self._take = (
            f"UPDATE job_queue SET state = 'claimed', worker = ?, claims = claims + 1,"
            f" lease_expires = {now} + ? WHERE {_KEY} AND claims = ? AND cancel IS NULL"
            f" AND (state = 'queued' OR (state = 'claimed' AND lease_expires <= {now}))"
            " RETURNING spec, claims, lease_expires"
        )
        self._renew = (
            f"UPDATE job_queue SET lease_expires = {now} + ?"
            f" WHERE {_KEY} AND worker = ? AND claims = ? AND state = 'claimed'"
        )

    def enqueue(self, job: QueuedJob) -> None:
        key = _check(job.ref)
        labels = sorted({str(label) for label in job.labels})
        params = (*key, dumps(labels, "labels"), dumps(job.spec, "job spec"), utc_now())

        def tx(c: Conn) -> None:
            inserted = c.execute(
                "INSERT INTO job_queue (run_id, node_id, attempt, state, labels, spec, worker,"
                " claims, lease_expires, cancel, result, enqueued_at)"
                " VALUES (?, ?, ?, 'queued', ?, ?, NULL, 0, NULL, NULL, NULL, ?)"
                " ON CONFLICT (run_id, node_id, attempt) DO NOTHING",
                params,
            ).rowcount
            if not inserted:
                raise PreconditionFailedError(
                    f"job {key[1]} (attempt {key[2]}) of run {key[0]} is queued already"
                )

        self._state._sql_write(tx)

    def claim(self, worker: str, labels: list[str], lease_seconds: float) -> JobClaim | None:
        offered = list(labels)

        def tx(c: Conn) -> JobClaim | None:
            for row in c.execute(self._claimable).fetchall():
                run_id, node_id, attempt, raw, claims, holder = row
                required = json.loads(raw)
                if not labels_fit(required, offered):
                    continue
                params = (worker, float(lease_seconds), run_id, node_id, attempt, claims)
                row = c.execute(self._take, params).fetchone()
                if row is None:
                    continue  # a peer took it first
                spec, count, expires = row
                return JobClaim(
                    ref=JobRef(run_id, node_id, int(attempt)),
                    labels=required,
                    spec=json.loads(spec),
                    worker=worker,
                    claim=int(count),
                    expires_at=float(expires),
                    previous_worker=holder if claims else None,
                )
            return None

        return self._state._sql_write(tx)

    def renew(self, ref: JobRef, worker: str, claim: int, lease_seconds: float) -> Renewal:
        key = _check(ref)

        def tx(c: Conn) -> Renewal:
            params = (float(lease_seconds), *key, worker, int(claim))
            if not c.execute(self._renew, params).rowcount:
                return "lost"
            row = c.execute("SELECT cancel FROM job_queue WHERE " + _KEY, key).fetchone()
            return "cancel" if row is not None and row[0] is not None else "held"

        return self._state._sql_write(tx)

    def complete(self, ref: JobRef, worker: str, claim: int, result: JobResult) -> bool:
        key = _check(ref)
        params = (dumps(result.to_dict(), "job result"), *key, worker, int(claim))
        sql = (
            "UPDATE job_queue SET state = 'done', lease_expires = NULL, result = ?"
            f" WHERE {_KEY} AND worker = ? AND claims = ? AND state = 'claimed'"
        )
        return bool(self._state._sql_write(lambda c: c.execute(sql, params).rowcount))

    def cancel(self, ref: JobRef, reason: str) -> None:
        key = _check(ref)
        result = JobResult("cancelled", error=reason, finished_at=utc_now())
        ended = dumps(result.to_dict(), "job result")

        def tx(c: Conn) -> None:
            c.execute(
                "UPDATE job_queue SET state = 'done', cancel = ?, result = ?"
                f" WHERE {_KEY} AND state = 'queued'",
                (reason, ended, *key),
            )
            c.execute(
                f"UPDATE job_queue SET cancel = ? WHERE {_KEY} AND state = 'claimed'"
                " AND cancel IS NULL",
                (reason, *key),
            )

        self._state._sql_write(tx)

    def entries(self, run_id: str) -> list[JobEntry]:
        check_segment(run_id, "run id")
        sql = (
            "SELECT node_id, attempt, state, labels, worker, claims, cancel, result, enqueued_at"
            " FROM job_queue WHERE run_id = ? ORDER BY enqueued_at, node_id, attempt"
        )
        rows = self._state._sql_read(lambda c: c.execute(sql, (run_id,)).fetchall())
        return [_entry(run_id, row) for row in rows]


def _entry(run_id: str, row: Any) -> JobEntry:
    node_id, attempt, state, labels, worker, claims, cancel, result, enqueued_at = row
    return JobEntry(
        ref=JobRef(run_id, node_id, int(attempt)),
        state=state,
        labels=json.loads(labels),
        worker=worker,
        claim=int(claims),
        cancel=cancel,
        result=json.loads(result) if result else None,
        enqueued_at=enqueued_at,
    )
