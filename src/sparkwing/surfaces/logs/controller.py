"""The controller logs backend (mode 4): appends and reads over HTTP, ``follow`` over the
controller's Server-Sent Events stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from sparkwing.controller.client import ControllerClient, segment
from sparkwing.errors import StorageError
from sparkwing.ids import check_segment
from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore


def _stream(run_id: str, node_id: str) -> str:
    run = segment(check_segment(run_id, "run id"))
    return f"/v1/logs/{run}/{segment(check_segment(node_id, 'node id'))}"


def _record(doc: list[str]) -> LogRecord:
    """A record from its wire form, ``[ts, stream, msg]``."""
    return LogRecord(ts=doc[0], stream=doc[1], msg=doc[2])


class ControllerLogs(LogStore):
    def __init__(self, client: ControllerClient) -> None:
        self.client = client

    def describe(self) -> str:
        return f"{self.client.describe()} (logs)"

    def append(self, run_id: str, node_id: str, records: list[LogRecord]) -> None:
        path = _stream(run_id, node_id)
        if not records:
            return
        body = {"records": [[r.ts, r.stream, r.msg] for r in records]}
        self.client.call("POST", path, what="append to a log", body=body)

    def _read(self, path: str, query: LogQuery | None, offset: int = 0) -> list[LogRecord]:
        params: dict[str, Any] = {"offset": offset or None}
        if query is not None:
            params.update(tail=query.tail, head=query.head, grep=query.grep, since=query.since)
            params.update(regex="true" if query.regex and query.grep is not None else None)
        doc = self.client.call("GET", path, what="read a log", params=params)
        return [_record(r) for r in doc["records"]]

    def read(self, run_id: str, node_id: str, query: LogQuery | None = None) -> list[LogRecord]:
        return self._read(_stream(run_id, node_id), query)

    def nodes(self, run_id: str) -> list[str]:
        path = "/v1/logs/" + segment(check_segment(run_id, "run id"))
        doc = self.client.call("GET", path, what="list a run's logs")
        return [str(n) for n in doc["nodes"]]

    def flush(self) -> None:
        # The controller's own store may buffer (object storage uploads in chunks).
        self.client.call("POST", "/v1/logs/flush", what="flush the logs")

    def delete_run(self, run_id: str) -> None:
        path = "/v1/logs/" + segment(check_segment(run_id, "run id"))
        self.client.call("DELETE", path, what="delete a run's logs")

    def follow(
        self,
        run_id: str,
        node_id: str,
        is_done: Callable[[], bool],
        poll_interval: float = 0.2,
    ) -> Iterator[LogRecord]:
        """Stream new records from the controller; between them it sends keep-alives every
        ``poll_interval``, when ``is_done()`` is checked. Once done, one plain read after
        the records already seen returns the rest, so nothing written before is missed."""
        import httpx

        path = _stream(run_id, node_id)
        beat = min(max(poll_interval, 0.05), 30.0)
        timeout = httpx.Timeout(max(30.0, beat * 10), connect=10.0)
        seen = 0
        while True:
            if is_done():
                yield from self._read(path, None, offset=seen)
                return
            params = {"offset": seen, "heartbeat": beat}
            try:
                for rec in self._events(path + "/follow", params, is_done, beat, timeout):
                    seen += 1
                    yield rec
            except (httpx.TransportError, httpx.TimeoutException):
                time.sleep(beat)  # the stream broke: resume from what was seen

    def _events(
        self,
        path: str,
        params: dict[str, Any],
        is_done: Callable[[], bool],
        beat: float,
        timeout: Any,
    ) -> Iterator[LogRecord]:
        """Records of one SSE connection; returns at a keep-alive once ``is_done()``."""
        what = "follow a log"
        with self.client.stream("GET", path, what=what, params=params, timeout=timeout) as resp:
            if resp.status_code != 200:
                self.client.fail(resp, what)
            checked = time.monotonic()
            event, data = "", ""
            for line in resp.iter_lines():
                if line.startswith(":"):  # a keep-alive: the stream is quiet
                    checked = time.monotonic()
                    if is_done():
                        return
                    continue
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif not line and data:
                    if event == "error":
                        doc = json.loads(data)
                        raise StorageError(f"{self.client.describe()}: {doc.get('error')}")
                    yield _record(json.loads(data))
                    event, data = "", ""
                    if time.monotonic() - checked >= beat:
                        checked = time.monotonic()
                        if is_done():
                            return
