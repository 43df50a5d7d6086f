"""The StateStore conformance suite: every state backend subclasses StateConformance unchanged.

A subclass provides a ``store`` fixture (a fresh, empty store) and, when the backend can open
a second handle on the same storage, a ``store_factory`` fixture returning such handles (the
default hands back ``store`` itself). Everything here goes through the public interface only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sparkwing.errors import InvalidKeyError, NotFoundError, PreconditionFailedError
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import (
    MemoClaim,
    NewEvent,
    NodeRecord,
    RunRecord,
    StateStore,
)

from .gates_suite import GateConformance
from .jobqueue_suite import JobQueueConformance
from .queue_suite import QueueConformance

StoreFactory = Callable[[], StateStore]

_BASE_TIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BAD_IDS = ["a/b", "..", ".", "x/../y", "a\\b", "a\x00b", "a\nb", ""]

NESTED: dict[str, Any] = {
    "text": "héllo wörld ✓ 日本語 🚀",
    "list": [1, 2.5, None, True, False, "x", [], {}],
    "nested": {"deep": {"deeper": [{"k": "v"}, {"emoji": "🦀", "quote": 'a"b\\c'}]}},
    "int": 2**53,
    "neg": -7,
    "empty": "",
}


def iso(offset_seconds: float = 0) -> str:
    when = _BASE_TIME + timedelta(seconds=offset_seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_id_at(offset_seconds: int) -> str:
    """A run id whose creation second is ``offset_seconds`` after a fixed base time."""
    return new_run_id(_BASE_TIME + timedelta(seconds=offset_seconds))


def make_run(offset: int = 0, pipeline: str = "build", **fields: Any) -> RunRecord:
    fields.setdefault("created_at", iso(offset))
    return RunRecord(run_id=run_id_at(offset), pipeline=pipeline, **fields)


def ev(kind: str, node_id: str | None = None, **data: Any) -> NewEvent:
    return NewEvent(kind=kind, ts=iso(), node_id=node_id, data=data)


class StateConformance(GateConformance, QueueConformance, JobQueueConformance):
    """Behaviour every StateStore must show; subclasses supply the ``store`` fixture."""

    @pytest.fixture
    def store_factory(self, store: StateStore) -> StoreFactory:
        return lambda: store

    # -- runs -------------------------------------------------------------------------
    def test_create_and_get_run_round_trips_every_field(self, store: StateStore) -> None:
        run = RunRecord(
            run_id=run_id_at(0),
            pipeline="deploy",
            status="running",
            reason="manual",
            created_at=iso(0),
            started_at=iso(1),
            finished_at=None,
            heartbeat_at=iso(2),
            args=NESTED,
            git={"sha": "abc123", "branch": "main", "dirty": False},
            trigger="schedule",
            profile="ci",
            profile_source="SPARKWING_PROFILE",
            surfaces={"state": {"type": "sqlite", "path": "/tmp/ß.db"}},
            host="runner-1",
            pid=4242,
            extra={"note": "ünïcode", "n": [1, {"x": None}]},
        )
        store.create_run(run)
        assert store.get_run(run.run_id) == run

    def test_get_unknown_run_is_none(self, store: StateStore) -> None:
        assert store.get_run(run_id_at(0)) is None

    def test_create_duplicate_run_fails_and_keeps_original(self, store: StateStore) -> None:
        run = make_run(0, pipeline="first")
        store.create_run(run)
        with pytest.raises(PreconditionFailedError):
            store.create_run(RunRecord(run_id=run.run_id, pipeline="second"))
        got = store.get_run(run.run_id)
        assert got is not None and got.pipeline == "first"

    def test_update_run_sets_only_given_fields(self, store: StateStore) -> None:
        run = make_run(0, args={"a": 1}, extra={"keep": True})
        store.create_run(run)
        store.update_run(run.run_id, status="running", started_at=iso(5))
        store.update_run(run.run_id, reason="boom ✗", extra={"k": ["v", {"w": 1}]})
        got = store.get_run(run.run_id)
        assert got is not None
        assert got.status == "running"
        assert got.started_at == iso(5)
        assert got.reason == "boom ✗"
        assert got.extra == {"k": ["v", {"w": 1}]}
        assert got.args == {"a": 1}
        assert got.pipeline == run.pipeline
        assert got.created_at == run.created_at
        store.update_run(run.run_id, status="success", finished_at=iso(9), reason=None)
        got = store.get_run(run.run_id)
        assert got is not None
        assert (got.status, got.finished_at, got.reason) == ("success", iso(9), None)
        assert got.extra == {"k": ["v", {"w": 1}]}

    def test_update_unknown_run_raises_not_found(self, store: StateStore) -> None:
        with pytest.raises(NotFoundError):
            store.update_run(run_id_at(0), status="failed")
        with pytest.raises(NotFoundError):
            store.update_run(run_id_at(0), reason="x")
        assert store.get_run(run_id_at(0)) is None

    def test_heartbeat_sets_heartbeat_at(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        store.heartbeat(run.run_id, iso(30))
        store.heartbeat(run.run_id, iso(60))
        got = store.get_run(run.run_id)
        assert got is not None
        assert got.heartbeat_at == iso(60)
        assert got.status == run.status

    def test_times_are_stored_as_given(self, store: StateStore) -> None:
        run = make_run(0, created_at="2026-11-27T03:26:17.123456Z")
        store.create_run(run)
        store.update_run(run.run_id, started_at="2026-11-27T03:26:18.000001Z")
        got = store.get_run(run.run_id)
        assert got is not None
        assert got.created_at == "2026-11-27T03:26:17.123456Z"
        assert got.started_at == "2026-11-27T03:26:18.000001Z"

    # -- list_runs --------------------------------------------------------------------
    def _seed(self, store: StateStore, count: int) -> list[RunRecord]:
        runs = []
        for i in range(count):
            run = make_run(
                i * 10,
                pipeline="build" if i % 2 == 0 else "deploy",
                status="success" if i % 3 == 0 else "failed",
            )
            runs.append(run)
        # Insert out of order: listing order must come from the ids, not insertion order.
        for run in runs[::2] + runs[1::2]:
            store.create_run(run)
        return runs

    def test_list_runs_newest_first(self, store: StateStore) -> None:
        runs = self._seed(store, 6)
        page = store.list_runs()
        assert [r.run_id for r in page.runs] == [r.run_id for r in reversed(runs)]
        assert page.next_cursor is None
        assert page.runs[0] == runs[-1]

    def test_list_runs_empty(self, store: StateStore) -> None:
        page = store.list_runs()
        assert page.runs == []
        assert page.next_cursor is None

    def test_list_runs_filters(self, store: StateStore) -> None:
        runs = self._seed(store, 12)
        newest_first = list(reversed(runs))

        def ids(**kw: Any) -> list[str]:
            return [r.run_id for r in store.list_runs(**kw).runs]

        assert ids(pipeline="deploy") == [r.run_id for r in newest_first if r.pipeline == "deploy"]
        assert ids(status="success") == [r.run_id for r in newest_first if r.status == "success"]
        assert ids(pipeline="build", status="failed") == [
            r.run_id for r in newest_first if r.pipeline == "build" and r.status == "failed"
        ]
        # since is inclusive of a run created exactly at that instant
        assert ids(since=iso(60)) == [r.run_id for r in newest_first if r.created_at >= iso(60)]
        assert len(ids(since=iso(60))) == 6
        assert ids(since=iso(60), pipeline="build") == [
            r.run_id for r in newest_first if r.created_at >= iso(60) and r.pipeline == "build"
        ]
        assert ids(pipeline="nope") == []
        assert ids(since=iso(10_000)) == []

    def test_list_runs_status_filter_follows_updates(self, store: StateStore) -> None:
        run = make_run(0, status="running")
        store.create_run(run)
        assert [r.run_id for r in store.list_runs(status="running").runs] == [run.run_id]
        store.update_run(run.run_id, status="cancelled")
        assert store.list_runs(status="running").runs == []
        assert [r.run_id for r in store.list_runs(status="cancelled").runs] == [run.run_id]

    def test_list_runs_limit(self, store: StateStore) -> None:
        runs = self._seed(store, 5)
        page = store.list_runs(limit=2)
        assert [r.run_id for r in page.runs] == [runs[4].run_id, runs[3].run_id]
        assert page.next_cursor is not None

    def _collect(self, store: StateStore, limit: int, **filters: Any) -> list[list[str]]:
        pages: list[list[str]] = []
        cursor: str | None = None
        for _ in range(100):
            page = store.list_runs(limit=limit, cursor=cursor, **filters)
            assert len(page.runs) <= limit
            pages.append([r.run_id for r in page.runs])
            cursor = page.next_cursor
            if cursor is None:
                return pages
            assert isinstance(cursor, str)
        raise AssertionError("paging did not terminate")

    def test_list_runs_cursor_paging_has_no_duplicates_or_gaps(self, store: StateStore) -> None:
        runs = self._seed(store, 7)
        pages = self._collect(store, 3)
        assert len(pages[0]) == 3
        flat = [rid for page in pages for rid in page]
        assert flat == [r.run_id for r in reversed(runs)]
        assert len(set(flat)) == len(flat)

    def test_list_runs_cursor_paging_with_filters(self, store: StateStore) -> None:
        runs = self._seed(store, 11)
        pages = self._collect(store, 2, pipeline="build")
        flat = [rid for page in pages for rid in page]
        assert flat == [r.run_id for r in reversed(runs) if r.pipeline == "build"]
        pages = self._collect(store, 1, status="success", since=iso(30))
        flat = [rid for page in pages for rid in page]
        expected = [
            r.run_id for r in reversed(runs) if r.status == "success" and r.created_at >= iso(30)
        ]
        assert flat == expected

    def test_list_runs_cursor_is_stable_when_new_runs_arrive(self, store: StateStore) -> None:
        runs = self._seed(store, 6)
        first = store.list_runs(limit=3)
        store.create_run(make_run(1000))  # newer than everything listed so far
        assert first.next_cursor is not None
        second = store.list_runs(limit=3, cursor=first.next_cursor)
        flat = [r.run_id for r in first.runs + second.runs]
        assert flat == [r.run_id for r in reversed(runs)]

    def test_list_runs_many(self, store: StateStore) -> None:
        runs = [make_run(i) for i in range(120)]
        for run in runs:
            store.create_run(run)
        assert [r.run_id for r in store.list_runs().runs] == [
            r.run_id for r in reversed(runs[-50:])
        ]
        flat = [rid for page in self._collect(store, 25) for rid in page]
        assert flat == [r.run_id for r in reversed(runs)]

    # -- plans ------------------------------------------------------------------------
    def test_plan_round_trip_and_replace(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        assert store.get_plan(run.run_id) is None
        plan: dict[str, Any] = {
            "jobs": [{"id": "build", "needs": []}, {"id": "test", "needs": ["build"]}]
        }
        plan["meta"] = NESTED
        store.save_plan(run.run_id, plan)
        assert store.get_plan(run.run_id) == plan
        store.save_plan(run.run_id, {"jobs": []})
        assert store.get_plan(run.run_id) == {"jobs": []}

    def test_plans_are_per_run(self, store: StateStore) -> None:
        a, b = make_run(0), make_run(1)
        store.create_run(a)
        store.create_run(b)
        store.save_plan(a.run_id, {"run": "a"})
        assert store.get_plan(b.run_id) is None
        store.save_plan(b.run_id, {"run": "b"})
        assert store.get_plan(a.run_id) == {"run": "a"}

    # -- nodes ------------------------------------------------------------------------
    def test_upsert_nodes_insert_and_list_in_order(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        # Names chosen so neither alphabetical nor reverse order matches insertion order.
        names = ["zeta", "alpha", "mu", "beta", "omega", "gamma"]
        nodes = [
            NodeRecord(run_id=run.run_id, node_id=n, needs=names[:i]) for i, n in enumerate(names)
        ]
        store.upsert_nodes(nodes[:3])
        store.upsert_nodes(nodes[3:])
        assert store.list_nodes(run.run_id) == nodes

    def test_upsert_nodes_replaces_whole_record_and_keeps_order(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        first = [
            NodeRecord(run_id=run.run_id, node_id="b", error="old", extra={"x": 1}),
            NodeRecord(run_id=run.run_id, node_id="a"),
            NodeRecord(run_id=run.run_id, node_id="c"),
        ]
        store.upsert_nodes(first)
        replaced = NodeRecord(
            run_id=run.run_id,
            node_id="b",
            status="success",
            attempt=2,
            needs=["a"],
            started_at=iso(1),
            finished_at=iso(2),
            output=NESTED,
            memo_key="build/abc",
            artifacts="sha256:ff",
        )
        added = NodeRecord(run_id=run.run_id, node_id="d", status="running")
        store.upsert_nodes([added, replaced])
        got = store.list_nodes(run.run_id)
        assert [n.node_id for n in got] == ["b", "a", "c", "d"]
        assert got[0] == replaced
        assert got[0].error is None and got[0].extra == {}
        assert got[3] == added

    def test_upsert_nodes_many_keeps_plan_order(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        ids = [f"job-{(i * 37) % 200:03d}" for i in range(200)]
        store.upsert_nodes([NodeRecord(run_id=run.run_id, node_id=n) for n in ids])
        for n in ids[::7]:
            store.upsert_nodes([NodeRecord(run_id=run.run_id, node_id=n, status="success")])
        got = store.list_nodes(run.run_id)
        assert [n.node_id for n in got] == ids
        done = {n.node_id for n in got if n.status == "success"}
        assert done == set(ids[::7])

    def test_nodes_are_per_run(self, store: StateStore) -> None:
        a, b = make_run(0), make_run(1)
        store.create_run(a)
        store.create_run(b)
        store.upsert_nodes([NodeRecord(run_id=a.run_id, node_id="build", status="failed")])
        store.upsert_nodes([NodeRecord(run_id=b.run_id, node_id="build", status="success")])
        assert [n.status for n in store.list_nodes(a.run_id)] == ["failed"]
        assert [n.status for n in store.list_nodes(b.run_id)] == ["success"]
        assert store.list_nodes(run_id_at(99)) == []

    def test_upsert_no_nodes_is_a_no_op(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        store.upsert_nodes([])
        assert store.list_nodes(run.run_id) == []

    # -- events -----------------------------------------------------------------------
    def test_event_seqs_start_at_one_and_are_gap_free(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        assert store.append_events(run.run_id, [ev("run_started")]) == [1]
        assert store.append_events(run.run_id, [ev("a"), ev("b"), ev("c")]) == [2, 3, 4]
        assert store.append_events(run.run_id, []) == []
        assert store.append_events(run.run_id, [ev("d")]) == [5]
        events = store.list_events(run.run_id)
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert [e.kind for e in events] == ["run_started", "a", "b", "c", "d"]

    def test_event_seqs_are_per_run(self, store: StateStore) -> None:
        a, b = make_run(0), make_run(1)
        store.create_run(a)
        store.create_run(b)
        assert store.append_events(a.run_id, [ev("x"), ev("y")]) == [1, 2]
        assert store.append_events(b.run_id, [ev("x")]) == [1]
        assert store.append_events(a.run_id, [ev("z")]) == [3]
        assert [e.seq for e in store.list_events(b.run_id)] == [1]
        assert all(e.run_id == a.run_id for e in store.list_events(a.run_id))
        assert store.list_events(run_id_at(99)) == []

    def test_event_fields_round_trip(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        new = NewEvent(kind="node_finished", ts=iso(3), node_id="build", data=NESTED)
        store.append_events(run.run_id, [new, NewEvent(kind="bare", ts=iso(4))])
        first, second = store.list_events(run.run_id)
        assert (first.run_id, first.seq, first.ts, first.kind) == (
            run.run_id,
            1,
            iso(3),
            "node_finished",
        )
        assert first.node_id == "build"
        assert first.data == NESTED
        assert (second.node_id, second.data, second.ts) == (None, {}, iso(4))

    def test_list_events_after_seq_and_limit(self, store: StateStore) -> None:
        run = make_run(0)
        store.create_run(run)
        store.append_events(run.run_id, [ev(f"e{i}", i=i) for i in range(1, 11)])
        assert [e.seq for e in store.list_events(run.run_id, after_seq=7)] == [8, 9, 10]
        assert [e.seq for e in store.list_events(run.run_id, after_seq=2, limit=3)] == [3, 4, 5]
        assert [e.seq for e in store.list_events(run.run_id, limit=2)] == [1, 2]
        assert store.list_events(run.run_id, after_seq=10) == []
        assert store.list_events(run.run_id, after_seq=50) == []
        assert [e.data["i"] for e in store.list_events(run.run_id, after_seq=9)] == [10]

    def test_concurrent_appends_get_unique_gap_free_seqs(
        self, store: StateStore, store_factory: StoreFactory
    ) -> None:
        run = make_run(0)
        store.create_run(run)
        workers, rounds = 4, 15
        handles = [store_factory() for _ in range(workers)]
        barrier = threading.Barrier(workers)

        def work(w: int) -> list[list[int]]:
            handle = handles[w]
            barrier.wait()
            got = []
            for r in range(rounds):
                batch = [ev("tick", node_id=f"w{w}", w=w, r=r, k=k) for k in range(1 + r % 3)]
                got.append(handle.append_events(run.run_id, batch))
            return got

        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(work, range(workers)))
        all_seqs = [seq for per_worker in results for batch in per_worker for seq in batch]
        total = workers * sum(1 + r % 3 for r in range(rounds))
        assert sorted(all_seqs) == list(range(1, total + 1))
        for per_worker in results:
            for batch in per_worker:
                assert batch == list(range(batch[0], batch[0] + len(batch)))
            firsts = [batch[0] for batch in per_worker]
            assert firsts == sorted(firsts)
        events = store.list_events(run.run_id)
        assert [e.seq for e in events] == list(range(1, total + 1))
        # Each returned seq names the event that caller appended.
        by_seq = {e.seq: e for e in events}
        for w, per_worker in enumerate(results):
            for r, batch in enumerate(per_worker):
                for k, seq in enumerate(batch):
                    assert by_seq[seq].data == {"w": w, "r": r, "k": k}

    def test_concurrent_create_same_run_has_one_winner(
        self, store: StateStore, store_factory: StoreFactory
    ) -> None:
        workers = 4
        handles = [store_factory() for _ in range(workers)]
        barrier = threading.Barrier(workers)
        run_id = run_id_at(0)

        def work(w: int) -> str:
            barrier.wait()
            try:
                handles[w].create_run(RunRecord(run_id=run_id, pipeline=f"p{w}"))
            except PreconditionFailedError:
                return "lost"
            return f"p{w}"

        with ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(work, range(workers)))
        winners = [o for o in outcomes if o != "lost"]
        assert len(winners) == 1
        got = store.get_run(run_id)
        assert got is not None and got.pipeline == winners[0]

    def test_writes_are_visible_to_other_handles(
        self, store: StateStore, store_factory: StoreFactory
    ) -> None:
        other = store_factory()
        run = make_run(0)
        store.create_run(run)
        store.upsert_nodes([NodeRecord(run_id=run.run_id, node_id="n")])
        store.append_events(run.run_id, [ev("x")])
        assert other.get_run(run.run_id) == run
        assert [n.node_id for n in other.list_nodes(run.run_id)] == ["n"]
        assert other.append_events(run.run_id, [ev("y")]) == [2]
        other.update_run(run.run_id, status="success")
        got = store.get_run(run.run_id)
        assert got is not None and got.status == "success"

    # -- memo -------------------------------------------------------------------------
    def test_memo_first_acquirer_leads_others_see_held(self, store: StateStore) -> None:
        lead = store.memo.acquire("build/abc", "A", 60)
        assert lead.state == "leader"
        assert lead.holder == "A"
        assert lead.expires_at is not None and lead.expires_at > time.time()
        held = store.memo.acquire("build/abc", "B", 60)
        assert held.state == "held"
        assert held.holder == "A"
        assert held.result is None
        # a different key is independent
        assert store.memo.acquire("build/other", "B", 60).state == "leader"

    def test_memo_same_holder_reacquires(self, store: StateStore) -> None:
        assert store.memo.acquire("k", "A", 60).state == "leader"
        again = store.memo.acquire("k", "A", 60)
        assert again.state == "leader" and again.holder == "A"
        assert store.memo.acquire("k", "B", 60).state == "held"

    def test_memo_renew(self, store: StateStore) -> None:
        store.memo.acquire("k", "A", 60)
        assert store.memo.renew("k", "A", 60) is True
        assert store.memo.renew("k", "B", 60) is False
        assert store.memo.renew("absent", "A", 60) is False
        assert store.memo.acquire("k", "B", 60).state == "held"

    def test_memo_complete_makes_key_done(self, store: StateStore) -> None:
        store.memo.acquire("k", "A", 60)
        store.memo.complete("k", "A", "artifacts/manifests/ff00")
        for who in ("B", "A"):
            claim = store.memo.acquire("k", who, 60)
            assert claim.state == "done"
            assert claim.result == "artifacts/manifests/ff00"
        assert store.memo.renew("k", "A", 60) is False

    def test_memo_release_lets_a_waiter_lead(self, store: StateStore) -> None:
        store.memo.acquire("k", "A", 60)
        assert store.memo.acquire("k", "B", 60).state == "held"
        store.memo.release("k", "A")
        claim = store.memo.acquire("k", "B", 60)
        assert claim.state == "leader" and claim.holder == "B"
        assert store.memo.acquire("k", "A", 60).state == "held"

    def test_memo_release_by_non_holder_does_nothing(self, store: StateStore) -> None:
        store.memo.acquire("k", "A", 60)
        store.memo.release("k", "B")
        claim = store.memo.acquire("k", "C", 60)
        assert claim.state == "held" and claim.holder == "A"

    def test_memo_expired_lease_can_be_taken_over(self, store: StateStore) -> None:
        assert store.memo.acquire("k", "A", 0.05).state == "leader"
        time.sleep(0.15)
        claim = store.memo.acquire("k", "B", 60)
        assert claim.state == "leader" and claim.holder == "B"
        assert store.memo.renew("k", "A", 60) is False
        assert store.memo.acquire("k", "A", 60).state == "held"

    def test_memo_forget_allows_recompute(self, store: StateStore) -> None:
        store.memo.acquire("k", "A", 60)
        store.memo.complete("k", "A", "r1")
        store.memo.forget("k")
        claim = store.memo.acquire("k", "B", 60)
        assert claim.state == "leader" and claim.holder == "B"
        store.memo.complete("k", "B", "r2")
        done = store.memo.acquire("k", "C", 60)
        assert (done.state, done.result) == ("done", "r2")
        store.memo.forget("absent")  # forgetting nothing is fine

    def test_memo_concurrent_acquire_has_one_leader(
        self, store: StateStore, store_factory: StoreFactory
    ) -> None:
        workers = 6
        handles = [store_factory() for _ in range(workers)]
        barrier = threading.Barrier(workers)

        def work(w: int) -> MemoClaim:
            barrier.wait()
            return handles[w].memo.acquire("race/key", f"h{w}", 60)

        with ThreadPoolExecutor(workers) as pool:
            claims = list(pool.map(work, range(workers)))
        leaders = [c for c in claims if c.state == "leader"]
        assert len(leaders) == 1
        assert all(
            c.state == "held" and c.holder == leaders[0].holder
            for c in claims
            if c.state != "leader"
        )

    # -- validation -------------------------------------------------------------------
    @pytest.mark.parametrize("bad", BAD_IDS)
    def test_invalid_run_ids_rejected(self, store: StateStore, bad: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.create_run(RunRecord(run_id=bad, pipeline="p")),
            lambda: store.get_run(bad),
            lambda: store.update_run(bad, status="failed"),
            lambda: store.heartbeat(bad, iso()),
            lambda: store.save_plan(bad, {}),
            lambda: store.get_plan(bad),
            lambda: store.upsert_nodes([NodeRecord(run_id=bad, node_id="n")]),
            lambda: store.list_nodes(bad),
            lambda: store.append_events(bad, [ev("x")]),
            lambda: store.list_events(bad),
        ]
        for call in calls:
            with pytest.raises(InvalidKeyError):
                call()
        assert store.list_runs().runs == []

    @pytest.mark.parametrize("bad", BAD_IDS)
    def test_invalid_node_ids_rejected_without_partial_writes(
        self, store: StateStore, bad: str
    ) -> None:
        run = make_run(0)
        store.create_run(run)
        good = NodeRecord(run_id=run.run_id, node_id="good")
        with pytest.raises(InvalidKeyError):
            store.upsert_nodes([good, NodeRecord(run_id=run.run_id, node_id=bad)])
        assert store.list_nodes(run.run_id) == []

    @pytest.mark.parametrize("bad", ["../x", "a/../b", "/abs", "a\x00", ""])
    def test_invalid_memo_keys_rejected(self, store: StateStore, bad: str) -> None:
        with pytest.raises(InvalidKeyError):
            store.memo.acquire(bad, "A", 60)
