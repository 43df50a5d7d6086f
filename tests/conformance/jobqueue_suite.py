"""The job queue (enqueue, claim by labels, renew, complete, cancel, reclaim): part of the
state conformance suite.

An optional part: a store without it has ``jobs`` None (callers refuse with a
NotSupportedError naming dispatch), and the cases below then skip.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sparkwing.errors import InvalidKeyError, NotSupportedError, PreconditionFailedError
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import StateStore
from sparkwing.surfaces.state.jobqueue import (
    JobQueue,
    JobRef,
    JobResult,
    QueuedJob,
    require_jobs,
)

SPEC: dict[str, Any] = {
    "version": 1,
    "bundle": {"key": "k" * 64},
    "inputs": {"outputs": {"build": {"n": 1, "s": "Ada ✓"}}, "consumed": {"build": None}},
}


def _job(run_id: str, node: str, attempt: int = 1, labels: tuple[str, ...] = ()) -> QueuedJob:
    return QueuedJob(JobRef(run_id, node, attempt), list(labels), SPEC)


class JobQueueConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    def _jobs(self, store: StateStore) -> JobQueue:
        if store.jobs is not None:
            assert store.jobs.claim("probe", [], 1) is None  # an empty store has nothing
            return store.jobs
        with pytest.raises(NotSupportedError, match="dispatching jobs"):
            require_jobs(store)
        pytest.skip("this store does not support the job queue (checked the refusal)")

    def test_enqueue_claim_complete_round_trip(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "test", labels=("gpu",)))
        [entry] = jobs.entries(run_id)
        assert (entry.state, entry.labels, entry.worker, entry.result) == (
            "queued",
            ["gpu"],
            None,
            None,
        )
        claim = jobs.claim("w1", ["gpu", "linux"], 60)
        assert claim is not None
        assert claim.ref == JobRef(run_id, "test", 1)
        assert (claim.spec, claim.worker, claim.claim, claim.previous_worker) == (
            SPEC,
            "w1",
            1,
            None,
        )
        assert claim.expires_at > time.time() - 5
        assert jobs.claim("w2", ["gpu"], 60) is None
        assert jobs.entries(run_id)[0].state == "claimed"
        result = JobResult("success", output={"x": [1, "ß"]}, artifacts="sha256:ab", extra={"w": 1})
        assert jobs.complete(claim.ref, "w1", claim.claim, result) is True
        [done] = jobs.entries(run_id)
        assert (done.state, done.worker) == ("done", "w1")
        assert done.result == result.to_dict()
        # Done means done: neither a second completion nor a renewal holds it again.
        assert jobs.complete(claim.ref, "w1", claim.claim, result) is False
        assert jobs.renew(claim.ref, "w1", claim.claim, 60) == "lost"
        assert jobs.claim("w2", ["gpu"], 60) is None

    def test_a_worker_needs_every_label(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "cuda", labels=("gpu", "linux")))
        jobs.enqueue(_job(run_id, "plain"))
        # The job that needs nothing is claimable by anyone, even behind one it cannot take.
        first = jobs.claim("laptop", ["linux"], 60)
        assert first is not None and first.ref.node_id == "plain"
        assert jobs.claim("laptop", ["linux"], 60) is None
        assert jobs.claim("mac", ["gpu"], 60) is None
        got = jobs.claim("rig", ["linux", "gpu", "big"], 60)
        assert got is not None and got.ref.node_id == "cuda"

    def test_claims_come_oldest_first_and_attempts_are_separate(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        for node in ("a", "b", "c"):
            jobs.enqueue(_job(run_id, node))
        jobs.enqueue(_job(run_id, "a", attempt=2))
        with pytest.raises(PreconditionFailedError):
            jobs.enqueue(_job(run_id, "b"))
        taken = [jobs.claim("w", [], 60) for _ in range(5)]
        assert [(c.ref.node_id, c.ref.attempt) for c in taken if c is not None] == [
            ("a", 1),
            ("b", 1),
            ("c", 1),
            ("a", 2),
        ]
        assert taken[-1] is None

    def test_renew_answers_held_cancel_or_lost(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "x"))
        claim = jobs.claim("w1", [], 60)
        assert claim is not None
        assert jobs.renew(claim.ref, "w1", claim.claim, 60) == "held"
        assert jobs.renew(claim.ref, "w2", claim.claim, 60) == "lost"
        assert jobs.renew(claim.ref, "w1", claim.claim + 1, 60) == "lost"
        jobs.cancel(claim.ref, "run cancelled")
        assert jobs.renew(claim.ref, "w1", claim.claim, 60) == "cancel"
        assert jobs.entries(run_id)[0].cancel == "run cancelled"
        # The holder still reports how the attempt ended.
        ended = JobResult("cancelled", error="run cancelled")
        assert jobs.complete(claim.ref, "w1", claim.claim, ended) is True
        assert jobs.entries(run_id)[0].result == ended.to_dict()

    def test_cancelling_a_queued_job_ends_it_and_nobody_claims_it(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "x", labels=("gpu",)))
        jobs.cancel(JobRef(run_id, "x", 1), "interrupted by SIGINT")
        [entry] = jobs.entries(run_id)
        assert entry.state == "done"
        assert entry.result is not None
        assert (entry.result["status"], entry.result["error"]) == (
            "cancelled",
            "interrupted by SIGINT",
        )
        assert jobs.claim("rig", ["gpu"], 60) is None
        jobs.cancel(JobRef(run_id, "x", 1), "again")  # a no-op once done
        jobs.cancel(JobRef(run_id, "never-queued", 1), "nothing")
        assert jobs.entries(run_id)[0].cancel == "interrupted by SIGINT"

    def test_an_expired_lease_is_reclaimed_once_and_the_stale_worker_refused(
        self, store: StateStore
    ) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "x"))
        first = jobs.claim("dead", [], 0.2)
        assert first is not None and first.claim == 1
        assert jobs.claim("b", [], 60) is None  # still held
        time.sleep(0.4)
        second = jobs.claim("b", [], 60)
        assert second is not None
        assert (second.claim, second.previous_worker) == (2, "dead")
        assert jobs.claim("c", [], 60) is None  # reclaimed once, not twice
        assert jobs.renew(first.ref, "dead", first.claim, 60) == "lost"
        assert jobs.complete(first.ref, "dead", first.claim, JobResult("success")) is False
        assert jobs.complete(second.ref, "b", second.claim, JobResult("failed", error="e"))
        [entry] = jobs.entries(run_id)
        assert (entry.worker, entry.claim, entry.result and entry.result["status"]) == (
            "b",
            2,
            "failed",
        )

    def test_giving_a_lease_up_makes_the_job_claimable_at_once(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "x"))
        first = jobs.claim("stopping", [], 60)
        assert first is not None
        assert jobs.renew(first.ref, "stopping", first.claim, 0) == "held"
        second = jobs.claim("other", [], 60)
        assert second is not None and second.previous_worker == "stopping"

    def test_a_cancelled_job_whose_worker_died_is_not_reclaimed(self, store: StateStore) -> None:
        jobs = self._jobs(store)
        run_id = new_run_id()
        jobs.enqueue(_job(run_id, "x"))
        assert jobs.claim("dead", [], 0.1) is not None
        jobs.cancel(JobRef(run_id, "x", 1), "timed out")
        time.sleep(0.3)
        assert jobs.claim("b", [], 60) is None

    def test_concurrent_workers_claim_each_job_once(self, store_factory: Any) -> None:
        first = store_factory()
        jobs = self._jobs(first)
        run_id = new_run_id()
        for i in range(24):
            jobs.enqueue(_job(run_id, f"shard-{i:02d}"))
        handles = [first, *(store_factory() for _ in range(3))]
        got: list[tuple[str, str]] = []
        lock = threading.Lock()
        start = threading.Barrier(len(handles))

        def drain(index: int) -> None:
            queue = require_jobs(handles[index])
            start.wait()
            while (claim := queue.claim(f"w{index}", [], 60)) is not None:
                with lock:
                    got.append((claim.ref.node_id, claim.worker))

        with ThreadPoolExecutor(len(handles)) as pool:
            list(pool.map(drain, range(len(handles))))
        nodes = sorted(node for node, _ in got)
        assert nodes == [f"shard-{i:02d}" for i in range(24)]
        assert {e.state for e in jobs.entries(run_id)} == {"claimed"}

    @pytest.mark.parametrize("bad", ["", "a/b", "..", "x\ny"])
    def test_job_queue_rejects_invalid_ids(self, store: StateStore, bad: str) -> None:
        jobs = self._jobs(store)
        with pytest.raises(InvalidKeyError):
            jobs.enqueue(_job(bad, "x"))
        with pytest.raises(InvalidKeyError):
            jobs.cancel(JobRef(new_run_id(), bad, 1), "r")
        with pytest.raises(InvalidKeyError):
            jobs.entries(bad)
