"""Which runs a retention policy prunes (per pipeline, by age, never a run in progress) and
the progress a long prune reports, on a real SQLite state and filesystem cache and logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sparkwing.engine.pruner import Pruner
from sparkwing.engine.retention import Policy, select
from sparkwing.ids import new_run_id
from sparkwing.surfaces.open import open_cache, open_logs
from sparkwing.surfaces.spec import SurfaceSpec
from sparkwing.surfaces.state.base import RunRecord
from sparkwing.surfaces.state.sqlite import SqliteState

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _run(days_ago: float, pipeline: str = "build", status: str = "success") -> RunRecord:
    moment = NOW - timedelta(days=days_ago)
    return RunRecord(
        run_id=new_run_id(moment),
        pipeline=pipeline,
        status=status,
        created_at=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )


def _ids(runs: list[RunRecord]) -> list[str]:
    return [r.pipeline + "@" + r.created_at[:10] for r in runs]


def test_keep_last_counts_finished_runs_of_each_pipeline() -> None:
    runs = [  # newest first, as the store lists them
        _run(1, status="running"),
        _run(2),
        _run(3, "deploy"),
        _run(4, status="failed"),
        _run(5, "deploy", "cancelled"),
        _run(6, status="queued"),
        _run(7),
    ]
    prune, keep = select(runs, Policy(keep_last=1), NOW)
    assert _ids(prune) == ["build@2026-11-26", "deploy@2026-11-25", "build@2026-11-23"]
    assert len(keep) == 4 and {r.status for r in keep} >= {"running", "queued"}


def test_max_age_with_keep_last_and_a_pipeline_filter() -> None:
    runs = [_run(10), _run(40), _run(50), _run(60, "deploy"), _run(70, "deploy")]
    prune, _ = select(runs, Policy(max_age=30 * 86400), NOW)
    assert _ids(prune) == [
        "build@2026-10-21",
        "build@2026-10-11",
        "deploy@2026-10-01",
        "deploy@2026-09-21",
    ]
    prune, _ = select(runs, Policy(max_age=30 * 86400, keep_last=2), NOW)
    assert _ids(prune) == ["build@2026-10-11"]
    prune, keep = select(runs, Policy(max_age=30 * 86400, pipeline="deploy"), NOW)
    assert _ids(prune) == ["deploy@2026-10-01", "deploy@2026-09-21"] and len(keep) == 3


def test_a_long_prune_reports_progress(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKWING_HOME", str(tmp_path / "home"))
    state = SqliteState(tmp_path / "state.db")
    cache = open_cache(SurfaceSpec(type="filesystem", path=str(tmp_path / "cache")))
    logs = open_logs(SurfaceSpec(type="filesystem", path=str(tmp_path / "logs")))
    for i in range(130):
        state.create_run(_run(i / 1000))
    seen: list[tuple[str, int, int]] = []
    result = Pruner(state, cache, lambda _run: logs, lambda *a: seen.append(a)).prune(
        Policy(keep_last=10), now=NOW
    )
    assert len(result.runs) == 120 and result.kept == 10
    assert ("deleted runs", 100, 120) in seen and ("deleted runs", 120, 120) in seen
    assert len(state.list_runs(limit=200).runs) == 10
    # Small prunes stay quiet.
    seen.clear()
    Pruner(state, cache, lambda _run: logs, lambda *a: seen.append(a)).prune(Policy(keep_last=5))
    assert seen == []
    assert len(state.list_runs(limit=200).runs) == 5
    state.close()
