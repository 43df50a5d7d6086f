"""Times shown on the pages: record timestamps as datetimes, ages and short durations."""

from __future__ import annotations

from datetime import UTC, datetime

from sparkwing.sdk.durations import format_duration


def moment(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def seconds_between(
    start: str | None, end: str | None, now: datetime | None = None
) -> float | None:
    """Seconds from ``start`` to ``end`` (to now while unfinished); None if never started."""
    begin = moment(start)
    if begin is None:
        return None
    finish = moment(end) or now or datetime.now(UTC)
    return max((finish - begin).total_seconds(), 0.0)


def duration(start: str | None, end: str | None) -> str:
    seconds = seconds_between(start, end)
    return "-" if seconds is None else format_duration(seconds)


def shown(value: str | None) -> str:
    """A record time as ``2026-12-02 00:31:05`` UTC (the pages say UTC once)."""
    at = moment(value)
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
