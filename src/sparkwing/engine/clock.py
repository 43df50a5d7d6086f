"""UTC timestamps in the one format every record uses."""

from __future__ import annotations

import functools
import time
from datetime import datetime


@functools.lru_cache(maxsize=1)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def now_iso() -> str:
    # The date and time of day change once a second: formatted once per second (a run
    # stamps every record), the microseconds added to it each time.
    ns = time.time_ns()
    seconds, rest = divmod(ns, 1_000_000_000)
    return f"{_second(seconds)}.{rest // 1000:06d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
