"""Jinja2 filters of the dashboard's templates (all output is still autoescaped)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from sparkwing.sdk.durations import format_duration


def _seconds(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _seg(value: Any) -> str:
    """A value as one URL path segment."""
    return urllib.parse.quote(str(value), safe="")


def _query(values: dict[str, Any]) -> str:
    return urllib.parse.urlencode({k: v for k, v in values.items() if v not in (None, "")})


FILTERS: dict[str, Callable[..., str]] = {
    "seconds": _seconds,
    "percent": _percent,
    "size": _size,
    "seg": _seg,
    "query": _query,
}
