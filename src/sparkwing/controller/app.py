"""The controller's ASGI application: every endpoint description turned into a route, plus
the health check, the OpenAPI document and ``whoami``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from sparkwing.__about__ import __version__
from sparkwing.controller import (
    routes_cache,
    routes_coord,
    routes_jobs,
    routes_logs,
    routes_secrets,
    routes_state,
)
from sparkwing.controller import schemas as s
from sparkwing.controller.backend import Backend
from sparkwing.controller.endpoint import ANY_TOKEN, PUBLIC, Call, Endpoint, Reply
from sparkwing.controller.openapi import document
from sparkwing.controller.pipeline import asgi_handler
from sparkwing.controller.routing import route_path


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
        *routes_jobs.ENDPOINTS,
        *routes_cache.ENDPOINTS,
        *routes_logs.ENDPOINTS,
        *routes_secrets.ENDPOINTS,
    )


def _route_order(ep: Endpoint) -> tuple[int, str]:
    # Parameters match slashes too (see Endpoint.route_path), so a path with more segments
    # must be tried before a shorter one it extends: /runs/{id}/plan before /runs/{id}.
    return (-ep.path.count("/"), ep.path)


def build_app(backend: Backend, *, close_backend: bool = True) -> Starlette:
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
        try:
            yield
        finally:
            if close_backend:
                app.state.backend.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.backend = backend
    app.state.endpoints = endpoints()
    return app
