"""Times shown on the pages: record timestamps as datetimes, ages and short durations."""

from __future__ import annotations

from datetime import UTC, datetime

from sparkwing.cli.timefmt import elapsed as duration
from sparkwing.cli.timefmt import parse_time as moment

__all__ = ["duration", "moment", "seconds_between", "shown"]


def seconds_between(
    start: str | None, end: str | None, now: datetime | None = None
) -> float | None:
    """Seconds from ``start`` to ``end`` (to now while unfinished); None if never started."""
    begin = moment(start)
    if begin is None:
        return None
    finish = moment(end) or now or datetime.now(UTC)
    return max((finish - begin).total_seconds(), 0.0)


def shown(value: str | None) -> str:
    """A record time as ``2026-12-02 00:31:05`` UTC (the pages say UTC once)."""
    at = moment(value)
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
