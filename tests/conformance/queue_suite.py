"""The run queue (submit, claim, renew, release): part of the state conformance suite.

The queue is an optional part: a store without it has ``queue`` None (callers refuse with
a NotSupportedError naming the run queue), and the cases below then skip.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sparkwing.errors import InvalidKeyError, NotSupportedError, PreconditionFailedError
from sparkwing.ids import new_run_id
from sparkwing.status import RUN_STATUSES
from sparkwing.surfaces.state.base import RunRecord, StateStore, require_queue

_BASE = datetime(2026, 5, 1, 9, 0, 0, tzinfo=UTC)

SPEC: dict[str, Any] = {
    "root": "/srv/ß project",
    "pipeline": "build",
    "args": ["--name", "Ada ✓", "--times=2"],
    "profile": "ci",
    "nested": {"list": [1, None, True, {"k": "v"}]},
}


def queued_run(offset: int, pipeline: str = "build") -> RunRecord:
    moment = _BASE + timedelta(seconds=offset)
    return RunRecord(
        run_id=new_run_id(moment),
        pipeline=pipeline,
        status="queued",
        created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        trigger="queue",
        extra={"submitted_by": "tester"},
    )


class QueueConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    def _require_queue(self, store: StateStore) -> None:
        if store.queue is not None:
            assert store.queue.claim("probe", 1) is None  # an empty store has nothing to claim
            return
        with pytest.raises(NotSupportedError, match="run queue"):
            require_queue(store)
        pytest.skip("this store does not support the run queue (checked the refusal)")

    def test_queued_is_a_run_status(self) -> None:
        assert "queued" in RUN_STATUSES

    def test_submit_then_claim_round_trips_the_spec(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, SPEC)
        got = store.get_run(run.run_id)
        assert got is not None and got.status == "queued" and got.extra == run.extra
        assert [r.run_id for r in store.list_runs(status="queued").runs] == [run.run_id]
        claim = store.queue.claim("worker-a", 60)
        assert claim is not None
        assert claim.run == got
        assert claim.spec == SPEC
        assert (claim.worker, claim.attempt, claim.previous_worker) == ("worker-a", 1, None)
        assert claim.expires_at > time.time()
        assert store.queue.claim("worker-b", 60) is None
        # Claiming does not start the run: that is the runner's job.
        again = store.get_run(run.run_id)
        assert again is not None and again.status == "queued"

    def test_claims_come_oldest_first(self, store: StateStore) -> None:
        self._require_queue(store)
        runs = [queued_run(i * 10) for i in range(4)]
        for run in (runs[2], runs[0], runs[3], runs[1]):
            store.queue.submit(run, {"n": run.run_id})
        order = []
        for _ in runs:
            claim = store.queue.claim("w", 60)
            assert claim is not None
            assert claim.spec == {"n": claim.run.run_id}
            order.append(claim.run.run_id)
        assert order == [r.run_id for r in runs]
        assert store.queue.claim("w", 60) is None

    def test_submit_refuses_an_existing_id(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, SPEC)
        with pytest.raises(PreconditionFailedError):
            store.queue.submit(RunRecord(run_id=run.run_id, pipeline="other"), {})
        started = queued_run(5)
        store.create_run(RunRecord(run_id=started.run_id, pipeline="p", status="running"))
        with pytest.raises(PreconditionFailedError):
            store.queue.submit(started, {})
        claim = store.queue.claim("w", 60)
        assert claim is not None and claim.run.run_id == run.run_id and claim.spec == SPEC
        assert store.queue.claim("w", 60) is None

    def test_renew_and_release_only_by_the_holder(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, {})
        assert store.queue.claim("a", 60) is not None
        assert store.queue.renew(run.run_id, "a", 60) is True
        assert store.queue.renew(run.run_id, "b", 60) is False
        assert store.queue.release(run.run_id, "b") is False
        assert store.queue.release(run.run_id, "a") is True
        assert store.queue.renew(run.run_id, "a", 60) is False
        assert store.queue.release(run.run_id, "a") is False
        assert store.queue.claim("b", 60) is None  # done: never claimed again

    def test_requeue_makes_the_run_claimable_again(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, SPEC)
        assert store.queue.claim("a", 60) is not None
        assert store.queue.release(run.run_id, "a", requeue=True) is True
        claim = store.queue.claim("b", 60)
        assert claim is not None and claim.run.run_id == run.run_id
        assert (claim.attempt, claim.previous_worker, claim.spec) == (2, "a", SPEC)

    def test_cancel_queued_only_while_still_queued(self, store: StateStore) -> None:
        self._require_queue(store)
        waiting, taken = queued_run(0), queued_run(10)
        store.queue.submit(waiting, SPEC)
        store.queue.submit(taken, SPEC)
        at = "2026-11-27T05:00:00.000000Z"
        reason = "cancelled by ann while queued"
        assert store.queue.cancel_queued(waiting.run_id, reason, at) is True
        got = store.get_run(waiting.run_id)
        assert got is not None
        assert (got.status, got.reason, got.finished_at) == (
            "cancelled",
            "cancelled by ann while queued",
            at,
        )
        assert store.queue.cancel_queued(waiting.run_id, "again", at) is False
        claim = store.queue.claim("w", 60)  # the cancelled run is never handed out
        assert claim is not None and claim.run.run_id == taken.run_id
        assert store.queue.cancel_queued(taken.run_id, "too late", at) is False  # a worker holds it
        again = store.get_run(taken.run_id)
        assert again is not None and again.status == "queued"
        assert store.queue.cancel_queued("run-20261127-050000-zzzz", "unknown", at) is False
        assert store.queue.claim("w2", 60) is None

    def test_a_live_claim_is_not_taken(self, store: StateStore) -> None:
        self._require_queue(store)
        store.queue.submit(queued_run(0), {})
        assert store.queue.claim("a", 60) is not None
        assert store.queue.claim("b", 60) is None

    def test_an_expired_claim_is_reclaimed(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, SPEC)
        first = store.queue.claim("a", 0.05)
        assert first is not None and first.attempt == 1
        time.sleep(0.15)
        second = store.queue.claim("b", 60)
        assert second is not None and second.run.run_id == run.run_id
        assert (second.attempt, second.previous_worker, second.spec) == (2, "a", SPEC)
        assert store.queue.renew(run.run_id, "a", 60) is False
        assert store.queue.release(run.run_id, "a") is False
        assert store.queue.claim("c", 60) is None
        assert store.queue.release(run.run_id, "b") is True

    def test_creating_a_queued_run_starts_it_in_place(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, SPEC)
        start = RunRecord(
            run_id=run.run_id,
            pipeline="build",
            status="running",
            created_at="2026-05-01T09:00:07.000000Z",
            started_at="2026-05-01T09:00:07.000000Z",
            pid=4242,
            extra={"jobs": 3},
        )
        store.create_run(start)
        got = store.get_run(run.run_id)
        assert got is not None
        assert (got.status, got.started_at, got.pid) == ("running", start.started_at, 4242)
        assert got.created_at == run.created_at  # submission time stays the creation time
        assert got.extra == {"submitted_by": "tester", "jobs": 3}
        with pytest.raises(PreconditionFailedError):
            store.create_run(start)  # no longer queued: an ordinary duplicate

    def test_concurrent_workers_claim_each_run_once(
        self, store: StateStore, store_factory: Any
    ) -> None:
        self._require_queue(store)
        runs = [queued_run(i) for i in range(12)]
        for run in runs:
            store.queue.submit(run, {"id": run.run_id})
        workers = 4
        handles = [store_factory() for _ in range(workers)]
        barrier = threading.Barrier(workers)

        def work(w: int) -> list[str]:
            barrier.wait()
            got = []
            while (claim := handles[w].queue.claim(f"w{w}", 60)) is not None:
                assert claim.spec == {"id": claim.run.run_id}
                got.append(claim.run.run_id)
            return got

        with ThreadPoolExecutor(workers) as pool:
            claimed = [rid for got in pool.map(work, range(workers)) for rid in got]
        assert sorted(claimed) == sorted(r.run_id for r in runs)

    @pytest.mark.parametrize("bad", ["a/b", "..", "", "a\x00b"])
    def test_queue_rejects_invalid_run_ids(self, store: StateStore, bad: str) -> None:
        self._require_queue(store)
        with pytest.raises(InvalidKeyError):
            store.queue.submit(RunRecord(run_id=bad, pipeline="p"), {})
        with pytest.raises(InvalidKeyError):
            store.queue.renew(bad, "w", 60)
        with pytest.raises(InvalidKeyError):
            store.queue.release(bad, "w")
        assert store.queue.claim("w", 60) is None

    def test_a_run_goes_only_to_a_worker_with_all_its_labels(self, store: StateStore) -> None:
        self._require_queue(store)
        gpu, both, plain = queued_run(0), queued_run(10), queued_run(20)
        store.queue.submit(gpu, {**SPEC, "labels": ["gpu"]})
        store.queue.submit(both, {**SPEC, "labels": ["linux", "gpu"]})
        store.queue.submit(plain, {**SPEC, "labels": []})
        # The oldest runs need labels this worker lacks: it gets the one it can take.
        claim = store.queue.claim("cpu", 60, labels=["linux"])
        assert claim is not None and claim.run.run_id == plain.run_id
        assert store.queue.claim("cpu", 60, labels=["linux"]) is None
        assert store.queue.claim("bare", 60) is None
        claim = store.queue.claim("gpu-only", 60, labels=["gpu"])
        assert claim is not None and claim.run.run_id == gpu.run_id
        assert claim.spec["labels"] == ["gpu"]
        assert store.queue.claim("gpu-only", 60, labels=["gpu"]) is None
        claim = store.queue.claim("big", 60, labels=["arm64", "gpu", "linux"])
        assert claim is not None and claim.run.run_id == both.run_id

    def test_an_expired_claim_goes_only_to_a_worker_with_the_labels(
        self, store: StateStore
    ) -> None:
        self._require_queue(store)
        run = queued_run(0)
        store.queue.submit(run, {**SPEC, "labels": ["gpu"]})
        assert store.queue.claim("a", 0.05, labels=["gpu"]) is not None
        time.sleep(0.15)
        assert store.queue.claim("b", 60, labels=["linux"]) is None
        again = store.queue.claim("c", 60, labels=["gpu"])
        assert again is not None and (again.attempt, again.previous_worker) == (2, "a")

    @pytest.mark.parametrize("bad", ["a b", "a/b", "", "-x"])
    def test_labels_are_checked(self, store: StateStore, bad: str) -> None:
        self._require_queue(store)
        with pytest.raises(InvalidKeyError):
            store.queue.claim("w", 60, labels=[bad])
        with pytest.raises(InvalidKeyError):
            store.queue.submit(queued_run(0), {"labels": [bad]})
        assert store.queue.claim("w", 60) is None

    def test_starting_a_queued_run_keeps_its_source(self, store: StateStore) -> None:
        self._require_queue(store)
        run = queued_run(0)
        run.source = {"kind": "git", "url": "file:///srv/r.git", "ref": "main", "sha": "a" * 40}
        store.queue.submit(run, SPEC)
        store.create_run(RunRecord(run_id=run.run_id, pipeline="build", status="running"))
        got = store.get_run(run.run_id)
        assert got is not None and (got.status, got.source) == ("running", run.source)

    def test_entries_and_spec_of_read_the_queue_back(self, store: StateStore) -> None:
        self._require_queue(store)
        queue = store.queue
        assert queue is not None
        try:
            assert queue.entries() == []
        except NotSupportedError as exc:
            assert "cannot list" in str(exc)
            pytest.skip("this queue cannot list its entries (checked the refusal)")
        first, second = queued_run(1), queued_run(2)
        queue.submit(first, SPEC)
        queue.submit(second, {"id": 2})
        waiting = queue.entries()
        assert [(e.run_id, e.state, e.worker, e.attempts) for e in waiting] == [
            (first.run_id, "queued", None, 0),
            (second.run_id, "queued", None, 0),
        ]
        assert [e.run_id for e in queue.entries(limit=1)] == [first.run_id]
        claim = queue.claim("w1", 60)
        assert claim is not None and claim.run.run_id == first.run_id
        held = {e.run_id: e for e in queue.entries()}
        assert (held[first.run_id].state, held[first.run_id].worker) == ("claimed", "w1")
        assert held[first.run_id].attempts == 1
        assert (held[first.run_id].lease_expires or 0) > time.time()
        assert queue.release(first.run_id, "w1")
        assert [e.run_id for e in queue.entries()] == [second.run_id]
        # The spec stays readable after the run left the queue (a retry reuses it).
        assert queue.spec_of(first.run_id) == SPEC
        assert queue.spec_of(second.run_id) == {"id": 2}
        assert queue.spec_of(new_run_id()) is None
        with pytest.raises(InvalidKeyError):
            queue.spec_of("a/b")
