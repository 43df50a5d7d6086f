"""Schedule ticks: the optional state part that lets any number of schedulers share one
state and still queue exactly one run per (schedule, tick)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from sparkwing.errors import NotSupportedError

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import RunRecord, StateStore


class ScheduleTicks(abc.ABC):
    """Claims of schedule ticks, each made together with the run it queues.

    A schedule is a stable key (``repo/NAME/pipeline/cron@zone``); a tick is its UTC time as
    ``YYYY-MM-DDTHH:MM:SSZ``, so ticks of one schedule sort as strings."""

    @abc.abstractmethod
    def fire(self, schedule: str, tick: str, run: RunRecord, spec: dict[str, Any]) -> bool:
        """Claim ``tick`` of ``schedule`` and queue ``run`` with ``spec`` (as
        ``RunQueue.submit``) in one step: True for the one caller whose claim it became
        (retrying the same run is True again); False, queueing nothing, when another
        caller's run holds the tick."""

    @abc.abstractmethod
    def last(self, schedule: str) -> str | None:
        """The latest tick claimed for ``schedule`` (None: never fired)."""


def require_ticks(store: StateStore) -> ScheduleTicks:
    """``store.ticks``, or the refusal every caller gives a store without them."""
    ticks: ScheduleTicks | None = store.ticks
    if ticks is None:
        raise NotSupportedError(
            f"{store.describe()} cannot coordinate schedules (sqlite, postgres and a "
            "controller can)"
        )
    return ticks


def check_schedule_key(schedule: str, tick: str) -> None:
    """Keys every backend refuses: empty, over-long, or with control characters."""
    from sparkwing.errors import UsageError

    for what, value in (("schedule", schedule), ("tick", tick)):
        if not value or len(value) > 512 or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise UsageError(f"{what} key {value!r} is empty, too long or has control characters")
