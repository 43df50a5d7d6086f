"""A state store that keeps working while its (object-store) backend is briefly unreachable:
writes that fail with a StorageError are staged in the local outbox and replayed in order
when the store answers again, so a run neither fails nor loses a record.

Order is kept per scope (a run, or a memo key): once a scope has a staged write, its later
writes are staged behind it, and replay goes oldest first. Staged writes replay at the next
write or read through any handle on the same store (at most every ``retry_seconds`` while
the store stays down) and at :meth:`close`.

What cannot be known while staged is approximated, as the engine allows: ``append_events``
returns provisional seqs (the store assigns the real ones at replay, in the same order; the
engine never reads back seqs it appended), ``create_run`` cannot report a duplicate id (run
ids are random), and ``memo.acquire`` answers ``leader`` (the runner computes itself; the
result is content-addressed, so a duplicate computation corrupts nothing). Reads of a run
this handle wrote are answered from what it wrote while the run has staged writes or the
store is down.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from sparkwing import _log
from sparkwing.errors import (
    NotFoundError,
    NotSupportedError,
    PreconditionFailedError,
    SchemaVersionError,
    SparkwingError,
    StorageError,
    UsageError,
)
from sparkwing.ids import check_key, check_segment
from sparkwing.retry import RetryPolicy
from sparkwing.surfaces.state.base import (
    Event,
    Gates,
    Memo,
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunPage,
    RunQueue,
    RunRecord,
    StateStore,
    check_run_update,
)
from sparkwing.surfaces.state.fleet import Fleet
from sparkwing.surfaces.state.outbox_queue import OutboxQueue
from sparkwing.surfaces.state.segments import dumps, new_token

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import ScheduleTicks
    from sparkwing.surfaces.state.groups import ConcurrencyGroups
    from sparkwing.surfaces.state.jobqueue import JobQueue

T = TypeVar("T")
log = _log.get("sparkwing.state")

_SHADOWS = 16  # runs whose last written state a handle remembers for reads in an outage
_MAX_RETRY_SECONDS = 10.0


@runtime_checkable
class OnceAppender(Protocol):
    """Stores whose event appends can be made to land once per token (ObjectStoreState)."""

    def append_events_once(
        self, run_id: str, events: list[NewEvent], token: str, seen_from: int | None = None
    ) -> list[int]: ...

    def next_event_seq(self, run_id: str) -> int | None: ...


def is_outage(exc: BaseException) -> bool:
    """A StorageError meaning "could not reach the store", not a refusal by it."""
    refusals = (NotFoundError, PreconditionFailedError, NotSupportedError, SchemaVersionError)
    return isinstance(exc, StorageError) and not isinstance(exc, refusals)


class _Shadow:
    """The last state of one run as written (or read) through this handle."""

    def __init__(self) -> None:
        self.run: dict[str, Any] | None = None
        self.plan: dict[str, Any] | None = None
        self.nodes: dict[str, dict[str, Any]] | None = None
        self.next_seq: int | None = None


class OutboxState(StateStore):
    """Wraps ``inner``; ``outbox_path`` is the machine's outbox file (created on first use)."""

    def __init__(self, inner: StateStore, outbox_path: Path, *, retry_seconds: float = 1.0) -> None:
        self.inner = inner
        self.outbox = OutboxQueue(outbox_path)
        self.location = inner.describe()
        self.memo = _OutboxMemo(self)
        self._owner = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._lock = threading.RLock()
        self._shadows: OrderedDict[str, _Shadow] = OrderedDict()
        # Replay waits retry_seconds after an outage, doubling up to 10 s while it lasts.
        self._replay_policy = RetryPolicy(
            deadline=float("inf"), initial=retry_seconds, maximum=_MAX_RETRY_SECONDS
        )
        self._drain_failures = 0
        self._next_drain = 0.0
        self._warned = False

    def __repr__(self) -> str:
        return f"OutboxState({self.inner!r})"

    def describe(self) -> str:
        return self.location

    # -- plumbing -----------------------------------------------------------------------
    def _shadow(self, run_id: str) -> _Shadow:
        shadow = self._shadows.get(run_id)
        if shadow is None:
            shadow = self._shadows[run_id] = _Shadow()
            while len(self._shadows) > _SHADOWS:
                self._shadows.popitem(last=False)
        self._shadows.move_to_end(run_id)
        return shadow

    def _next_pause(self) -> float:
        return self._replay_policy.pause(self._drain_failures + 1)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "%s; staging state writes in %s until %s answers again",
                exc,
                self.outbox.path,
                self.location,
            )

    def _write(
        self,
        scope: str,
        op: str,
        payload: dict[str, Any],
        direct: Callable[[], T],
        staged: Callable[[dict[str, Any]], T],
    ) -> T:
        """``direct()`` unless ``scope`` has staged writes or the store is unreachable; then
        stage ``payload`` and answer ``staged(payload)``."""
        with self._lock:
            self.drain()
            if not self.outbox.pending(self.location, scope):
                try:
                    return direct()
                except StorageError as exc:
                    if not is_outage(exc):
                        raise
                    self._warn(exc)
                    self._next_drain = time.monotonic() + self._next_pause()
            self.outbox.push(self.location, scope, op, payload)
            return staged(payload)

    def _read(
        self, run_id: str, direct: Callable[[], T], shadowed: Callable[[_Shadow], T | None]
    ) -> T:
        """``direct()``, unless the run has staged writes or the store is down and this
        handle knows what it wrote (then that)."""
        with self._lock:
            self.drain()
            shadow = self._shadows.get(run_id)
            if shadow is not None and self.outbox.pending(self.location, f"run:{run_id}"):
                known = shadowed(shadow)
                if known is not None:
                    return known
            try:
                return direct()
            except StorageError as exc:
                if is_outage(exc) and shadow is not None:
                    known = shadowed(shadow)
                    if known is not None:
                        return known
                raise

    def drain(self, *, force: bool = False) -> int:
        """Replay staged writes of this store, oldest first; returns how many are left.

        Stops at the first write the store cannot take yet (and then waits ``retry_seconds``,
        doubling up to 10 s, before trying again unless ``force``).
        """
        with self._lock:
            left = self.outbox.pending(self.location)
            if not left or (not force and time.monotonic() < self._next_drain):
                return left
            if not self.outbox.lease(self.location, self._owner):
                return self.outbox.pending(self.location)
            try:
                while (entry := self.outbox.first(self.location)) is not None:
                    try:
                        self._replay(entry.op, entry.payload)
                    except StorageError as exc:
                        if not is_outage(exc):
                            self._failed(entry.id, entry.op, exc)
                            continue
                        self._next_drain = time.monotonic() + self._next_pause()
                        self._drain_failures += 1
                        break
                    except SparkwingError as exc:
                        self._failed(entry.id, entry.op, exc)
                        continue
                    self.outbox.done(entry.id)
                    self.outbox.lease(self.location, self._owner)
                else:
                    self._drain_failures = 0
            finally:
                self.outbox.unlease(self.location, self._owner)
            return self.outbox.pending(self.location)

    def _failed(self, entry_id: int, op: str, exc: BaseException) -> None:
        log.warning(
            "%s refused a staged %s (%s); kept in %s", self.location, op, exc, self.outbox.path
        )
        self.outbox.fail(entry_id, str(exc))

    def _replay(self, op: str, p: dict[str, Any]) -> None:
        inner = self.inner
        if op == "create_run":
            try:
                inner.create_run(RunRecord.from_dict(p["run"]))
            except PreconditionFailedError:
                pass  # an earlier attempt had landed after all (run ids are random)
        elif op == "update_run":
            inner.update_run(p["run_id"], **p["fields"])
        elif op == "heartbeat":
            inner.heartbeat(p["run_id"], p["at"])
        elif op == "save_plan":
            inner.save_plan(p["run_id"], p["plan"])
        elif op == "upsert_nodes":
            inner.upsert_nodes([NodeRecord.from_dict(n) for n in p["nodes"]])
        elif op == "append_events":
            events = [NewEvent(**e) for e in p["events"]]
            if isinstance(inner, OnceAppender):
                inner.append_events_once(p["run_id"], events, p["token"], p.get("seen_from"))
            else:
                inner.append_events(p["run_id"], events)
        elif op == "memo_complete":
            inner.memo.complete(p["key"], p["holder"], p["result"])
        elif op == "memo_release":
            inner.memo.release(p["key"], p["holder"])
        elif op == "memo_forget":
            inner.memo.forget(p["key"])
        else:
            raise UsageError(f"unknown staged operation {op!r}")

    def close(self) -> None:
        with self._lock:
            try:
                left = self.drain(force=True)
            except StorageError:
                left = -1
            if left:
                count = "some" if left < 0 else str(left)
                log.warning(
                    "%s state write(s) for %s are staged in %s; they replay at the next "
                    "sparkwing command using it",
                    count,
                    self.location,
                    self.outbox.path,
                )
            self.outbox.close()
            self.inner.close()

    # -- runs ---------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> None:
        check_segment(run.run_id, "run id")
        payload = {"run": run.to_dict()}
        dumps(payload, f"run {run.run_id}")
        self._write(
            f"run:{run.run_id}", "create_run", payload, lambda: self.inner.create_run(run), _none
        )
        with self._lock:
            self._shadow(run.run_id).run = run.to_dict()

    def update_run(self, run_id: str, **fields: Any) -> None:
        check_segment(run_id, "run id")
        check_run_update(fields)
        payload = {"run_id": run_id, "fields": fields}
        dumps(payload, f"run {run_id}")
        self._write(
            f"run:{run_id}",
            "update_run",
            payload,
            lambda: self.inner.update_run(run_id, **fields),
            _none,
        )
        self._shadow_fields(run_id, fields)

    def heartbeat(self, run_id: str, at: str) -> None:
        check_segment(run_id, "run id")
        payload = {"run_id": run_id, "at": at}
        self._write(
            f"run:{run_id}", "heartbeat", payload, lambda: self.inner.heartbeat(run_id, at), _none
        )
        self._shadow_fields(run_id, {"heartbeat_at": at})

    def _shadow_fields(self, run_id: str, fields: dict[str, Any]) -> None:
        with self._lock:
            shadow = self._shadows.get(run_id)
            if shadow is not None and shadow.run is not None:
                shadow.run.update(fields)

    def get_run(self, run_id: str) -> RunRecord | None:
        check_segment(run_id, "run id")

        def shadowed(s: _Shadow) -> RunRecord | None:
            return None if s.run is None else RunRecord.from_dict(s.run)

        got = self._read(run_id, lambda: self.inner.get_run(run_id), shadowed)
        return got

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        with self._lock:
            self.drain()
        return self.inner.list_runs(
            pipeline=pipeline, status=status, since=since, limit=limit, cursor=cursor
        )

    # -- plan, nodes, events ------------------------------------------------------------
    def save_plan(self, run_id: str, plan: dict[str, Any]) -> None:
        check_segment(run_id, "run id")
        payload = {"run_id": run_id, "plan": plan}
        dumps(payload, f"plan of run {run_id}")
        self._write(
            f"run:{run_id}",
            "save_plan",
            payload,
            lambda: self.inner.save_plan(run_id, plan),
            _none,
        )
        with self._lock:
            self._shadow(run_id).plan = plan

    def get_plan(self, run_id: str) -> dict[str, Any] | None:
        check_segment(run_id, "run id")
        return self._read(run_id, lambda: self.inner.get_plan(run_id), lambda s: s.plan)

    def upsert_nodes(self, nodes: list[NodeRecord]) -> None:
        by_run: dict[str, list[NodeRecord]] = {}
        for node in nodes:
            check_segment(node.run_id, "run id")
            check_segment(node.node_id, "node id")
            by_run.setdefault(node.run_id, []).append(node)
        for run_id, batch in by_run.items():
            payload = {"nodes": [n.to_dict() for n in batch]}
            dumps(payload, f"nodes of run {run_id}")
            self._write(
                f"run:{run_id}",
                "upsert_nodes",
                payload,
                partial(self.inner.upsert_nodes, batch),
                _none,
            )
            with self._lock:
                shadow = self._shadow(run_id)
                if shadow.nodes is None:
                    shadow.nodes = {}
                for record in payload["nodes"]:
                    shadow.nodes[record["node_id"]] = record

    def list_nodes(self, run_id: str) -> list[NodeRecord]:
        check_segment(run_id, "run id")

        def shadowed(s: _Shadow) -> list[NodeRecord] | None:
            if s.nodes is None:
                return None
            return [NodeRecord.from_dict(n) for n in s.nodes.values()]

        return self._read(run_id, lambda: self.inner.list_nodes(run_id), shadowed)

    def append_events(self, run_id: str, events: list[NewEvent]) -> list[int]:
        check_segment(run_id, "run id")
        if not events:
            return []
        inner = self.inner
        token = new_token()
        payload: dict[str, Any] = {
            "run_id": run_id,
            "events": [
                {"kind": e.kind, "ts": e.ts, "node_id": e.node_id, "data": e.data} for e in events
            ],
            "token": token,
        }
        if isinstance(inner, OnceAppender):
            # A lower bound of where this batch can land (the run's events only grow): a
            # replay looks from there for an attempt that landed unseen, so none lands twice.
            payload["seen_from"] = inner.next_event_seq(run_id) or 1
        dumps(payload, f"events of run {run_id}")

        def direct() -> list[int]:
            if isinstance(inner, OnceAppender):
                return inner.append_events_once(run_id, events, token)
            return inner.append_events(run_id, events)

        def staged(p: dict[str, Any]) -> list[int]:
            first = self._shadow(run_id).next_seq or p.get("seen_from") or 1
            return list(range(first, first + len(events)))

        with self._lock:
            seqs = self._write(f"run:{run_id}", "append_events", payload, direct, staged)
            self._shadow(run_id).next_seq = seqs[-1] + 1
        return seqs

    def list_events(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            self.drain()
        return self.inner.list_events(run_id, after_seq, limit)

    def delete_run(self, run_id: str) -> bool:
        """Never staged: pruning waits for the store rather than delete behind staged writes."""
        with self._lock:
            self.drain()
            self._shadows.pop(run_id, None)
        return self.inner.delete_run(run_id)

    # -- optional parts (gates, run queue): the inner store's, never staged ----------
    @property
    def gates(self) -> Gates | None:
        return self.inner.gates

    @property
    def queue(self) -> RunQueue | None:
        return self.inner.queue

    @property
    def fleet(self) -> Fleet | None:
        return self.inner.fleet

    @property
    def groups(self) -> ConcurrencyGroups | None:
        return self.inner.groups

    @property
    def jobs(self) -> JobQueue | None:
        return self.inner.jobs

    @property
    def ticks(self) -> ScheduleTicks | None:
        return self.inner.ticks


class _OutboxMemo(Memo):
    """Memo reservation through the outbox: completions and releases are staged in an
    outage, and an unreachable store makes the caller the leader (see the module doc)."""

    def __init__(self, state: OutboxState) -> None:
        self._state = state

    def acquire(self, key: str, holder: str, lease_seconds: float) -> MemoClaim:
        check_key(key, "memo key")
        with self._state._lock:
            self._state.drain()
            if not self._state.outbox.pending(self._state.location, f"memo:{key}"):
                try:
                    return self._state.inner.memo.acquire(key, holder, lease_seconds)
                except StorageError as exc:
                    if not is_outage(exc):
                        raise
                    self._state._warn(exc)
        # Unreachable: compute here rather than wait on a store that cannot answer.
        return MemoClaim("leader", holder=holder, expires_at=time.time() + lease_seconds)

    def renew(self, key: str, holder: str, lease_seconds: float) -> bool:
        check_key(key, "memo key")
        try:
            return self._state.inner.memo.renew(key, holder, lease_seconds)
        except StorageError as exc:
            if not is_outage(exc):
                raise
            return True  # keep computing; the lease is re-taken or completed after the outage

    def complete(self, key: str, holder: str, result: str) -> None:
        check_key(key, "memo key")
        payload = {"key": key, "holder": holder, "result": result}
        self._state._write(
            f"memo:{key}",
            "memo_complete",
            payload,
            lambda: self._state.inner.memo.complete(key, holder, result),
            _none,
        )

    def release(self, key: str, holder: str) -> None:
        check_key(key, "memo key")
        payload = {"key": key, "holder": holder}
        self._state._write(
            f"memo:{key}",
            "memo_release",
            payload,
            lambda: self._state.inner.memo.release(key, holder),
            _none,
        )

    def forget(self, key: str) -> None:
        check_key(key, "memo key")
        self._state._write(
            f"memo:{key}",
            "memo_forget",
            {"key": key},
            lambda: self._state.inner.memo.forget(key),
            _none,
        )


def _none(_payload: dict[str, Any]) -> None:
    return None
