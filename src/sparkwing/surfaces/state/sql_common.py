"""What the SQLite and Postgres state backends share beyond the schema: statements (``?``
placeholders; Postgres converts them with :func:`to_pyformat`), row <-> record conversion and
the transaction bodies both run on a DB-API style connection, and :class:`SqlStateStore`,
the store methods that are nothing more than one of those bodies."""

from __future__ import annotations

import abc
import builtins
import functools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sparkwing.errors import NotFoundError, PreconditionFailedError, StorageError, UsageError
from sparkwing.ids import check_key, check_labels, check_segment
from sparkwing.surfaces.state.base import (
    GATE_RESOLUTIONS,
    Event,
    Gate,
    Gates,
    Memo,
    NewEvent,
    NodeRecord,
    QueueEntry,
    RunClaim,
    RunPage,
    RunQueue,
    RunRecord,
    ScheduleTicks,
    StateStore,
    already_resolved,
    check_gate,
    check_run_update,
)
from sparkwing.surfaces.state.sql_schema import GATE_INSERT, GATE_RESOLVE, GATE_SELECT

if TYPE_CHECKING:
    from sparkwing.surfaces.state.fleet import Fleet
    from sparkwing.surfaces.state.groups import ConcurrencyGroups
    from sparkwing.surfaces.state.jobqueue import JobQueue

T = TypeVar("T")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """The part of a DB-API connection the shared bodies use (sqlite3.Connection has it)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]], /) -> Any: ...


RUN_COLUMNS = ("pipeline", "status", "created_at", "started_at", "finished_at", "heartbeat_at")
NODE_COLUMNS = frozenset({"run_id", "node_id", "status"})

INSERT_RUN = (
    "INSERT INTO runs (run_id, pipeline, status, created_at, started_at, finished_at,"
    " heartbeat_at, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING"
)
SELECT_RUN_COLUMNS = (
    "SELECT run_id, pipeline, status, created_at, started_at, finished_at, heartbeat_at, data"
    " FROM runs"
)
_ADOPT_RUN = (
    "UPDATE runs SET pipeline = ?, status = ?, created_at = ?, started_at = ?, finished_at = ?,"
    " heartbeat_at = ?, data = ? WHERE run_id = ? AND status = 'queued'"
)
UPSERT_PLAN = (
    "INSERT INTO plans (run_id, data) VALUES (?, ?)"
    " ON CONFLICT (run_id) DO UPDATE SET data = excluded.data"
)
UPSERT_NODE = (
    "INSERT INTO nodes (run_id, node_id, ord, status, data) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (run_id, node_id) DO UPDATE SET status = excluded.status, data = excluded.data"
)
INSERT_EVENT = "INSERT INTO events (run_id, seq, ts, kind, node_id, data) VALUES (?, ?, ?, ?, ?, ?)"
# Reserves ``n`` seqs for a run and returns the last; the row lock orders concurrent appends.
BUMP_EVENT_SEQ = (
    "INSERT INTO event_seqs (run_id, last_seq) VALUES (?, ?) ON CONFLICT (run_id)"
    " DO UPDATE SET last_seq = event_seqs.last_seq + excluded.last_seq RETURNING last_seq"
)
COMPLETE_MEMO = (
    "INSERT INTO memo (key, holder, state, result, expires_at) VALUES (?, ?, 'done', ?, NULL)"
    " ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, state = 'done',"
    " result = excluded.result, expires_at = NULL"
)
_INSERT_QUEUE = (
    "INSERT INTO run_queue (run_id, state, spec, worker, claim_id, lease_expires, attempts,"
    " submitted_at, labels) VALUES (?, 'queued', ?, NULL, NULL, NULL, 0, ?, ?)"
)


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (shared statements never hold a literal ``%``)."""
    if "%" in sql:
        raise ValueError(f"shared SQL must not contain '%': {sql}")
    return sql.replace("?", "%s")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# One encoder for every value: json.dumps with options builds a new one for each call.
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_encode = _encoder.encode


