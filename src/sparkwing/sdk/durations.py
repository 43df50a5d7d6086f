"""Parsing of human durations such as ``"5s"``, ``"10m"``, ``"1h30m"`` and plain seconds."""

from __future__ import annotations

import re

from sparkwing.errors import PlanError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds as a float; raises PlanError naming ``what`` on a malformed value."""
    if isinstance(value, bool):
        raise PlanError(f"{what}: expected a duration like '30s' or '10m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise PlanError(f"{what}: duration must not be negative, got {value!r}")
        return float(value)
    text = str(value).strip().replace(" ", "")
    if not text:
        raise PlanError(f"{what}: expected a duration like '30s' or '10m', got {value!r}")
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise PlanError(f"{what}: expected a duration like '30s' or '10m', got {value!r}")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
