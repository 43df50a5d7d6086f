"""The controller's ``/metrics`` in the Prometheus text format: runs by status, queue depth,
job durations and request latencies. Reading it needs a token with ``runs.read``."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sparkwing.controller.scopes import allows
from sparkwing.engine.clock import parse_iso
from sparkwing.errors import NotSupportedError
from sparkwing.status import FINAL_RUN_STATUSES, RUN_STATUSES

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from sparkwing.controller.backend import Backend

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ = "runs.read"
WINDOW_HOURS = 24
# Bounds on one scrape's reading, so it stays cheap at any history size.
MAX_COUNTED_RUNS = 50_000
RECENT_RUNS = 200
SEEN_RUNS = 5_000
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))


class Metrics:
    """The registry of one controller app (each app has its own, so several apps in one
    process, as in the tests, never share counts)."""

    def __init__(self, backend: Callable[[], Backend]) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.backend = backend
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "sparkwing_http_request_duration_seconds",
            "Time to answer a request (a live stream: how long it stayed open), by route.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.jobs = Histogram(
            "sparkwing_job_duration_seconds",
            "Duration of finished jobs of recently finished runs, by pipeline and status.",
            ["pipeline", "status"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(self))
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def observe_jobs(self) -> None:
        """Add the jobs of finished runs among the newest ones not counted before."""
        state = self.backend().state
        with self._lock:
            for run in state.list_runs(limit=RECENT_RUNS).runs:
                if run.status not in FINAL_RUN_STATUSES or run.run_id in self._seen:
                    continue
                self._seen[run.run_id] = None
                while len(self._seen) > SEEN_RUNS:
                    self._seen.popitem(last=False)
                for node in state.list_nodes(run.run_id):
                    if node.started_at and node.finished_at:
                        took = parse_iso(node.finished_at) - parse_iso(node.started_at)
                        self.jobs.labels(run.pipeline, node.status).observe(
                            max(took.total_seconds(), 0.0)
                        )

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        self.observe_jobs()
        return generate_latest(self.registry)


class _StoreCollector:
    """Gauges read from the state store at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        state = self.metrics.backend().state
        since = (datetime.now(UTC) - timedelta(hours=WINDOW_HOURS)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        counts = dict.fromkeys(RUN_STATUSES, 0)
        cursor, seen = None, 0
        while seen < MAX_COUNTED_RUNS:
            page = state.list_runs(since=since, limit=1000, cursor=cursor)
            for run in page.runs:
                counts[run.status] = counts.get(run.status, 0) + 1
            seen += len(page.runs)
            cursor = page.next_cursor
            if cursor is None:
                break
        runs = GaugeMetricFamily(
            "sparkwing_runs",
            f"Runs created in the last {WINDOW_HOURS} hours, by status.",
            labels=["status"],
        )
        for status, count in sorted(counts.items()):
            runs.add_metric([status], count)
        yield runs
        queue = state.queue
        if queue is not None:
            try:
                entries = queue.entries(MAX_COUNTED_RUNS)
            except NotSupportedError:
                return
            depth = GaugeMetricFamily(
                "sparkwing_queue_depth",
                "Runs in the queue, waiting or held by a worker.",
                labels=["state"],
            )
            for name in ("queued", "claimed"):
                depth.add_metric([name], sum(1 for e in entries if e.state == name))
            yield depth


class RequestTimer:
    """ASGI middleware timing every HTTP request into ``requests``, labelled by the route
    template (never the path itself: ids would make a series per run)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(scope.get("method", ""), route, str(status)).observe(
                time.perf_counter() - start
            )


def attach_metrics(app: Starlette) -> Route:
    """Time ``app``'s requests; the ``/metrics`` route reading them (and the stores)."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    metrics = Metrics(lambda: app.state.backend)

    async def endpoint(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        header = request.headers.get("authorization", "")
        value = header[7:].strip() if header[:7].lower() == "bearer " else ""
        info = await run_in_threadpool(app.state.backend.tokens.verify, value) if value else None
        if info is None or info.expired():
            return PlainTextResponse(
                "a token is needed", 401, headers={"WWW-Authenticate": 'Bearer realm="sparkwing"'}
            )
        if not allows(info.scopes, READ):
            return PlainTextResponse(f"token {info.name!r} lacks {READ}", 403)
        body = await run_in_threadpool(metrics.text)
        return PlainTextResponse(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.add_middleware(RequestTimer, metrics=metrics)
    return Route("/metrics", endpoint, methods=["GET"], name="metrics")
