"""One scheduler turn: for every schedule of a project, fire the tick that is due (if a
peer has not already) through the state's tick claims, which queue its run in the same
step. The controller and ``sparkwing scheduler`` both run turns of this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sparkwing.conf.model import PipelineEntry
from sparkwing.conf.triggers import Schedule
from sparkwing.surfaces.state.base import RunRecord, ScheduleTicks
from sparkwing.triggers.queueing import Trigger, triggered_run
from sparkwing.triggers.ticks import Due, due, next_tick

# The least time a first-seen schedule's latest tick may be late and still fire.
MIN_GRACE = timedelta(minutes=1)


def grace_for(poll: float) -> timedelta:
    """How late a tick may fire and not count as a catch-up: two polls, a minute at least."""
    return max(MIN_GRACE, timedelta(seconds=2 * poll))


@dataclass(frozen=True)
class Scheduled:
    """One schedule of one pipeline. ``key`` names it in the tick claims: the namespace
    (``repo/NAME`` or ``project``), the pipeline, the cron and its zone, so editing the
    cron makes a new schedule rather than a late tick of the old one."""

    key: str
    pipeline: str
    schedule: Schedule
    source: dict[str, Any]
    facts: dict[str, Any]

    def next_after(self, now: datetime) -> datetime:
        return next_tick(self.schedule, now)


def schedules_of(
    pipelines: Sequence[PipelineEntry],
    namespace: str,
    source: dict[str, Any],
    facts: dict[str, Any] | None = None,
) -> list[Scheduled]:
    out = []
    for entry in pipelines:
        for schedule in entry.on.schedule if entry.on else ():
            key = f"{namespace}/{entry.name}/{schedule.cron}@{schedule.timezone}"
            out.append(Scheduled(key, entry.name, schedule, source, dict(facts or {})))
    return out


@dataclass(frozen=True)
class Fired:
    """A due tick: ``run`` is the run this turn queued, None when a peer's run holds it."""

    scheduled: Scheduled
    due: Due
    run: RunRecord | None


def fire_due(
    ticks: ScheduleTicks, items: Sequence[Scheduled], now: datetime, grace: timedelta
) -> list[Fired]:
    out = []
    for item in items:
        got = due(item.schedule, ticks.last(item.key), now, grace)
        if got is None:
            continue
        facts = {
            **item.facts,
            "event": "schedule",
            "schedule": item.key,
            "tick": got.key,
            "catch_up": got.catch_up,
            "skipped_ticks": got.skipped,
        }
        run, spec = triggered_run(item.pipeline, Trigger("schedule", item.source, facts))
        won = ticks.fire(item.key, got.key, run, spec)
        out.append(Fired(item, got, run if won else None))
    return out
