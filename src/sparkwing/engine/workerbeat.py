"""A worker's entry in the state store's fleet: registered when it starts, refreshed on a
heartbeat and whenever what it runs changes, removed when it stops."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sparkwing.engine.clock import now_iso

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import StateStore

DEFAULT_HEARTBEAT_SECONDS = 10.0
# Entries of workers not seen for this long are forgotten when another worker starts.
FORGET_AFTER_SECONDS = 24 * 3600.0


class Beat:
    """Reports worker ``name`` to ``state``'s fleet (nothing where the store has none)."""

    def __init__(
        self, state: StateStore, name: str, labels: Sequence[str], interval: float
    ) -> None:
        from sparkwing.__about__ import __version__
        from sparkwing.surfaces.state.fleet import WorkerInfo

        self.state = state
        self.interval = interval
        self.info = WorkerInfo(
            name=name,
            host=socket.gethostname(),
            labels=list(labels),
            version=__version__,
            started_at=now_iso(),
            heartbeat=interval,
        )
        self._next = 0.0

    def start(self) -> None:
        """Register, and forget workers gone for a day (their entries would pile up)."""
        fleet = self.state.fleet
        if fleet is None:
            return
        from datetime import UTC, datetime, timedelta

        cutoff = datetime.now(UTC) - timedelta(seconds=FORGET_AFTER_SECONDS)
        fleet.prune(cutoff.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        self.beat([])

    def beat(self, running: Sequence[str]) -> None:
        """Report now, with the runs this worker holds."""
        fleet = self.state.fleet
        if fleet is None:
            return
        self.info.running = sorted(running)
        self.info.last_seen = now_iso()
        self._next = time.monotonic() + self.interval
        fleet.heartbeat(self.info)

    def due(self, running: Sequence[str]) -> None:
        """Report if the interval passed or the runs held changed since the last report."""
        if time.monotonic() >= self._next or sorted(running) != self.info.running:
            self.beat(running)

    def leave(self) -> None:
        fleet = self.state.fleet
        if fleet is not None:
            fleet.leave(self.info.name)
