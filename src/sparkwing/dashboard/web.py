"""The dashboard's HTTP side: its Starlette routes, login and sessions, CSRF checks on every
form, and the rendering of pages (Jinja2, autoescaped) with the security headers they carry."""

from __future__ import annotations

import hmac
import logging
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sparkwing.dashboard.auth import Authenticator, LoginRefused
from sparkwing.dashboard.sessions import COOKIE, Session, Sessions

if TYPE_CHECKING:
    from jinja2 import Environment
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from sparkwing.dashboard.source import Source

log = logging.getLogger("sparkwing.dashboard")

HERE = Path(__file__).parent
MAX_FORM_BYTES = 64 * 1024
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A one-time token may be in the URL of the first page: never send it elsewhere.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
NAV = (
    ("runs", "/runs", "Runs"),
    ("approvals", "/approvals", "Approvals"),
    ("queue", "/queue", "Queue"),
    ("workers", "/workers", "Workers"),
    ("schedules", "/schedules", "Schedules"),
    ("overview", "/overview", "Overview"),
)

Handler = Callable[["Request", Session], "Response"]
AsyncHandler = Callable[["Request", Session], Awaitable["Response"]]


def make_env() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from sparkwing.dashboard import filters

    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        # Every value is escaped, whatever a template does: a job printing <script> shows it.
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters.FILTERS)
    env.globals["NAV"] = NAV
    return env


def safe_next(target: str | None, default: str = "/runs") -> str:
    """A local path to go back to: anything naming another site (or odd) is ``default``."""
    if not target:
        return default
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or "\\" in target:
        return default
    if parts.path.startswith("//"):
        return default
    return target


