"""The recorder's buffering: what it holds is due at once after a quiet spell, one interval
after the last flush otherwise, and one flush writes it all (masked) in one state batch and
one log append per job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparkwing.engine.masking import Masker
from sparkwing.engine.recorder import FLUSH_AFTER_SECONDS, Recorder
from sparkwing.surfaces.logs.base import LogRecord
from sparkwing.surfaces.logs.filesystem import FilesystemLogs
from sparkwing.surfaces.state.base import NodeRecord


class _State:
    """Counts the batches written (a fake only for counting; the stores have their own
    conformance suites)."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[NodeRecord], list[Any]]] = []

    def write_batch(self, run_id: str, nodes: list[NodeRecord], events: list[Any]) -> None:
        self.batches.append((list(nodes), list(events)))


def test_buffered_records_are_due_once_and_written_in_one_batch(tmp_path: Path) -> None:
    state = _State()
    logs = FilesystemLogs(tmp_path)
    rec = Recorder("run-1", state, logs, Masker(["hunter2-secret"]))  # type: ignore[arg-type]
    assert rec.flush_due() is None
    first = NodeRecord(run_id="run-1", node_id="a", needs=[])
    rec.node_changed(first)
    due = rec.flush_due()
    assert due is not None and due < 0  # never flushed: due at once
    rec.log("a", "stdout", "one")
    rec.event("node_started", "a", {"said": "hunter2-secret"})
    rec.node_changed(NodeRecord(run_id="run-1", node_id="b", needs=[]))
    rec.log("b", "stdout", "two")
    assert rec.flush_due() == due
    rec.flush()
    assert rec.flush_due() is None
    rec.log("a", "stdout", "three")
    after = rec.flush_due()
    assert after is not None and after > FLUSH_AFTER_SECONDS  # one interval after the write
    rec.flush()
    # Output alone does not set the pace: the outcome after it is not held back by it.
    rec.node_changed(first)
    assert rec.flush_due() == after
    rec.flush()
    assert len(state.batches) == 2
    nodes, events = state.batches[0]
    assert [n.node_id for n in nodes] == ["a", "b"]
    assert events[0].data == {"said": "***"}
    assert [r.msg for r in logs.read("run-1", "a")] == ["one", "three"]
    assert [r.msg for r in logs.read("run-1", "b")] == ["two"]
    rec.flush()  # nothing buffered: nothing written
    assert len(state.batches) == 2


def test_log_lines_keep_their_bytes(tmp_path: Path) -> None:
    logs = FilesystemLogs(tmp_path)
    logs.append("run-1", "n", [LogRecord("t", 'é "quoted"\ttab', "stderr")])
    (got,) = logs.read("run-1", "n")
    assert (got.ts, got.msg, got.stream) == ("t", 'é "quoted"\ttab', "stderr")
