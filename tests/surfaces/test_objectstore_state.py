"""Object-store state beyond the conformance suite: what it costs (requests and bytes grow
linearly with a run's changes; listing the newest runs reads O(limit) objects however many
runs exist), its index order, and the outbox that carries writes through an outage."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from sparkwing.errors import StorageError
from sparkwing.ids import new_run_id
from sparkwing.surfaces.objectstore.base import ObjectMeta
from sparkwing.surfaces.state import objindex
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord
from sparkwing.surfaces.state.objectstore import ObjectStoreState
from sparkwing.surfaces.state.outbox import OutboxState
from sparkwing.surfaces.state.outbox_queue import OutboxQueue, outbox_summary
from tests.conformance.state_suite import ev, iso, make_run
from tests.doubles.memory import MemoryObjectStore
from tests.surfaces._memstore import CountingStore, keys

# -- cost ---------------------------------------------------------------------------------


def _change(state: ObjectStoreState, run_id: str, i: int) -> None:
    """One scheduler turn: a node changes, an event is appended, sometimes a heartbeat."""
    node = NodeRecord(run_id=run_id, node_id=f"job-{i % 20}", status="running", attempt=i)
    state.upsert_nodes([node])
    state.append_events(run_id, [ev("node_started", f"job-{i % 20}", i=i)])
    if i % 5 == 0:
        state.heartbeat(run_id, iso(i))


def test_requests_and_bytes_grow_linearly_with_changes() -> None:
    counting = CountingStore(MemoryObjectStore())
    state = ObjectStoreState(counting)
    run = make_run(0, status="running")
    state.create_run(run)
    windows = []
    for window in range(4):
        counting.reset()
        for i in range(window * 200, (window + 1) * 200):
            _change(state, run.run_id, i)
        windows.append((counting.total, counting.bytes_up))
    # Each window of 200 changes costs what the first did: O(changes), not O(changes^2).
    first_requests, first_bytes = windows[0]
    assert first_requests <= 200 * 3  # node batch + event segment + a heartbeat every 5th
    for requests, sent in windows[1:]:
        assert requests <= first_requests * 1.1
        assert sent <= first_bytes * 1.5  # node folds every 64 batches add a little
    assert len(state.list_events(run.run_id)) == 800
    nodes = state.list_nodes(run.run_id)
    assert [n.node_id for n in nodes] == [f"job-{i}" for i in range(20)]
    assert nodes[0].attempt == 780


def test_a_fresh_reader_folds_nodes_from_a_checkpoint() -> None:
    mem = MemoryObjectStore()
    writer = ObjectStoreState(mem)
    run = make_run(0)
    writer.create_run(run)
    for i in range(150):
        writer.upsert_nodes([NodeRecord(run_id=run.run_id, node_id=f"n{i % 7}", attempt=i)])
    counting = CountingStore(mem)
    reader = ObjectStoreState(counting)
    nodes = reader.list_nodes(run.run_id)
    last = {f"n{i % 7}": i for i in range(150)}  # plan order, each node's last record
    assert [(n.node_id, n.attempt) for n in nodes] == list(last.items())
    # The fold written at batch 128 plus the 22 batches after it, not all 150 batches.
    assert counting.counts["get"] <= 1 + 22
    counting.reset()
    assert reader.list_nodes(run.run_id) == nodes
    assert counting.total == 1  # nothing new: one LIST


def _many_runs(mem: MemoryObjectStore, count: int) -> list[RunRecord]:
    state = ObjectStoreState(mem)
    runs = [
        make_run(
            i,
            pipeline="build" if i % 4 else "deploy",
            status="success" if i % 3 else "failed",
        )
        for i in range(count)
    ]
    for run in runs:
        state.create_run(run)
    return runs


def test_list_runs_reads_o_limit_objects_of_2000_runs() -> None:
    mem = MemoryObjectStore()
    runs = _many_runs(mem, 2000)
    newest_first = list(reversed(runs))
    counting = CountingStore(mem)
    state = ObjectStoreState(counting)

    page = state.list_runs(limit=50)
    assert [r.run_id for r in page.runs] == [r.run_id for r in newest_first[:50]]
    assert counting.counts["list"] + counting.counts["get"] <= 60
    assert counting.total <= 60

    counting.reset()
    second = state.list_runs(limit=50, cursor=page.next_cursor)
    assert [r.run_id for r in second.runs] == [r.run_id for r in newest_first[50:100]]
    assert counting.total <= 60

    # Filters are applied on the index keys, so only matching runs are read.
    counting.reset()
    deploys = state.list_runs(pipeline="deploy", status="failed", limit=20)
    expected = [r for r in newest_first if r.pipeline == "deploy" and r.status == "failed"]
    assert [r.run_id for r in deploys.runs] == [r.run_id for r in expected[:20]]
    assert counting.counts["get"] == 20
    assert counting.counts["list"] <= 3  # a 1-in-12 filter walks about 250 index keys


def test_status_changes_move_the_index_entry() -> None:
    mem = MemoryObjectStore()
    state = ObjectStoreState(mem)
    run = make_run(0, status="running")
    state.create_run(run)
    for _ in range(3):
        state.heartbeat(run.run_id, iso(5))  # no index change for a heartbeat
    assert len(keys(mem, "index/")) == 1
    state.update_run(run.run_id, status="success", finished_at=iso(9))
    listed = keys(mem, "index/")
    assert len(listed) == 1
    entry = objindex.parse(listed[0])
    assert entry is not None
    assert (entry.run_id, entry.status, entry.pipeline) == (run.run_id, "success", "build")


def test_index_order_is_newest_first_for_any_run_ids() -> None:
    rng = random.Random(7)
    alphabet = "ab-9é日"
    ids = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(300)}
    ids |= {"a", "ab", "abc", "b", "run-x"}
    keys = sorted(objindex.entry_key(i, "running", iso(), "p") for i in ids)
    listed = [objindex.parse(k) for k in keys]
    assert [e.run_id for e in listed if e is not None] == sorted(ids, reverse=True)
    for run_id in ["a", "ab", "abc"]:
        after = objindex.after_run(run_id)
        assert [e.run_id for e in listed if e is not None and e.key > after] == [
            i for i in sorted(ids, reverse=True) if i < run_id
        ]


def test_long_pipeline_names_fall_back_to_reading_the_run() -> None:
    mem = MemoryObjectStore()
    state = ObjectStoreState(mem)
    long_name = "p" * 240
    a = make_run(0, pipeline=long_name)
    b = make_run(1, pipeline="short")
    state.create_run(a)
    state.create_run(b)
    entry = objindex.parse(keys(mem, objindex.run_prefix(a.run_id))[0])
    assert entry is not None and entry.pipeline is None
    assert [r.run_id for r in state.list_runs(pipeline=long_name).runs] == [a.run_id]
    assert [r.run_id for r in state.list_runs(pipeline="short").runs] == [b.run_id]


# -- requests that land but report a failure ------------------------------------------------


class LandThenFail(MemoryObjectStore):
    """Conditional writes land, then the caller sees an error ``failures`` times: what a
    timeout after the server applied a write looks like."""

    def __init__(self) -> None:
        super().__init__("flaky")
        self.failures = 0

    def put_if_absent(self, key: str, data: bytes) -> ObjectMeta:
        meta = super().put_if_absent(key, data)
        if self.failures:
            self.failures -= 1
            raise StorageError("memory://flaky: read timed out")
        return meta


@pytest.mark.parametrize("replayer", ["same handle", "another process"])
def test_a_staged_append_that_had_landed_is_not_duplicated(tmp_path: Path, replayer: str) -> None:
    store = LandThenFail()
    state = OutboxState(ObjectStoreState(store), tmp_path / "outbox.db", retry_seconds=0)
    run = make_run(0)
    state.create_run(run)
    state.append_events(run.run_id, [ev("a")])
    store.failures = 1
    state.append_events(run.run_id, [ev("b"), ev("c")])  # landed, reported failed: staged
    if replayer == "another process":
        # It knows nothing of this run: the replay must look where the attempt went.
        state = OutboxState(ObjectStoreState(store), tmp_path / "outbox.db")
    state.append_events(run.run_id, [ev("d")])  # drains first
    events = ObjectStoreState(store).list_events(run.run_id)
    assert [(e.seq, e.kind) for e in events] == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]
    assert OutboxQueue(tmp_path / "outbox.db").pending(state.location) == 0


def test_a_replay_that_landed_unseen_is_not_replayed_twice(tmp_path: Path) -> None:
    store = LandThenFail()
    state = OutboxState(ObjectStoreState(store), tmp_path / "outbox.db", retry_seconds=0)
    run = make_run(0)
    state.create_run(run)
    state.append_events(run.run_id, [ev("a")])
    store.fail_requests = True
    state.append_events(run.run_id, [ev("b")])  # staged
    state.append_events(run.run_id, [ev("c")])  # staged behind it
    store.fail_requests = False
    store.failures = 1  # the replay of "b" lands, but the drain sees an error and stops
    state.append_events(run.run_id, [ev("d")])
    # That process dies; the next one on this machine drains: it finds "b" where it
    # landed instead of appending it again, then replays "c" and "d".
    OutboxState(ObjectStoreState(store), tmp_path / "outbox.db").close()
    events = ObjectStoreState(store).list_events(run.run_id)
    assert [(e.seq, e.kind) for e in events] == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]


# -- the outbox -------------------------------------------------------------------------------


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        pipeline="ci",
        status="running",
        created_at=iso(0),
        started_at=iso(0),
        heartbeat_at=iso(0),
        args={"word": "héllo"},
        host="laptop",
        pid=42,
    )


def test_writes_during_an_outage_are_staged_and_replayed_in_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mem = MemoryObjectStore("outage")
    outbox = tmp_path / "outbox.db"
    state = OutboxState(ObjectStoreState(mem), outbox, retry_seconds=0)
    run_id = new_run_id()
    written = _record(run_id)
    state.create_run(written)
    state.save_plan(run_id, {"jobs": ["a", "b"]})
    kinds = ["run_started"]
    state.append_events(run_id, [NewEvent("run_started", iso(0))])
    state.upsert_nodes([NodeRecord(run_id=run_id, node_id=n) for n in ("a", "b")])

    mem.fail_requests = True
    node_a = NodeRecord(run_id=run_id, node_id="a", status="success", output={"n": 1})
    state.upsert_nodes([node_a])
    for i in range(5):
        kinds.append(f"tick-{i}")
        state.append_events(run_id, [NewEvent(f"tick-{i}", iso(i))])
        state.heartbeat(run_id, iso(10 + i))
    node_b = NodeRecord(run_id=run_id, node_id="b", status="failed", error="boom")
    state.upsert_nodes([node_b])
    state.update_run(run_id, status="failed", reason="failed jobs: b", finished_at=iso(20))
    kinds.append("run_finished")
    state.append_events(run_id, [NewEvent("run_finished", iso(20), data={"status": "failed"})])
    # The run goes on: reads are answered from what this handle wrote.
    got = state.get_run(run_id)
    assert got is not None and (got.status, got.heartbeat_at) == ("failed", iso(14))
    assert [n.status for n in state.list_nodes(run_id)] == ["success", "failed"]
    # Logged (the CLI decides how a person sees it), never printed by the library.
    assert any(
        r.name == "sparkwing.state"
        and r.levelname == "WARNING"
        and "staging state writes" in r.message
        for r in caplog.records
    )
    assert outbox_summary(outbox)[0].pending > 0

    mem.fail_requests = False
    state.close()  # drains
    assert outbox_summary(outbox) == []
    fresh = ObjectStoreState(mem)
    expected = RunRecord(
        **{
            **written.to_dict(),
            "status": "failed",
            "reason": "failed jobs: b",
            "finished_at": iso(20),
            "heartbeat_at": iso(14),
        }
    )
    assert fresh.get_run(run_id) == expected
    assert fresh.list_nodes(run_id) == [node_a, node_b]
    assert fresh.get_plan(run_id) == {"jobs": ["a", "b"]}
    events = fresh.list_events(run_id)
    assert [e.kind for e in events] == kinds
    assert [e.seq for e in events] == list(range(1, len(kinds) + 1))


def test_a_run_staged_from_its_start_is_created_at_replay(tmp_path: Path) -> None:
    mem = MemoryObjectStore("down-from-start")
    mem.fail_requests = True
    state = OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db", retry_seconds=0)
    run_id = new_run_id()
    state.create_run(_record(run_id))
    assert state.append_events(run_id, [ev("a"), ev("b")]) == [1, 2]  # provisional
    assert state.append_events(run_id, [ev("c")]) == [3]
    state.update_run(run_id, status="success")
    state.close()  # still down: the writes stay staged for the next process
    assert outbox_summary(tmp_path / "outbox.db")[0].pending == 4

    mem.fail_requests = False
    later = OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db")
    assert later.list_runs().runs[0].run_id == run_id  # a read drains first
    got = later.get_run(run_id)
    assert got is not None and got.status == "success"
    assert [(e.seq, e.kind) for e in later.list_events(run_id)] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
    ]
    later.close()
    assert outbox_summary(tmp_path / "outbox.db") == []


def test_memo_during_an_outage_computes_locally(tmp_path: Path) -> None:
    mem = MemoryObjectStore(f"memo-outage-{os.urandom(3).hex()}")
    state = OutboxState(ObjectStoreState(mem), tmp_path / "outbox.db", retry_seconds=0)
    assert state.memo.acquire("k", "A", 60).state == "leader"  # also probes the store
    mem.fail_requests = True
    assert state.memo.acquire("other", "B", 60).state == "leader"
    assert state.memo.renew("k", "A", 60) is True
    state.memo.complete("k", "A", "memo/k")
    mem.fail_requests = False
    state.close()
    claim = ObjectStoreState(mem).memo.acquire("k", "C", 60)
    assert (claim.state, claim.result) == ("done", "memo/k")


def test_refusals_are_not_staged(tmp_path: Path) -> None:
    from sparkwing.errors import NotFoundError, PreconditionFailedError

    state = OutboxState(ObjectStoreState(MemoryObjectStore()), tmp_path / "outbox.db")
    run = make_run(0)
    state.create_run(run)
    with pytest.raises(PreconditionFailedError):
        state.create_run(run)
    with pytest.raises(NotFoundError):
        state.update_run(make_run(5).run_id, status="failed")
    with pytest.raises(StorageError, match="not JSON-serializable"):
        state.save_plan(run.run_id, {"x": object()})
    assert not (tmp_path / "outbox.db").exists()
