"""A job's log a page at a time: the newest lines (or a page counted back from them, or from
the first line), never the whole log; and following a live log from the last line shown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkwing.surfaces.logs.base import LogQuery, LogRecord

if TYPE_CHECKING:
    from sparkwing.surfaces.logs.base import LogStore

log = logging.getLogger("sparkwing.dashboard")

PAGE_LINES = 1000
MAX_PAGE_LINES = 5000


@dataclass
class LogPage:
    lines: list[LogRecord]
    first_number: int | None  # line number of the first line, when counted from the start
    start: int | None  # the page's position: ``start`` lines from the top ...
    back: int  # ... or ``back`` lines before the end
    size: int
    earlier: bool
    later: bool

    @property
    def at_end(self) -> bool:
        return self.start is None and self.back == 0

    def earlier_query(self) -> dict[str, int]:
        if self.start is not None:
            return {"start": max(self.start - self.size, 0), "lines": self.size}
        return {"back": self.back + self.size, "lines": self.size}

    def later_query(self) -> dict[str, int]:
        if self.start is not None:
            return {"start": self.start + self.size, "lines": self.size}
        return {"back": max(self.back - self.size, 0), "lines": self.size}

    def last_position(self) -> tuple[str, int]:
        """The last line's time and how many lines of the page share it (where a live
        follow carries on from)."""
        if not self.lines:
            return "", 0
        ts = self.lines[-1].ts
        return ts, sum(1 for rec in self.lines if rec.ts == ts)


def read_page(
    logs: LogStore,
    run_id: str,
    node_id: str,
    *,
    start: int | None = None,
    back: int = 0,
    size: int = PAGE_LINES,
) -> LogPage:
    """``size`` lines from line ``start`` (0-based), or else the ``size`` lines ending
    ``back`` lines before the end. Reads only up to the page (plus one line, to know whether
    more exist), from whichever end is nearer."""
    size = max(1, min(size, MAX_PAGE_LINES))
    if start is not None:
        start = max(start, 0)
        got = logs.read(run_id, node_id, LogQuery(head=start + size + 1))
        return LogPage(
            lines=got[start : start + size],
            first_number=start + 1,
            start=start,
            back=0,
            size=size,
            earlier=start > 0,
            later=len(got) > start + size,
        )
    back = max(back, 0)
    got = logs.read(run_id, node_id, LogQuery(tail=back + size + 1))
    end = max(len(got) - back, 0)
    begin = max(end - size, 0)
    return LogPage(
        lines=got[begin:end],
        first_number=None,
        start=None,
        back=back,
        size=size,
        earlier=len(got) > back + size,
        later=back > 0,
    )


class Follower:
    """Reads new lines of a live log in a thread (log stores block while following) and
    hands each to ``deliver``, then None once the run is final or ``stop()`` was called."""

    POLL_SECONDS = 0.25
    RUN_CHECK_SECONDS = 1.0

    def __init__(
        self,
        logs: LogStore,
        run_id: str,
        node_id: str,
        *,
        after_ts: str,
        after_same: int,
        run_done: Callable[[], bool],
        deliver: Callable[[LogRecord | None], None],
    ) -> None:
        self._logs, self._run_id, self._node_id = logs, run_id, node_id
        self._after_ts, self._after_same = after_ts, after_same
        self._run_done, self._deliver = run_done, deliver
        self._stop = threading.Event()
        self._checked_at = 0.0
        self._done = False
        self._thread = threading.Thread(target=self._pump, name="sparkwing-log-follow", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _is_done(self) -> bool:
        if self._stop.is_set():
            return True
        now = time.monotonic()
        if now - self._checked_at >= self.RUN_CHECK_SECONDS:
            self._checked_at = now
            self._done = self._run_done()
        return self._done

    def _new(self, records: Iterator[LogRecord]) -> Iterator[LogRecord]:
        """The records after the page's last line: those before its time and the first
        ``after_same`` at its time were shown already."""
        skipping, same = bool(self._after_ts), 0
        for rec in records:
            if skipping:
                if rec.ts < self._after_ts:
                    continue
                if rec.ts == self._after_ts and same < self._after_same:
                    same += 1
                    continue
                skipping = False
            yield rec

    def _pump(self) -> None:
        try:
            follow = self._logs.follow(
                self._run_id, self._node_id, self._is_done, poll_interval=self.POLL_SECONDS
            )
            for rec in self._new(follow):
                self._deliver(rec)
                if self._stop.is_set():
                    return
        except Exception as exc:  # the page shows the lines it got; the log says why it ended
            log.warning("following the log of %s/%s failed: %s", self._run_id, self._node_id, exc)
        finally:
            self._deliver(None)
