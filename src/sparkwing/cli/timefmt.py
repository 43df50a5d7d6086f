"""Times for humans in the CLI: relative ages and short durations for tables, and ``--since``
values (a date, an ISO time or an age such as ``2h``) turned into record timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sparkwing.errors import UsageError


def parse_time(value: str | None) -> datetime | None:
    """A record time (or any ISO time, UTC unless it names a zone); None if unset or bad."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def record_time(moment: datetime) -> str:
    """``moment`` in the format every record uses (UTC, microseconds, ``Z``), so text
    comparison in a store orders it correctly against stored times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ago(value: str | None, now: datetime | None = None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``; a date beyond a week; ``-`` if unset."""
    moment = parse_time(value)
    if moment is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 1:
        return "just now"
    for limit, size, unit in (
        (60, 1, "s"),
        (3600, 60, "m"),
        (86400, 3600, "h"),
        (7 * 86400, 86400, "d"),
    ):
        if seconds < limit:
            return f"{int(seconds // size)}{unit} ago"
    return moment.astimezone().strftime("%Y-%m-%d")


def elapsed(start: str | None, end: str | None, now: datetime | None = None) -> str:
    """The time from ``start`` to ``end`` (to now while unfinished); ``-`` if never started."""
    from sparkwing.sdk.durations import format_duration

    begin = parse_time(start)
    if begin is None:
        return "-"
    finish = parse_time(end) or now or datetime.now(UTC)
    return format_duration(max((finish - begin).total_seconds(), 0.0))


def parse_since(text: str, now: datetime | None = None) -> str:
    """``--since``: an age (``90s``, ``30m``, ``2h``, ``7d``, ``1h30m``), a date
    (``2026-11-01``, local midnight) or an ISO time (local unless it names a zone)."""
    from sparkwing.errors import PlanError
    from sparkwing.sdk.durations import parse_duration

    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            age = parse_duration(value)
        except PlanError:
            raise UsageError(
                f"--since {text!r}: expected an age like 30m, 2h or 7d, a date like "
                "2026-11-01, or an ISO time"
            ) from None
        return record_time((now or datetime.now(UTC)) - timedelta(seconds=age))
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a bare date or time is the user's local time
    return record_time(moment)
