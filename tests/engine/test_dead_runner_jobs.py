"""A run whose runner died has its dispatched jobs cancelled: no worker goes on running a job
whose result no runner will use."""

from __future__ import annotations

from pathlib import Path

from sparkwing.engine.clock import now_iso
from sparkwing.engine.recovery import record_runner_death
from sparkwing.ids import new_run_id
from sparkwing.surfaces.state.base import RunRecord
from sparkwing.surfaces.state.jobqueue import JobRef, JobResult, QueuedJob
from sparkwing.surfaces.state.sqlite import SqliteState


def test_recording_a_runner_death_cancels_its_open_dispatched_jobs(tmp_path: Path) -> None:
    state = SqliteState(tmp_path / "state.db")
    try:
        run_id = new_run_id()
        state.create_run(
            RunRecord(run_id=run_id, pipeline="p", status="running", created_at=now_iso())
        )
        jobs = state.jobs
        assert jobs is not None
        for node in ("done", "held", "queued"):  # claimed oldest first
            jobs.enqueue(QueuedJob(JobRef(run_id, node, 1), [], {"version": 1}))
        finished = jobs.claim("w1", [], 60)
        held = jobs.claim("w1", [], 60)
        assert finished is not None and held is not None
        assert (finished.ref.node_id, held.ref.node_id) == ("done", "held")
        assert jobs.complete(finished.ref, "w1", finished.claim, JobResult("success"))

        record_runner_death(state, run_id, "runner died")

        entries = {e.ref.node_id: e for e in jobs.entries(run_id)}
        assert (entries["done"].cancel, (entries["done"].result or {}).get("status")) == (
            None,
            "success",
        )
        # The held one is told to stop at its worker's next renewal; the queued one ends now.
        assert (entries["held"].state, entries["held"].cancel) == ("claimed", "runner died")
        queued = entries["queued"]
        assert queued.state == "done" and (queued.result or {}).get("status") == "cancelled"
        assert jobs.claim("w2", [], 60) is None  # nothing left for a worker to take
        run = state.get_run(run_id)
        assert run is not None and run.status == "failed"
    finally:
        state.close()
