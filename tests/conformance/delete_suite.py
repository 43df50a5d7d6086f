"""Deleting finished runs (``delete_run``, what retention uses): part of the state conformance
suite, so every backend proves it removes all a run recorded and nothing of another run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sparkwing.errors import InvalidKeyError, PreconditionFailedError
from sparkwing.ids import new_run_id
from sparkwing.status import FINAL_RUN_STATUSES, RUN_STATUSES
from sparkwing.surfaces.state.base import Gate, NewEvent, NodeRecord, RunRecord, StateStore

_BASE = datetime(2026, 6, 1, 8, 0, 0, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run(offset: int, status: str = "success", pipeline: str = "build") -> RunRecord:
    moment = _BASE + timedelta(seconds=offset)
    return RunRecord(
        run_id=new_run_id(moment), pipeline=pipeline, status=status, created_at=_iso(moment)
    )


def _record_everything(store: StateStore, run: RunRecord) -> None:
    """A run with a plan, two jobs, events and (where the store has them) a gate, recorded
    while it runs (a controller refuses writes to a finished run), then given its status."""
    status, run.status = run.status, "running"
    store.create_run(run)
    store.save_plan(run.run_id, {"pipeline": run.pipeline, "jobs": [{"id": "a"}, {"id": "b"}]})
    store.upsert_nodes(
        [
            NodeRecord(run_id=run.run_id, node_id="a", status="success", artifacts="0" * 64),
            NodeRecord(run_id=run.run_id, node_id="b", status="success", needs=["a"]),
        ]
    )
    store.append_events(run.run_id, [NewEvent(kind="run_started", ts=run.created_at)] * 3)
    if store.gates is not None:
        gate = Gate(run_id=run.run_id, node_id="b", kind="approval", created_at=run.created_at)
        store.gates.open(gate)
    if status != "running":
        store.update_run(run.run_id, status=status)
    run.status = status


def _assert_gone(store: StateStore, run_id: str) -> None:
    assert store.get_run(run_id) is None
    assert store.get_plan(run_id) is None
    assert store.list_nodes(run_id) == []
    assert store.list_events(run_id) == []
    assert all(r.run_id != run_id for r in store.list_runs(limit=1000).runs)
    if store.gates is not None:
        assert store.gates.list(run_id=run_id, pending_only=False) == []


class DeleteConformance:
    """Mixed into StateConformance; uses its ``store`` and ``store_factory`` fixtures."""

    @pytest.mark.parametrize("status", sorted(FINAL_RUN_STATUSES))
    def test_delete_run_removes_everything_of_that_run_only(
        self, store: StateStore, status: str
    ) -> None:
        doomed, kept = _run(0, "running"), _run(1, "success")
        _record_everything(store, doomed)
        _record_everything(store, kept)
        if store.gates is not None:
            store.gates.resolve(doomed.run_id, "b", "approval", "approved", "ada", None)
        store.update_run(doomed.run_id, status=status, finished_at=_iso(_BASE))
        assert store.delete_run(doomed.run_id) is True
        _assert_gone(store, doomed.run_id)
        # The other run is untouched.
        assert store.get_run(kept.run_id) is not None
        assert [n.node_id for n in store.list_nodes(kept.run_id)] == ["a", "b"]
        assert len(store.list_events(kept.run_id)) == 3
        assert store.get_plan(kept.run_id) is not None
        assert [r.run_id for r in store.list_runs(limit=10).runs] == [kept.run_id]
        if store.gates is not None:
            assert len(store.gates.list(run_id=kept.run_id)) == 1

    @pytest.mark.parametrize("status", sorted(set(RUN_STATUSES) - FINAL_RUN_STATUSES - {"queued"}))
    def test_delete_run_refuses_a_run_in_progress(self, store: StateStore, status: str) -> None:
        run = _run(0, status)
        _record_everything(store, run)
        with pytest.raises(PreconditionFailedError, match="not finished"):
            store.delete_run(run.run_id)
        got = store.get_run(run.run_id)
        assert got is not None and got.status == status
        assert len(store.list_nodes(run.run_id)) == 2
        assert len(store.list_events(run.run_id)) == 3

    def test_delete_run_refuses_a_queued_run(self, store: StateStore) -> None:
        if store.queue is None:
            pytest.skip("this store has no run queue")
        run = _run(0, "queued")
        store.queue.submit(run, {"pipeline": "build"})
        with pytest.raises(PreconditionFailedError):
            store.delete_run(run.run_id)
        assert store.queue.claim("w1", 30) is not None  # still queued

    def test_delete_run_of_a_cancelled_queued_run_drops_its_queue_entry(
        self, store: StateStore
    ) -> None:
        if store.queue is None:
            pytest.skip("this store has no run queue")
        run = _run(0, "queued")
        store.queue.submit(run, {"pipeline": "build"})
        assert store.queue.cancel_queued(run.run_id, "not wanted", _iso(_BASE))
        assert store.delete_run(run.run_id) is True
        assert store.get_run(run.run_id) is None
        assert store.queue.claim("w1", 30) is None
        # The id is free again: submitting it anew is a fresh run.
        store.queue.submit(_run(0, "queued"), {"pipeline": "build"})
        claim = store.queue.claim("w1", 30)
        assert claim is not None and claim.attempt == 1

    def test_delete_run_twice_and_unknown_run(self, store: StateStore) -> None:
        run = _run(0)
        _record_everything(store, run)
        assert store.delete_run(run.run_id) is True
        assert store.delete_run(run.run_id) is False
        assert store.delete_run(_run(5).run_id) is False

    def test_a_deleted_run_id_can_be_recorded_again_from_scratch(self, store: StateStore) -> None:
        run = _run(0)
        _record_everything(store, run)
        store.delete_run(run.run_id)
        store.create_run(_run(0, "running"))
        assert store.list_nodes(run.run_id) == []
        assert store.append_events(run.run_id, [NewEvent(kind="x", ts=run.created_at)]) == [1]

    def test_delete_run_is_seen_by_other_handles(
        self, store: StateStore, store_factory: object
    ) -> None:
        run = _run(0)
        _record_everything(store, run)
        assert callable(store_factory)
        other: StateStore = store_factory()
        assert other.get_run(run.run_id) is not None
        assert len(other.list_nodes(run.run_id)) == 2
        store.delete_run(run.run_id)
        _assert_gone(other, run.run_id)

    @pytest.mark.parametrize("bad", ["a/b", "..", "a\nb", ""])
    def test_delete_run_rejects_bad_ids(self, store: StateStore, bad: str) -> None:
        with pytest.raises(InvalidKeyError):
            store.delete_run(bad)