class Web:
    """Renders pages and runs the login/session/CSRF machinery around handlers."""

    def __init__(
        self, source: Callable[[Request], Source], auth: Authenticator, title: str
    ) -> None:
        self.source = source
        self.auth = auth
        self.title = title
        self.sessions = Sessions()
        self.env = make_env()

    # -- rendering ------------------------------------------------------------------------
    def render_text(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)

    def render(
        self,
        request: Request,
        session: Session | None,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        from starlette.responses import HTMLResponse

        page: dict[str, Any] = {
            "title": self.title,
            "identity": session.identity if session else None,
            "csrf": session.csrf if session else "",
            "flashes": session.take_flashes() if session else [],
            "path": request.url.path,
        }
        page.update(context)
        body = self.render_text(template, **page)
        return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)

    def error(
        self, request: Request, session: Session | None, status: int, message: str
    ) -> Response:
        return self.render(
            request, session, "error.html", status=status, status_code=status, message=message
        )

    # -- sessions -------------------------------------------------------------------------
    def _cookie(self, request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.sid,
            max_age=int(self.sessions.lifetime),
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def session_of(self, request: Request) -> Session | None:
        """The request's logged-in session (checked again against the authenticator)."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None or session.identity is None:
            return None
        identity = self.auth.still_valid(session)
        if identity is None:
            self.sessions.drop(session.sid)
            return None
        session.identity = identity
        return session

    def _anonymous(self, request: Request) -> Session:
        """The visitor's pre-login session (it carries the login form's CSRF token)."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        return session if session is not None else self.sessions.new()

    def _log_in(self, request: Request, value: str, target: str) -> Response:
        from starlette.responses import RedirectResponse

        identity, credential = self.auth.login(value)
        old = request.cookies.get(COOKIE)
        if old:
            self.sessions.drop(old)  # a new id at login: a planted cookie gains nothing
        session = self.sessions.new(identity, credential)
        response = RedirectResponse(safe_next(target), status_code=303, headers=SECURITY_HEADERS)
        self._cookie(request, response, session)
        return response

    # -- wrappers -------------------------------------------------------------------------
    def _refuse(self, request: Request, page: bool = True) -> Response:
        """No session: a page goes to the login form; a form post or a stream is a 401."""
        from starlette.responses import PlainTextResponse, RedirectResponse

        if page and request.method == "GET":
            target = urllib.parse.quote(request.url.path, safe="/")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return PlainTextResponse("log in first", status_code=401, headers=SECURITY_HEADERS)

    async def _url_login(self, request: Request) -> Response | None:
        from starlette.concurrency import run_in_threadpool

        value = request.query_params.get("token")
        if not self.auth.url_login or not value:
            return None
        try:
            return await run_in_threadpool(self._log_in, request, value, request.url.path)
        except LoginRefused as exc:
            return self.render(
                request,
                None,
                "login.html",
                status=401,
                error=str(exc),
                next="/",
                url_login=True,
            )

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A GET page for a logged-in session; the handler runs off the event loop."""
        from starlette.concurrency import run_in_threadpool

        async def endpoint(request: Request) -> Response:
            via_url = await self._url_login(request)
            if via_url is not None:
                return via_url
            session = await run_in_threadpool(self.session_of, request)
            if session is None:
                return self._refuse(request)
            return await run_in_threadpool(self._guarded, handler, request, session)

        return endpoint

    def stream(self, handler: AsyncHandler) -> Callable[[Request], Awaitable[Response]]:
        """A live (SSE) endpoint for a logged-in session."""
        from starlette.concurrency import run_in_threadpool

        async def endpoint(request: Request) -> Response:
            session = await run_in_threadpool(self.session_of, request)
            if session is None:
                return self._refuse(request, page=False)
            return await handler(request, session)

        return endpoint

    def action(
        self, handler: Callable[[Request, Session, dict[str, str]], Response]
    ) -> Callable[[Request], Awaitable[Response]]:
        """A form POST: a logged-in session, a same-origin request and its CSRF token."""
        from starlette.concurrency import run_in_threadpool

        async def endpoint(request: Request) -> Response:
            session = await run_in_threadpool(self.session_of, request)
            if session is None:
                return self._refuse(request)
            form = await read_form(request)
            if form is None or not self.csrf_ok(request, session, form):
                return self.error(request, session, 403, "this form has expired: reload the page")
            return await run_in_threadpool(self._guarded_action, handler, request, session, form)

        return endpoint

    def csrf_ok(self, request: Request, session: Session, form: dict[str, str]) -> bool:
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin != _origin_of(request):
            return False
        return hmac.compare_digest(form.get("csrf", ""), session.csrf)

    def _guarded(self, handler: Handler, request: Request, session: Session) -> Response:
        try:
            return handler(request, session)
        except Exception as exc:
            return self._failure(request, session, exc)

    def _guarded_action(
        self,
        handler: Callable[[Request, Session, dict[str, str]], Response],
        request: Request,
        session: Session,
        form: dict[str, str],
    ) -> Response:
        try:
            return handler(request, session, form)
        except Exception as exc:
            return self._failure(request, session, exc)

    def _failure(self, request: Request, session: Session, exc: Exception) -> Response:
        from sparkwing.dashboard.actions import Forbidden
        from sparkwing.errors import (
            InvalidKeyError,
            NotFoundError,
            NotSupportedError,
            PreconditionFailedError,
            SparkwingError,
            UsageError,
        )

        if isinstance(exc, Forbidden):
            return self.error(request, session, 403, str(exc))
        if isinstance(exc, NotFoundError):
            return self.error(request, session, 404, str(exc))
        if isinstance(exc, UsageError | InvalidKeyError):
            return self.error(request, session, 400, str(exc))
        if isinstance(exc, PreconditionFailedError):
            return self.error(request, session, 409, str(exc))
        if isinstance(exc, NotSupportedError):
            return self.error(request, session, 501, str(exc))
        if isinstance(exc, SparkwingError):
            return self.error(request, session, 502, str(exc))
        log.exception("dashboard page %s failed", request.url.path)
        return self.error(request, session, 500, "internal error (the server log says more)")

    # -- login routes ---------------------------------------------------------------------
    def login_page(self, request: Request) -> Response:
        session = self._anonymous(request)
        response = self.render(
            request,
            session,
            "login.html",
            error=None,
            next=safe_next(request.query_params.get("next")),
            url_login=self.auth.url_login,
        )
        self._cookie(request, response, session)
        return response

    async def login_post(self, request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        session = self.sessions.get(request.cookies.get(COOKIE))
        form = await read_form(request)
        if session is None or form is None or not self.csrf_ok(request, session, form):
            return self.error(request, None, 403, "this form has expired: reload the page")
        target = safe_next(form.get("next"))
        try:
            return await run_in_threadpool(self._log_in, request, form.get("token", ""), target)
        except LoginRefused as exc:
            response = self.render(
                request,
                session,
                "login.html",
                status=401,
                error=str(exc),
                next=target,
                url_login=self.auth.url_login,
            )
            return response

    async def logout(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None or session.identity is None:
            return self._refuse(request)
        form = await read_form(request)
        if form is None or not self.csrf_ok(request, session, form):
            return self.error(request, session, 403, "this form has expired: reload the page")
        self.sessions.drop(session.sid)
        response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    def auth_routes(self) -> list[BaseRoute]:
        from starlette.concurrency import run_in_threadpool
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        async def login_get(request: Request) -> Response:
            return await run_in_threadpool(self.login_page, request)

        return [
            Route("/login", login_get, methods=["GET"], name="dash_login"),
            Route("/login", self.login_post, methods=["POST"], name="dash_login_post"),
            Route("/logout", self.logout, methods=["POST"], name="dash_logout"),
            Mount("/static", StaticFiles(directory=str(HERE / "static")), name="dash_static"),
        ]


def _origin_of(request: Request) -> str:
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


async def read_form(request: Request) -> dict[str, str] | None:
    """An urlencoded form body as a dict (last value wins); None if too big or malformed."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    return dict(pairs)
