"""The live parts, as server-sent events: the runs table and a run's regions re-rendered when
they change, and a job's new log lines as they are written."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from sparkwing.dashboard.logview import Follower
from sparkwing.ids import check_segment
from sparkwing.status import FINAL_RUN_STATUSES

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from sparkwing.dashboard.sessions import Session
    from sparkwing.dashboard.web import Web
    from sparkwing.surfaces.logs.base import LogRecord

POLL_SECONDS = 1.0
PING_SECONDS = 15.0
# How often a long-lived stream checks that its session (its token) is still valid.
RECHECK_SECONDS = 10.0
MAX_LINES_PER_EVENT = 500


def sse(event: str, data: str) -> str:
    """One event; every line of ``data`` gets its own ``data:`` field, as the format says."""
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _response(events: AsyncIterator[str]) -> Response:
    from starlette.responses import StreamingResponse

    from sparkwing.dashboard.web import SECURITY_HEADERS

    headers = {**SECURITY_HEADERS, "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


Regions = Callable[["Request", "Session"], dict[str, str]]
RunRegions = Callable[["Request", "Session"], tuple[dict[str, str], bool]]


class Streams:
    """The SSE endpoints; ``runs_rows`` and ``run_regions`` render the live regions of the
    runs page and of a run's page (the latter also says whether the run is still live)."""

    def __init__(self, web: Web, runs_rows: Regions, run_regions: RunRegions) -> None:
        self.web = web
        self.runs_rows = runs_rows
        self.run_regions = run_regions

    async def _still_in(self, request: Request, checked: float) -> tuple[bool, float]:
        from starlette.concurrency import run_in_threadpool

        now = time.monotonic()
        if now - checked < RECHECK_SECONDS:
            return True, checked
        return await run_in_threadpool(self.web.session_of, request) is not None, now

    async def _regions(self, request: Request, produce: object) -> AsyncIterator[str]:
        """Send each region whose HTML changed, every poll, until the page says it is final
        (``produce`` returns the regions and whether to go on)."""
        from starlette.concurrency import run_in_threadpool

        assert callable(produce)
        sent: dict[str, str] = {}
        checked = pinged = time.monotonic()
        while True:
            ok, checked = await self._still_in(request, checked)
            if not ok:
                yield sse("end", '{"reason": "logged out"}')
                return
            try:
                regions, going = await run_in_threadpool(produce)
            except Exception as exc:  # a store that failed for a moment: try again later
                self.web_log(request, exc)
                regions, going = {}, True
            for name, html in regions.items():
                if sent.get(name) != html:
                    sent[name] = html
                    yield sse("region", json.dumps({"id": name, "html": html}))
            if not going:
                yield sse("end", "{}")
                return
            if time.monotonic() - pinged > PING_SECONDS:
                pinged = time.monotonic()
                yield ": ping\n\n"
            await asyncio.sleep(POLL_SECONDS)

    def web_log(self, request: Request, exc: Exception) -> None:
        from sparkwing.dashboard.web import log

        log.warning("live update of %s failed: %s", request.url.path, exc)

    async def runs(self, request: Request, session: Session) -> Response:
        def produce() -> tuple[dict[str, str], bool]:
            return self.runs_rows(request, session), True

        return _response(self._regions(request, produce))

    async def run(self, request: Request, session: Session) -> Response:
        def produce() -> tuple[dict[str, str], bool]:
            return self.run_regions(request, session)

        return _response(self._regions(request, produce))

    async def log(self, request: Request, session: Session) -> Response:
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse

        identity = session.identity
        assert identity is not None
        if not identity.can("logs.read"):
            return PlainTextResponse("this token cannot read logs", status_code=403)
        run_id = check_segment(str(request.path_params["run_id"]), "run id")
        job = check_segment(str(request.path_params["job"]), "job id")
        source = self.web.source(request)
        run = await run_in_threadpool(source.state.get_run, run_id)
        if run is None:
            return PlainTextResponse(f"no run {run_id}", status_code=404)
        logs = source.logs_of(run)
        try:
            after_same = int(request.query_params.get("after_same", "0"))
        except ValueError:
            after_same = 0
        loop = asyncio.get_running_loop()
        arrived: asyncio.Queue[LogRecord | None] = asyncio.Queue()

        def run_done() -> bool:
            current = source.state.get_run(run_id)
            return current is None or current.status in FINAL_RUN_STATUSES

        def deliver(rec: LogRecord | None) -> None:
            loop.call_soon_threadsafe(arrived.put_nowait, rec)

        follower = Follower(
            logs,
            run_id,
            job,
            after_ts=request.query_params.get("after_ts", ""),
            after_same=after_same,
            run_done=run_done,
            deliver=deliver,
        )

        async def events() -> AsyncIterator[str]:
            follower.start()
            checked = time.monotonic()
            try:
                while True:
                    try:
                        first = await asyncio.wait_for(arrived.get(), PING_SECONDS)
                    except TimeoutError:
                        ok, checked = await self._still_in(request, checked)
                        if not ok:
                            yield sse("end", '{"reason": "logged out"}')
                            return
                        yield ": ping\n\n"
                        continue
                    batch = [first]
                    while batch[-1] is not None and len(batch) < MAX_LINES_PER_EVENT:
                        try:
                            batch.append(arrived.get_nowait())
                        except asyncio.QueueEmpty:
                            break
                    records = [r for r in batch if r is not None]
                    if records:
                        html = self.web.render_text("_log_lines.html", lines=records, first=None)
                        yield sse("lines", html)
                    if batch[-1] is None:
                        yield sse("end", "{}")
                        return
            finally:
                follower.stop()

        return _response(events())
