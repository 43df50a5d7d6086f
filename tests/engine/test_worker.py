"""The queue worker as an engine object: driven directly, it reports each step through its
callback and takes a run's result (or the reason it could not start) from the run's own
launch process, not from its output."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sparkwing.engine.worker import Worker, WorkerEvent, submit
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.sqlite import SqliteState

PIPE = """
import sparkwing as sw

@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "true")
"""


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, SurfaceSpec]:
    """A project whose "shared" profile keeps its state (the queue) in a sqlite file."""
    for name in ("SPARKWING_PROFILE", "SPARKWING_PROFILES", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "swhome"))
    root = tmp_path / "proj"
    (root / ".sparkwing").mkdir(parents=True)
    (root / ".sparkwing" / "pipes.py").write_text(textwrap.dedent(PIPE))
    db = tmp_path / "queue.db"
    (root / ".sparkwing" / "sparkwing.yaml").write_text(
        f'profiles:\n  shared:\n    state: {{ type: sqlite, path: "{db}" }}\n'
    )
    return root, SurfaceSpec("sqlite", path=str(db))


def _serve(state: SqliteState, spec: SurfaceSpec) -> list[WorkerEvent]:
    events: list[WorkerEvent] = []
    worker = Worker(
        state,
        spec,
        name="w1",
        lease=30,
        parallel=2,
        poll=0.1,
        once=True,
        max_runs=None,
        report=events.append,
    )
    assert worker.serve() == 0
    return events


def test_the_worker_reports_claim_and_finish_and_the_result_decides(
    queue: tuple[Path, SurfaceSpec],
) -> None:
    root, spec = queue
    state = SqliteState(Path(str(spec.path)))
    try:
        good, _ = submit(
            state,
            pipeline="p",
            root=str(root),
            args=[],
            profile="shared",
            profile_source="flag",
            queue=spec,
            submitted_by="test",
        )
        bad, _ = submit(
            state,
            pipeline="p",
            root=str(root),
            args=["--sw-parallel", "0"],
            profile="shared",
            profile_source="flag",
            queue=spec,
            submitted_by="test",
        )
        events = _serve(state, spec)
        kinds = sorted((e.kind, e.run.run_id if e.run else "") for e in events)
        expected = [(k, r.run_id) for k in ("claimed", "finished") for r in (good, bad)]
        assert kinds == sorted(expected)
        ends = {e.run.run_id: e.data for e in events if e.kind == "finished" and e.run}
        assert ends[good.run_id]["status"] == "success"
        # The engine flag was checked where the run starts; its error is the run's reason.
        assert ends[bad.run_id]["status"] == "failed"
        assert ends[bad.run_id]["reason"] == "--sw-parallel: 0 is less than 1"
        record = state.get_run(bad.run_id)
        assert record is not None and (record.status, record.reason) == (
            "failed",
            "--sw-parallel: 0 is less than 1",
        )
    finally:
        state.close()
