"""The schedules data behind the dashboard's schedules page: each on.schedule of the project
with its next tick, and the last tick the state recorded."""

from __future__ import annotations

from pathlib import Path

from sparkwing.conf.project import find_project
from sparkwing.dashboard.opsdata import schedules_data
from sparkwing.dashboard.source import Source
from sparkwing.surfaces.state.base import RunRecord
from sparkwing.surfaces.state.sqlite import SqliteState
from sparkwing.triggers.ticks import parse_tick

YAML = """
pipelines:
  - name: nightly
    entrypoint: Nightly
    on:
      schedule: [{ cron: "0 3 * * *", timezone: "Europe/Paris" }]
  - name: ci
    entrypoint: CI
"""


def test_each_schedule_with_its_next_and_last_tick(tmp_path: Path) -> None:
    (tmp_path / ".sparkwing").mkdir()
    (tmp_path / ".sparkwing" / "sparkwing.yaml").write_text(YAML.lstrip())
    project = find_project(tmp_path)
    assert project is not None
    state = SqliteState(tmp_path / "state.db")
    try:
        source = Source(
            state=state, logs_of=lambda r: None, cache_of=None, where={}, project=project
        )  # type: ignore[arg-type,return-value]
        (row,) = schedules_data(source)
        assert (row.pipeline, row.cron, row.timezone, row.last_tick) == (
            "nightly", "0 3 * * *", "Europe/Paris", "",
        )  # fmt: skip
        # 03:00 in Paris is 01:00 or 02:00 UTC.
        assert parse_tick(row.next_tick).hour in (1, 2)
        ticks = state.ticks
        assert ticks is not None
        key = "project/nightly/0 3 * * *@Europe/Paris"
        run = RunRecord(run_id="run-20260302-020000-aaaaaa", pipeline="nightly", status="queued")
        assert ticks.fire(key, "2026-03-02T02:00:00Z", run, {"version": 2})
        (row,) = schedules_data(source)
        assert row.last_tick == "2026-03-02T02:00:00Z"
        assert (
            schedules_data(
                Source(state=state, logs_of=lambda r: None, cache_of=None, where={})  # type: ignore[arg-type,return-value]
            )
            == []
        )
    finally:
        state.close()
