"""A scheduler: turns of :func:`fire_due` every ``poll`` seconds until stopped, reading the
schedules anew each turn (a project file edited while it runs is picked up) and the time
from an injectable clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sparkwing import _log
from sparkwing.errors import SparkwingError
from sparkwing.surfaces.state.base import ScheduleTicks
from sparkwing.triggers.clock import Clock
from sparkwing.triggers.firing import Fired, Scheduled, fire_due, grace_for

log = _log.get("sparkwing.triggers")


@dataclass
class ScheduleService:
    ticks: ScheduleTicks
    load: Callable[[], list[Scheduled]]
    clock: Clock
    poll: float
    report: Callable[[Fired], None]
    warn: Callable[[str], None]
    stopped: threading.Event = field(default_factory=threading.Event)

    def turn(self) -> list[Fired]:
        """Fire what is due now; each outcome reported."""
        items = self.load()
        fired = fire_due(self.ticks, items, self.clock(), grace_for(self.poll))
        for one in fired:
            self.report(one)
        return fired

    def serve(self, *, once: bool = False) -> None:
        """Turns until :meth:`stop` (or one with ``once``). A store or project error is
        reported and the next turn tries again: a scheduler outlives a database restart."""
        while not self.stopped.is_set():
            try:
                self.turn()
            except SparkwingError as exc:
                if once:
                    raise
                self.warn(str(exc))
            if once:
                return
            self.stopped.wait(self.poll)

    def stop(self) -> None:
        self.stopped.set()
