"""Answers to retried writes: a runner that lost a response (timeout, dropped connection)
retries with the same ``Idempotency-Key`` and gets the first answer instead of a second
append, so retries never duplicate events or log lines."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.responses import Response

_Entry = tuple[float, int, bytes, list[tuple[bytes, bytes]]]


class ReplayCache:
    """Recent answers by key, in the event loop's thread only (so no locking)."""

    def __init__(self, size: int = 20_000, ttl: float = 600.0) -> None:
        self.size = size
        self.ttl = ttl
        self._done: OrderedDict[str, _Entry] = OrderedDict()
        self._pending: dict[str, asyncio.Event] = {}

    def _lookup(self, key: str) -> Response | None:
        from starlette.responses import Response

        entry = self._done.get(key)
        if entry is None:
            return None
        expires, status, body, headers = entry
        if expires < time.monotonic():
            del self._done[key]
            return None
        response = Response(body, status_code=status)
        response.raw_headers = list(headers)
        return response

    async def run(self, key: str, compute: Callable[[], Awaitable[Response]]) -> Response:
        while True:
            found = self._lookup(key)
            if found is not None:
                return found
            pending = self._pending.get(key)
            if pending is None:
                break
            await pending.wait()  # the first attempt is still running: answer as it does
        event = asyncio.Event()
        self._pending[key] = event
        try:
            response = await compute()
            body = getattr(response, "body", None)
            if response.status_code < 500 and isinstance(body, bytes):
                self._done[key] = (
                    time.monotonic() + self.ttl,
                    response.status_code,
                    body,
                    list(response.raw_headers),
                )
                while len(self._done) > self.size:
                    self._done.popitem(last=False)
            return response
        finally:
            del self._pending[key]
            event.set()
