"""Buffers a run's records (node changes, events, log lines) and writes them in batches.

The scheduler flushes before it waits, but writes state no more often than every
:data:`FLUSH_AFTER_SECONDS`: what follows a quiet spell is written at once, and a burst of
instant jobs costs one state transaction (and one log append per job) per interval instead
of one per job.
Everything passes the masker before it is buffered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sparkwing.engine.clock import now_iso
from sparkwing.engine.masking import Masker
from sparkwing.surfaces.logs.base import LogRecord, LogStore
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, StateStore

Listener = Callable[[str, Any], None]

# The shortest time between two flushes, so the longest a record waits in the buffer: the
# bound on what a runner killed mid-burst leaves unwritten, and small beside any human's
# reading of a run.
FLUSH_AFTER_SECONDS = 0.02


class Recorder:
    def __init__(
        self,
        run_id: str,
        state: StateStore,
        logs: LogStore,
        masker: Masker,
        listener: Listener | None = None,
    ) -> None:
        self.run_id = run_id
        self.state = state
        self.logs = logs
        self.masker = masker
        self._listener = listener
        self._nodes: dict[str, NodeRecord] = {}
        self._all: dict[str, NodeRecord] = {}
        self._events: list[NewEvent] = []
        self._logs: dict[str, list[LogRecord]] = {}
        self.annotations: dict[str, list[str]] = {}
        self._stamp: str | None = None
        self._buffered_any = False
        self._last_flush = float("-inf")  # monotonic

    def now(self) -> str:
        """The time of this turn's records: what a turn reads arrives together, and
        formatting the clock for every line cost more than writing the line."""
        if self._stamp is None:
            self._stamp = now_iso()
        return self._stamp

    def _buffered(self) -> None:
        self._buffered_any = True

    def flush_due(self) -> float | None:
        """When (monotonic) the buffered records are to be written: at once after a quiet
        spell, else one interval after the last state write; None when nothing is
        buffered."""
        return self._last_flush + FLUSH_AFTER_SECONDS if self._buffered_any else None

    def _emit(self, kind: str, payload: Any) -> None:
        if self._listener is not None:
            self._listener(kind, payload)

    def node_changed(self, record: NodeRecord) -> None:
        self._nodes[record.node_id] = self._all[record.node_id] = record
        self._buffered()
        self._emit("node", record)

    def nodes_changed(self, records: list[NodeRecord]) -> None:
        for record in records:
            self._nodes[record.node_id] = self._all[record.node_id] = record
        self._buffered()

    def event(self, kind: str, node_id: str | None, data: dict[str, Any] | None = None) -> None:
        self._events.append(
            NewEvent(kind=kind, ts=self.now(), node_id=node_id, data=self.masker.data(data or {}))
        )
        self._buffered()

    def log(self, node_id: str, stream: str, msg: str) -> None:
        """``msg`` must already be masked (callers mask at the boundary where text enters)."""
        self._logs.setdefault(node_id, []).append(LogRecord(ts=self.now(), msg=msg, stream=stream))
        self._buffered()
        self._emit("log", (node_id, stream, msg))

    def annotate(self, node_id: str, text: str) -> None:
        self.annotations.setdefault(node_id, []).append(text)
        record = self._all.get(node_id)
        if record is not None:
            record.extra["annotations"] = list(self.annotations[node_id])
            self._nodes[node_id] = record
        self.event("annotation", node_id, {"text": text})
        self._emit("annotation", (node_id, text))

    def tick(self) -> None:
        self._emit("tick", None)

    def heartbeat(self) -> None:
        self.state.heartbeat(self.run_id, now_iso())

    def mark_time(self) -> None:
        """Time has passed (the loop waited): records from here on take a new time."""
        self._stamp = None

    def flush(self) -> None:
        self._stamp = None
        self._buffered_any = False
        # Logs first: a reader that sees a node finished should find its whole log.
        if self._logs:
            pending, self._logs = self._logs, {}
            for node_id, records in pending.items():
                self.logs.append(self.run_id, node_id, records)
        nodes, self._nodes = list(self._nodes.values()), {}
        events, self._events = self._events, []
        for record in nodes:
            record.output = self.masker.data(record.output)
            if record.error:
                record.error = self.masker.text(record.error)
            if record.reason:
                record.reason = self.masker.text(record.reason)
        if nodes or events:
            # One transaction for the batch's node changes and events where the store can.
            # Only these set the pace: a job's output written meanwhile must not delay the
            # outcome that follows it.
            self._last_flush = time.monotonic()
            self.state.write_batch(self.run_id, nodes, events)