def _chunks() -> Callable[[Any, int], Any] | None:
    """The C encoder behind ``_encode``, made once: ``encode`` sets one up for every call
    (a few microseconds, several times a job). Without the circular-reference check, which
    a failure falls back to for its error."""
    make = getattr(json.encoder, "c_make_encoder", None)
    quote = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or quote is None:
        return None
    e = _encoder
    chunks: Callable[[Any, int], Any] = make(
        None, e.default, quote, None, e.key_separator, e.item_separator, False, False, True
    )
    return chunks


_fast = _chunks()


def dumps(value: Any, what: str) -> str:
    if _fast is not None:
        try:
            return "".join(_fast(value, 0))
        except (TypeError, ValueError, RecursionError):
            pass  # the checked encoder says what is wrong
    try:
        return _encode(value)
    except (TypeError, ValueError) as err:
        raise StorageError(f"{what} is not JSON-serializable: {err}") from None


# -- runs ---------------------------------------------------------------------------------
def run_params(run: RunRecord) -> tuple[Any, ...]:
    """INSERT_RUN's parameters: indexed columns, then everything else as JSON."""
    check_segment(run.run_id, "run id")
    record = run.to_dict()
    data = {k: v for k, v in record.items() if k not in RUN_COLUMNS and k != "run_id"}
    return (run.run_id, *(record[c] for c in RUN_COLUMNS), dumps(data, f"run {run.run_id}"))


_ROW_FIELDS = ("run_id", *RUN_COLUMNS)
_DATA_FIELDS = frozenset(RunRecord.__dataclass_fields__) - set(_ROW_FIELDS)
_decode = json.JSONDecoder().raw_decode


def run_from_row(row: Sequence[Any]) -> RunRecord:
    data: dict[str, Any] = _decode(row[7])[0]
    if data.keys() != _DATA_FIELDS:  # written by another version: fields added or removed
        data.update(zip(_ROW_FIELDS, row[:7], strict=True))
        return RunRecord.from_dict(data)
    # The common case, on the hot path of `runs list`: every field is known and present, so
    # filling the instance directly is what __init__ would do, at a third of the cost.
    run: RunRecord = object.__new__(RunRecord)
    run.__dict__.update(zip(_ROW_FIELDS, row[:7], strict=True))
    run.__dict__.update(data)
    return run


def create_run(conn: Conn, run: RunRecord, params: tuple[Any, ...]) -> None:
    """Insert, or start a queued run in place (see StateStore.create_run)."""
    if conn.execute(INSERT_RUN, params).rowcount:
        return
    existing = get_run(conn, run.run_id)
    if existing is None or existing.status != "queued":
        raise PreconditionFailedError(f"run {run.run_id} already exists")
    adopted = RunRecord.from_dict(
        {
            **run.to_dict(),
            "created_at": existing.created_at or run.created_at,
            "extra": {**existing.extra, **run.extra},
            "source": run.source or existing.source,
        }
    )
    values = run_params(adopted)
    if conn.execute(_ADOPT_RUN, (*values[1:], run.run_id)).rowcount == 0:
        raise PreconditionFailedError(f"run {run.run_id} already exists")


