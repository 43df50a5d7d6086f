"""The controller's ASGI application: every endpoint description turned into a route, plus
the health check, the OpenAPI document and ``whoami``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.routing import Route

from sparkwing.__about__ import __version__
from sparkwing.controller import (
    routes_cache,
    routes_coord,
    routes_fleet,
    routes_groups,
    routes_hooks,
    routes_jobs,
    routes_logs,
    routes_prune,
    routes_secrets,
    routes_state,
    routes_ticks,
)
from sparkwing.controller import schemas as s
from sparkwing.controller.backend import Backend
from sparkwing.controller.endpoint import ANY_TOKEN, PUBLIC, Call, Endpoint, Reply
from sparkwing.controller.openapi import document
from sparkwing.controller.pipeline import asgi_handler
from sparkwing.controller.routing import route_path

if TYPE_CHECKING:
    from sparkwing.conf.retention import Retention


def healthz(call: Call) -> Any:
    return {"status": "ok", "version": __version__}


def whoami(call: Call) -> Any:
    token = call.token
    assert token is not None  # ANY_TOKEN endpoints always have one
    return {"name": token.name, "id": token.id, "scopes": list(token.scopes)}


META: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/healthz",
        "healthz",
        "Liveness check; needs no token.",
        PUBLIC,
        healthz,
        Reply(200, "The controller is up.", s.HEALTH),
    ),
    Endpoint(
        "GET",
        "/v1/whoami",
        "whoami",
        "The calling token's name and scopes.",
        ANY_TOKEN,
        whoami,
        Reply(200, "The token.", s.WHOAMI),
    ),
)


def endpoints() -> tuple[Endpoint, ...]:
    """Every documented operation (the OpenAPI document itself aside)."""
    return (
        *META,
        *routes_state.ENDPOINTS,
        *routes_coord.ENDPOINTS,
        *routes_fleet.ENDPOINTS,
        *routes_jobs.ENDPOINTS,
        *routes_groups.ENDPOINTS,
        *routes_cache.ENDPOINTS,
        *routes_logs.ENDPOINTS,
        *routes_prune.ENDPOINTS,
        *routes_secrets.ENDPOINTS,
        *routes_ticks.ENDPOINTS,
        *routes_hooks.ENDPOINTS,
    )


def _route_order(ep: Endpoint) -> tuple[int, str]:
    # Parameters match slashes too (see Endpoint.route_path), so a path with more segments
    # must be tried before a shorter one it extends: /runs/{id}/plan before /runs/{id}.
    return (-ep.path.count("/"), ep.path)


def build_app(
    backend: Backend,
    *,
    close_backend: bool = True,
    schedule_poll: float | None = None,
    retention: Retention | None = None,
) -> Starlette:
    """The app serving ``backend``; with ``schedule_poll`` it also fires the schedules of
    the repositories it knows every that many seconds (controller/schedules.py), and with
    ``retention`` it prunes the backend's stores on that schedule while it runs."""
    from starlette.requests import Request
    from starlette.responses import Response

    from sparkwing.controller.endpoint import json_response

    spec = document(endpoints(), __version__)

    async def openapi(request: Request) -> Response:
        return json_response(spec)

    routes = [
        Route(route_path(ep.path), asgi_handler(ep), methods=[ep.method], name=ep.name)
        for ep in sorted(endpoints(), key=_route_order)
    ]
    routes.append(Route("/openapi.json", openapi, methods=["GET"], name="openapi"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        schedules = None
        if schedule_poll is not None:
            from sparkwing.controller.schedules import start_schedules

            schedules = start_schedules(lambda: app.state.backend, schedule_poll)
        pruning = None
        if retention is not None:
            from sparkwing.controller.retention_task import run_schedule

            pruning = asyncio.create_task(run_schedule(app.state.backend, retention))
        try:
            yield
        finally:
            for task in (schedules, pruning):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if close_backend:
                app.state.backend.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.backend = backend
    app.state.endpoints = endpoints()
    # /metrics and the dashboard answer every path no API route takes (the API's route
    # table stays as it is).
    from sparkwing.controller.metrics import attach_metrics
    from sparkwing.dashboard.app import controller_dashboard

    app.router.default = controller_dashboard(app, attach_metrics(app))
    return app
