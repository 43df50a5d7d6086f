"""Cron arithmetic for schedules: the latest tick due at a moment, the next one, and what a
scheduler should fire given the last tick it (or a peer) fired. Time zones follow the
schedule (``0 3 * * *`` in Europe/Paris is 03:00 Paris time, summer and winter)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from sparkwing.conf.triggers import Schedule

TICK_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Counting skipped ticks stops here: after a long outage of a per-minute schedule the exact
# number matters less than not looping over years of minutes.
MAX_COUNTED = 10_000


def tick_key(moment: datetime) -> str:
    """A tick as stored: UTC, to the second, so one schedule's ticks sort as strings."""
    return moment.astimezone(UTC).strftime(TICK_FORMAT)


def parse_tick(key: str) -> datetime:
    return datetime.strptime(key, TICK_FORMAT).replace(tzinfo=UTC)


def latest_tick(schedule: Schedule, now: datetime) -> datetime:
    """The latest tick at or before ``now``."""
    zone = ZoneInfo(schedule.timezone)
    # croniter's get_prev is strictly before its start: start one second past ``now``
    # (truncated), so a tick exactly at ``now`` counts and one a fraction later does not.
    start = now.astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)
    got: datetime = croniter(schedule.cron, start).get_prev(datetime)
    return got.astimezone(UTC)


def next_tick(schedule: Schedule, now: datetime) -> datetime:
    """The first tick after ``now``."""
    zone = ZoneInfo(schedule.timezone)
    got: datetime = croniter(schedule.cron, now.astimezone(zone)).get_next(datetime)
    return got.astimezone(UTC)


def ticks_between(schedule: Schedule, after: datetime, before: datetime) -> int:
    """How many ticks fall strictly between ``after`` and ``before`` (capped)."""
    zone = ZoneInfo(schedule.timezone)
    it = croniter(schedule.cron, after.astimezone(zone))
    count = 0
    while count < MAX_COUNTED:
        moment: datetime = it.get_next(datetime)
        if moment >= before:
            break
        count += 1
    return count


@dataclass(frozen=True)
class Due:
    """A tick to fire now. ``skipped`` ticks after the last fired one were never run (the
    schedulers were all down): they are not run one by one, this run stands for them;
    ``catch_up`` says this run is late (it is fired after ``grace`` past its time)."""

    tick: datetime
    skipped: int
    catch_up: bool

    @property
    def key(self) -> str:
        return tick_key(self.tick)


def due(schedule: Schedule, last: str | None, now: datetime, grace: timedelta) -> Due | None:
    """What to fire for ``schedule`` at ``now`` given the ``last`` tick fired (None: never).

    A schedule never fired before starts with a tick no older than ``grace``: adding
    ``0 3 * * *`` at noon waits for 03:00 rather than firing this morning's tick."""
    tick = latest_tick(schedule, now)
    late = now - tick > grace
    if last is None:
        return None if late else Due(tick, 0, False)
    previous = parse_tick(last)
    if tick <= previous:
        return None
    skipped = ticks_between(schedule, previous, tick)
    return Due(tick, skipped, late or skipped > 0)
