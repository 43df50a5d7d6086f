"""Putting the dashboard together: its routes added to the controller's app (logins with API
tokens, the controller's own stores), or a whole app for ``sparkwing dashboard``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from sparkwing.dashboard.auth import OneTimeLogin, TokenLogin
from sparkwing.dashboard.pages import Pages
from sparkwing.dashboard.source import Source, of_backend
from sparkwing.dashboard.web import Web

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from sparkwing.dashboard.source import ProfileSource


def controller_dashboard(app: Starlette, *extra: BaseRoute) -> Starlette:
    """The dashboard of the controller ``app`` (plus ``extra`` routes), as the app its
    router falls back to: stores and tokens are ``app.state.backend`` at each request."""
    from starlette.applications import Starlette

    def source(request: Request) -> Source:
        return of_backend(app.state.backend)

    auth = TokenLogin(lambda: app.state.backend.tokens)
    routes = Pages(Web(source, auth, "sparkwing controller")).routes()
    return Starlette(routes=[*extra, *routes])


def local_app(profile: ProfileSource, login: OneTimeLogin) -> Starlette:
    """``sparkwing dashboard``: a profile's surfaces, one person logged in by the URL."""
    from starlette.applications import Starlette

    opened = profile.open()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            profile.close()

    web = Web(lambda request: opened, login, f"sparkwing dashboard ({profile.resolved.name})")
    return Starlette(routes=Pages(web).routes(), lifespan=lifespan)
