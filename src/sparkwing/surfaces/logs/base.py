"""The logs interface: append records per (run, node), read with filters, follow live."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class LogRecord:
    """One log line. ``stream`` is stdout, stderr, or a level (info, warn, error)."""

    ts: str
    msg: str
    stream: str = "stdout"

    def to_dict(self) -> dict[str, str]:
        return {"ts": self.ts, "stream": self.stream, "msg": self.msg}


@dataclass(frozen=True)
class LogQuery:
    """Filters for :meth:`LogStore.read`; applied in order grep/since, then head or tail."""

    tail: int | None = None
    head: int | None = None
    grep: str | None = None  # a substring searched in ``msg``
    regex: bool = False  # ``grep`` is a regular expression (RE2 syntax) instead
    since: str | None = None  # ISO time; records with ts >= since


class LogStore(abc.ABC):
    @abc.abstractmethod
    def append(self, run_id: str, node_id: str, records: list[LogRecord]) -> None:
        """Durably append records, in order, to the (run, node) stream."""

    @abc.abstractmethod
    def read(self, run_id: str, node_id: str, query: LogQuery | None = None) -> list[LogRecord]:
        """Records of one stream; an unknown stream reads as empty."""

    @abc.abstractmethod
    def nodes(self, run_id: str) -> list[str]:
        """Node ids that have a stream in this run, sorted."""

    def read_run(
        self, run_id: str, query: LogQuery | None = None
    ) -> Iterator[tuple[str, LogRecord]]:
        """Every stream of the run, node by node."""
        for node_id in self.nodes(run_id):
            for rec in self.read(run_id, node_id, query):
                yield node_id, rec

    @abc.abstractmethod
    def follow(
        self,
        run_id: str,
        node_id: str,
        is_done: Callable[[], bool],
        poll_interval: float = 0.2,
    ) -> Iterator[LogRecord]:
        """Yield records as they arrive until ``is_done()`` and the stream is drained."""

    @abc.abstractmethod
    def delete_run(self, run_id: str) -> None: ...

    def flush(self) -> None:  # noqa: B027 - optional hook for buffering backends
        """Make every appended record durable and visible to readers."""

    def close(self) -> None:
        self.flush()