def update_run(conn: Conn, run_id: str, fields: dict[str, Any], lock: str = "") -> None:
    """Set ``fields``; ``lock`` is appended to the read of the JSON part (``FOR UPDATE``)."""
    columns = [k for k in fields if k in RUN_COLUMNS]
    in_data = {k: v for k, v in fields.items() if k not in RUN_COLUMNS}
    assignments = [f"{c} = ?" for c in columns]
    params: list[Any] = [fields[c] for c in columns]
    if in_data:
        sql = "SELECT data FROM runs WHERE run_id = ?" + lock
        row = conn.execute(sql, (run_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"run {run_id} not found")
        data = json.loads(row[0])
        data.update(in_data)
        assignments.append("data = ?")
        params.append(dumps(data, f"run {run_id}"))
    if not assignments:
        assignments.append("run_id = run_id")
    sql = f"UPDATE runs SET {', '.join(assignments)} WHERE run_id = ?"
    if conn.execute(sql, (*params, run_id)).rowcount == 0:
        raise NotFoundError(f"run {run_id} not found")


def get_run(conn: Conn, run_id: str) -> RunRecord | None:
    row = conn.execute(SELECT_RUN_COLUMNS + " WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else run_from_row(row)


def list_runs_query(
    pipeline: str | None, status: str | None, since: str | None, cursor: str | None, limit: int
) -> tuple[str, list[Any]]:
    """The one query behind list_runs: each filter matches an index ending in run_id."""
    if limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("pipeline = ?", pipeline),
        ("status = ?", status),
        ("created_at >= ?", since),
        ("run_id < ?", cursor),  # the cursor is the last run id of the previous page
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = SELECT_RUN_COLUMNS
    if where:
        sql += " WHERE " + " AND ".join(where)
    # One extra row tells whether another page exists without a second query.
    params.append(limit + 1)
    return sql + " ORDER BY run_id DESC LIMIT ?", params


def run_page(rows: Sequence[Sequence[Any]], limit: int) -> RunPage:
    runs = [run_from_row(row) for row in rows[:limit]]
    return RunPage(runs=runs, next_cursor=runs[-1].run_id if len(rows) > limit else None)


def heartbeat(conn: Conn, run_id: str, at: str) -> None:
    sql = "UPDATE runs SET heartbeat_at = ? WHERE run_id = ?"
    if conn.execute(sql, (at, run_id)).rowcount == 0:
        raise NotFoundError(f"run {run_id} not found")


def get_plan(conn: Conn, run_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT data FROM plans WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    plan: dict[str, Any] = json.loads(row[0])
    return plan


# -- nodes and events -----------------------------------------------------------------------
NodeRows = dict[str, list[tuple[str, str, str]]]


# The record's fields kept in the JSON column (read straight off the record: copying it
# with dataclasses.asdict first cost more than writing it).
_NODE_DATA_FIELDS = tuple(f.name for f in fields(NodeRecord) if f.name not in NODE_COLUMNS)


def encode_nodes(nodes: list[NodeRecord]) -> NodeRows:
    """Validated (node_id, status, JSON) rows per run, before any write."""
    by_run: NodeRows = {}
    for node in nodes:
        check_segment(node.run_id, "run id")
        check_segment(node.node_id, "node id")
        data = {name: getattr(node, name) for name in _NODE_DATA_FIELDS}
        by_run.setdefault(node.run_id, []).append(
            (node.node_id, node.status, dumps(data, f"node {node.node_id}"))
        )
    return by_run


def upsert_nodes(conn: Conn, run_id: str, rows: list[tuple[str, str, str]]) -> None:
    """Callers serialise writers of one run (a write lock or a per-run advisory lock)."""
    sql = "SELECT COALESCE(MAX(ord), 0) FROM nodes WHERE run_id = ?"
    base = int(conn.execute(sql, (run_id,)).fetchone()[0])
    # Existing nodes keep their ord (the upsert ignores it), so plan order holds.
    conn.executemany(
        UPSERT_NODE,
        [
            (run_id, node_id, base + i, status, data)
            for i, (node_id, status, data) in enumerate(rows, start=1)
        ],
    )


def list_nodes(conn: Conn, run_id: str) -> list[NodeRecord]:
    sql = "SELECT node_id, status, data FROM nodes WHERE run_id = ? ORDER BY ord"
    result = []
    for node_id, status, raw in conn.execute(sql, (run_id,)).fetchall():
        data = json.loads(raw)
        data.update(run_id=run_id, node_id=node_id, status=status)
        result.append(NodeRecord.from_dict(data))
    return result


EncodedEvent = tuple[str, str, str | None, str]


def encode_events(events: list[NewEvent]) -> list[EncodedEvent]:
    return [(e.ts, e.kind, e.node_id, dumps(e.data, f"event {e.kind} data")) for e in events]


def list_events(conn: Conn, run_id: str, after_seq: int, limit: int | None) -> list[Event]:
    sql = (
        "SELECT seq, ts, kind, node_id, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
    )
    params: tuple[Any, ...] = (run_id, after_seq)
    if limit is not None:
        sql, params = sql + " LIMIT ?", (*params, limit)
    return [
        Event(run_id=run_id, seq=seq, ts=ts, kind=kind, node_id=node_id, data=json.loads(data))
        for seq, ts, kind, node_id, data in conn.execute(sql, params).fetchall()
    ]


# -- run queue ------------------------------------------------------------------------------
RELEASE_CLAIM = (
    "UPDATE run_queue SET state = ?, lease_expires = NULL"
    " WHERE run_id = ? AND worker = ? AND state = 'claimed'"
)


CANCEL_QUEUED = (
    "UPDATE run_queue SET state = 'done', lease_expires = NULL"
    " WHERE run_id = ? AND state = 'queued'"
)


def loads_spec(raw: str) -> dict[str, Any]:
    spec = json.loads(raw)
    return spec if isinstance(spec, dict) else {}


def claim_from_row(conn: Conn, row: Sequence[Any], worker: str) -> RunClaim:
    """A claim from (run_id, spec, attempts, lease_expires, previous worker)."""
    run_id, spec, attempts, expires, previous = row
    run = get_run(conn, run_id) or RunRecord(run_id=run_id, pipeline="?", status="queued")
    return RunClaim(
        run=run,
        spec=loads_spec(spec),
        worker=worker,
        attempt=int(attempts),
        expires_at=float(expires),
        previous_worker=previous,
    )


def submit_run(conn: Conn, run: RunRecord, spec: dict[str, Any]) -> None:
    run.status = "queued"
    params = run_params(run)
    encoded = dumps(spec, f"spec of run {run.run_id}")
    if conn.execute(INSERT_RUN, params).rowcount == 0:
        raise PreconditionFailedError(f"run {run.run_id} already exists")
    labels = dumps(check_labels(spec.get("labels") or (), "run label"), "labels")
    conn.execute(_INSERT_QUEUE, (run.run_id, encoded, run.created_at or utc_now(), labels))


# -- human gates ------------------------------------------------------------------------------
def gate_open(conn: Conn, gate: Gate) -> Gate:
    check_gate(gate.run_id, gate.node_id, gate.kind)
    gate.status = "pending"
    key = (gate.run_id, gate.node_id, gate.kind)
    params = (*key, gate.status, gate.created_at, dumps(gate.to_dict(), "gate"))
    conn.execute(GATE_INSERT, params)
    return Gate.from_dict(json.loads(conn.execute(GATE_SELECT, key).fetchone()[0]))


def check_resolution(kind: str, status: str) -> None:
    if status not in GATE_RESOLUTIONS[kind]:
        raise UsageError(
            f"a {kind} resolves to one of {', '.join(GATE_RESOLUTIONS[kind])}, not {status!r}"
        )


def gate_resolve(
    conn: Conn,
    key: tuple[str, str, str],
    status: str,
    by: str,
    comment: str | None,
    lock: bool = False,
) -> Gate:
    """Resolve the pending gate ``key`` (run, node, kind) so that the first resolution wins:
    under SQLite's write lock, or with ``lock`` under the row's lock (``FOR UPDATE``)."""
    run_id, node_id, kind = key
    row = conn.execute(GATE_SELECT + (" FOR UPDATE" if lock else ""), key).fetchone()
    if row is None:
        raise NotFoundError(f'run {run_id} has no {kind} at job "{node_id}"')
    gate = Gate.from_dict(json.loads(row[0]))
    if gate.status != "pending":
        raise already_resolved(gate)
    gate.status, gate.resolved_by, gate.resolved_at, gate.comment = status, by, utc_now(), comment
    conn.execute(GATE_RESOLVE, (status, dumps(gate.to_dict(), "gate"), *key))
    return gate


def gate_get(conn: Conn, run_id: str, node_id: str, kind: str) -> Gate | None:
    row = conn.execute(GATE_SELECT, (run_id, node_id, kind)).fetchone()
    return Gate.from_dict(json.loads(row[0])) if row else None


def gate_list(conn: Conn, run_id: str | None, kind: str | None, pending_only: bool) -> list[Gate]:
    clauses, params = [], []
    if run_id is not None:
        check_segment(run_id, "run id")
        clauses.append("run_id = ?")
        params.append(run_id)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if pending_only:
        clauses.append("status = 'pending'")
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"SELECT data FROM gates{where} ORDER BY created_at, run_id, node_id"
    return [Gate.from_dict(json.loads(r[0])) for r in conn.execute(sql, params).fetchall()]


# -- the store methods both backends implement the same way -------------------------------
class SqlStateStore(StateStore):
    """The StateStore methods that are one shared body run through a backend's hooks:
    ``_sql_read``, ``_sql_write`` (one transaction) and ``_sql_write_one`` (one statement)."""

    # Appended to a read that decides a later update in the same transaction.
    _row_lock = ""
    # Both SQL backends have every part; each sets them in its __init__.
    gates: Gates | None = None
    queue: RunQueue | None = None
    fleet: Fleet | None = None
    jobs: JobQueue | None = None
    ticks: ScheduleTicks | None = None
    groups: ConcurrencyGroups | None = None

    @abc.abstractmethod
    def _sql_read(self, fn: Callable[[Conn], T]) -> T: ...

    @abc.abstractmethod
    def _sql_write(self, fn: Callable[[Conn], T]) -> T: ...

    def _sql_write_one(self, fn: Callable[[Conn], T]) -> T:
        return self._sql_write(fn)

    def _check_run_id(self, run_id: str) -> None:
        check_segment(run_id, "run id")

    # -- runs -------------------------------------------------------------------------
    def update_run(self, run_id: str, **fields: Any) -> None:
        self._check_run_id(run_id)
        check_run_update(fields)
        self._sql_write(lambda c: update_run(c, run_id, fields, lock=self._row_lock))

    def get_run(self, run_id: str) -> RunRecord | None:
        self._check_run_id(run_id)
        return self._sql_read(lambda c: get_run(c, run_id))

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        sql, params = list_runs_query(pipeline, status, since, cursor, limit)
        return run_page(self._sql_read(lambda c: c.execute(sql, params).fetchall()), limit)

    def heartbeat(self, run_id: str, at: str) -> None:
        self._check_run_id(run_id)
        self._sql_write_one(lambda c: heartbeat(c, run_id, at))

    # -- plan, nodes, events ----------------------------------------------------------
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        self._check_run_id(run_id)
        params = (run_id, dumps(plan, f"plan of run {run_id}"))
        self._sql_write_one(lambda c: c.execute(UPSERT_PLAN, params))

    def get_plan(self, run_id: str) -> dict[str, Any] | None:
        self._check_run_id(run_id)
        return self._sql_read(lambda c: get_plan(c, run_id))

    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        self._check_run_id(run_id)
        return self._sql_read(lambda c: list_nodes(c, run_id))

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        self._check_run_id(run_id)
        return self._sql_read(lambda c: list_events(c, run_id, after_seq, limit))

    def delete_run(self, run_id: str) -> bool:
        from sparkwing.surfaces.state.sql_delete import delete_run

        self._check_run_id(run_id)
        return self._sql_write(lambda c: delete_run(c, run_id, lock=self._row_lock))


class SqlMemo(Memo):
    """Memo reservation in the ``memo`` table; each backend adds acquire and renew, which
    read the clock under its own write lock."""

    def __init__(self, state: SqlStateStore) -> None:
        self._state = state

    def complete(self, key: str, holder: str, result: str) -> None:
        check_key(key, "memo key")
        self._state._sql_write_one(lambda c: c.execute(COMPLETE_MEMO, (key, holder, result)))

    def release(self, key: str, holder: str) -> None:
        check_key(key, "memo key")
        sql = "DELETE FROM memo WHERE key = ? AND holder = ? AND state = 'held'"
        self._state._sql_write_one(lambda c: c.execute(sql, (key, holder)))

    def forget(self, key: str) -> None:
        check_key(key, "memo key")
        sql = "DELETE FROM memo WHERE key = ? AND state = 'done'"
        self._state._sql_write_one(lambda c: c.execute(sql, (key,)))


class SqlGates(Gates):
    """Approvals and pauses in the ``gates`` table."""

    def __init__(self, state: SqlStateStore) -> None:
        self._state = state

    def open(self, gate: Gate) -> Gate:
        check_gate(gate.run_id, gate.node_id, gate.kind)
        return self._state._sql_write(lambda c: gate_open(c, gate))

    def resolve(
        self, run_id: str, node_id: str, kind: str, status: str, by: str, comment: str | None
    ) -> Gate:
        check_gate(run_id, node_id, kind)
        check_resolution(kind, status)
        key = (run_id, node_id, kind)
        lock = bool(self._state._row_lock)
        return self._state._sql_write(
            lambda c: gate_resolve(c, key, status, by, comment, lock=lock)
        )

    def get(self, run_id: str, node_id: str, kind: str) -> Gate | None:
        check_gate(run_id, node_id, kind)
        return self._state._sql_read(lambda c: gate_get(c, run_id, node_id, kind))

    def list(
        self, *, run_id: str | None = None, kind: str | None = None, pending_only: bool = True
    ) -> builtins.list[Gate]:
        return self._state._sql_read(lambda c: gate_list(c, run_id, kind, pending_only))


class SqlQueue(RunQueue):
    """The run queue in the ``run_queue`` table; each backend adds submit, claim, renew and
    release (which differ in locking and retry recovery)."""

    def __init__(self, state: SqlStateStore) -> None:
        self._state = state

    def cancel_queued(self, run_id: str, reason: str, at: str) -> bool:
        self._state._check_run_id(run_id)

        def tx(c: Conn) -> bool:
            # The queue row first: once it is done no worker can claim the run, and a worker
            # that claimed it already makes this a no-op.
            if not c.execute(CANCEL_QUEUED, (run_id,)).rowcount:
                return False
            fields = {"status": "cancelled", "reason": reason, "finished_at": at}
            update_run(c, run_id, fields, lock=self._state._row_lock)
            return True

        return self._state._sql_write(tx)

    def entries(self, limit: int = 500) -> builtins.list[QueueEntry]:
        sql = (
            "SELECT run_id, state, worker, attempts, lease_expires, submitted_at FROM run_queue"
            " WHERE state IN ('queued', 'claimed') ORDER BY submitted_at, run_id LIMIT ?"
        )
        rows = self._state._sql_read(lambda c: c.execute(sql, (limit,)).fetchall())
        return [QueueEntry(str(r[0]), str(r[1]), r[2], int(r[3]), r[4], str(r[5])) for r in rows]

    def spec_of(self, run_id: str) -> dict[str, Any] | None:
        self._state._check_run_id(run_id)
        sql = "SELECT spec FROM run_queue WHERE run_id = ?"
        row = self._state._sql_read(lambda c: c.execute(sql, (run_id,)).fetchone())
        return None if row is None else loads_spec(row[0])
