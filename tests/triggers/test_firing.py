"""Scheduler turns with a fake clock over a real SQLite state: a due tick queues one run
(spec version 2, the schedule's source), a second scheduler finds it taken, time moving on
fires the next tick, and a turn that fails is reported without stopping the scheduler."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sparkwing.conf.project import parse_project
from sparkwing.errors import ConfigError
from sparkwing.surfaces.state.sqlite import SqliteState
from sparkwing.triggers.clock import TEST_CLOCK_ENV, clock_from_env, system_clock
from sparkwing.triggers.firing import Fired, Scheduled, fire_due, grace_for, schedules_of
from sparkwing.triggers.service import ScheduleService

SOURCE = {"kind": "git", "url": "file:///srv/app.git", "ref": "refs/heads/main", "sha": "c" * 40}
PROJECT = """
pipelines:
  - name: nightly
    entrypoint: Nightly
    on:
      schedule:
        - { cron: "0 3 * * *", timezone: "Europe/Paris" }
        - { cron: "*/10 * * * *" }
  - name: ci
    entrypoint: CI
    on: { push: }
"""


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class FakeClock:
    def __init__(self, start: str) -> None:
        self.now = at(start)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def items() -> list[Scheduled]:
    project = parse_project(textwrap.dedent(PROJECT), Path("/p/.sparkwing/sparkwing.yaml"))
    return schedules_of(project.pipelines, "repo/app", SOURCE, {"repo": "app"})


@pytest.fixture
def state(tmp_path: Path) -> Iterator[SqliteState]:
    store = SqliteState(tmp_path / "state.db")
    yield store
    store.close()


def test_schedules_of_names_each_schedule(items: list[Scheduled]) -> None:
    assert [i.key for i in items] == [
        "repo/app/nightly/0 3 * * *@Europe/Paris",
        "repo/app/nightly/*/10 * * * *@UTC",
    ]
    assert {i.pipeline for i in items} == {"nightly"}


def test_a_due_tick_queues_one_run_with_a_version_2_spec(
    state: SqliteState, items: list[Scheduled]
) -> None:
    ticks, queue = state.ticks, state.queue
    assert ticks is not None and queue is not None
    now = at("2026-03-02T02:00:05+00:00")  # 03:00 in Paris, and a 10-minute tick
    fired = fire_due(ticks, items, now, grace_for(15))
    assert [(f.scheduled.key, f.due.key, f.run is not None) for f in fired] == [
        ("repo/app/nightly/0 3 * * *@Europe/Paris", "2026-03-02T02:00:00Z", True),
        ("repo/app/nightly/*/10 * * * *@UTC", "2026-03-02T02:00:00Z", True),
    ]
    claim = queue.claim("w", 60)
    assert claim is not None
    assert claim.spec == {
        "version": 2,
        "pipeline": "nightly",
        "args": [],
        "labels": [],
        "profile": None,
        "source": SOURCE,
    }
    run = claim.run
    assert (run.trigger, run.source, run.git) == ("schedule", SOURCE, {"sha": "c" * 40})
    assert run.extra["repo"] == "app" and run.extra["catch_up"] is False
    assert run.extra["tick"] == "2026-03-02T02:00:00Z" and run.extra["trigger"] == "schedule"
    # Nothing more is due at the same moment; a peer on the same file finds it taken.
    assert fire_due(ticks, items, now, grace_for(15)) == []
    peer = SqliteState(state.path)
    try:
        assert peer.ticks is not None
        assert fire_due(peer.ticks, items, now, grace_for(15)) == []
    finally:
        peer.close()


def test_the_service_fires_as_the_clock_moves(state: SqliteState, items: list[Scheduled]) -> None:
    assert state.ticks is not None
    clock = FakeClock("2026-03-02T09:00:30+00:00")
    seen: list[Fired] = []
    warnings: list[str] = []
    service = ScheduleService(state.ticks, lambda: items, clock, 15, seen.append, warnings.append)
    assert [f.due.key for f in service.turn()] == ["2026-03-02T09:00:00Z"]
    clock.advance(minutes=5)
    assert service.turn() == []
    clock.advance(minutes=5)
    assert [f.due.key for f in service.turn()] == ["2026-03-02T09:10:00Z"]
    clock.advance(hours=1)  # five ticks missed: one catch-up
    (late,) = service.turn()
    assert (late.due.key, late.due.skipped, late.due.catch_up) == ("2026-03-02T10:10:00Z", 5, True)
    assert len(seen) == 3 and warnings == []
    assert len(state.list_runs().runs) == 3


def test_a_failing_turn_is_reported_and_the_next_one_runs(
    state: SqliteState, items: list[Scheduled]
) -> None:
    assert state.ticks is not None
    clock = FakeClock("2026-03-02T09:00:30+00:00")
    calls: list[int] = []
    warnings: list[str] = []

    def load() -> list[Scheduled]:
        calls.append(1)
        if len(calls) == 1:
            raise ConfigError("/p/.sparkwing/sparkwing.yaml:3: broken while editing")
        if len(calls) == 2:
            service.stop()
        return items

    service = ScheduleService(state.ticks, load, clock, 0.01, lambda f: None, warnings.append)
    service.serve()
    assert warnings == ["/p/.sparkwing/sparkwing.yaml:3: broken while editing"]
    assert len(state.list_runs().runs) == 1
    with pytest.raises(ConfigError):
        calls.clear()
        service.stopped.clear()
        service.serve(once=True)


def test_the_test_clock_is_only_read_when_its_variable_is_set(tmp_path: Path) -> None:
    assert clock_from_env({}) is system_clock
    file = tmp_path / "clock"
    file.write_text("2026-03-02T09:00:00Z\n")
    clock = clock_from_env({TEST_CLOCK_ENV: str(file)})
    assert clock() == at("2026-03-02T09:00:00+00:00")
    file.write_text("2026-03-02T10:00:00+02:00")
    assert clock() == at("2026-03-02T08:00:00+00:00")
    for bad in ("yesterday", "2026-03-02T09:00:00"):
        file.write_text(bad)
        with pytest.raises(ConfigError, match=TEST_CLOCK_ENV):
            clock()
