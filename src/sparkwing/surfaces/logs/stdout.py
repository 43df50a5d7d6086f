"""Stdout logs: print every record as ``<run> <node> | <msg>``; nothing can be read back."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import TextIO

from sparkwing.errors import NotSupportedError
from sparkwing.ids import check_segment
from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore

NOT_SUPPORTED = (
    "logs backend type=stdout does not support reading logs; "
    "use a filesystem or object-store logs backend"
)


class StdoutLogs(LogStore):
    """Writes to ``stream`` (``sys.stdout`` at write time when None)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        # Jobs run in parallel threads; one batch must not interleave with another's.
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def append(self, run_id: str, node_id: str, records: list[LogRecord]) -> None:
        check_segment(run_id, "run id")
        check_segment(node_id, "node id")
        prefix = f"{run_id} {node_id} | "
        text = "".join(
            prefix + line + "\n" for rec in records for line in (rec.msg.splitlines() or [""])
        )
        if not text:
            return
        with self._lock:
            self.stream.write(text)
            self.stream.flush()

    def read(self, run_id: str, node_id: str, query: LogQuery | None = None) -> list[LogRecord]:
        raise NotSupportedError(NOT_SUPPORTED)

    def nodes(self, run_id: str) -> list[str]:
        raise NotSupportedError(NOT_SUPPORTED)

    def follow(
        self,
        run_id: str,
        node_id: str,
        is_done: Callable[[], bool],
        poll_interval: float = 0.2,
    ) -> Iterator[LogRecord]:
        raise NotSupportedError(NOT_SUPPORTED)

    def delete_run(self, run_id: str) -> None:
        """Nothing was kept, so nothing to delete."""

    def flush(self) -> None:
        with self._lock:
            self.stream.flush()

    def describe(self) -> str:
        return "stdout logs"
