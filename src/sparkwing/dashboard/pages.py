"""The dashboard's pages and buttons: each route gathers its data (``*data`` modules), checks
what the logged-in token may do, and renders a template."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sparkwing.dashboard import actions
from sparkwing.dashboard.logview import PAGE_LINES, read_page
from sparkwing.dashboard.opsdata import (
    approvals_data,
    overview_data,
    pipelines_data,
    queue_data,
    schedules_data,
    workers_data,
)
from sparkwing.dashboard.rundata import artifacts_of, run_data
from sparkwing.dashboard.runsdata import RunFilters, runs_data
from sparkwing.dashboard.web import SECURITY_HEADERS, Web, safe_next
from sparkwing.errors import NotFoundError, SparkwingError, UsageError
from sparkwing.ids import check_segment
from sparkwing.status import RUN_STATUSES

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from sparkwing.dashboard.rundata import RunView
    from sparkwing.dashboard.sessions import Identity, Session
    from sparkwing.dashboard.source import Source
    from sparkwing.dashboard.web import Handler

    Button = Callable[[Source, Identity, Request, dict[str, str]], str]
    ActionHandler = Callable[[Request, Session, dict[str, str]], Response]


def _int(request: Request, name: str, default: int | None) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{name} must be a whole number, not {text!r}") from None


def _path_id(request: Request, name: str, what: str) -> str:
    return check_segment(str(request.path_params[name]), what)


class Pages:
    def __init__(self, web: Web) -> None:
        self.web = web

    # -- runs -----------------------------------------------------------------------------
    def runs(self, request: Request, session: Session) -> Response:
        filters = RunFilters.of(dict(request.query_params))
        view = runs_data(self.web.source(request), filters, request.query_params.get("cursor"))
        live = "/runs/live?" + _query(filters.query()) if view.first_page else ""
        return self.web.render(
            request, session, "runs.html", view=view, statuses=RUN_STATUSES, live=live
        )

    def runs_rows(self, request: Request, session: Session) -> dict[str, str]:
        filters = RunFilters.of(dict(request.query_params))
        view = runs_data(self.web.source(request), filters)
        return {"runs-rows": self.web.render_text("_runs_rows.html", view=view)}

    # -- one run --------------------------------------------------------------------------
    def _run_view(self, request: Request) -> RunView:
        run_id = _path_id(request, "run_id", "run id")
        view = run_data(self.web.source(request), run_id)
        if view is None:
            raise NotFoundError(f"no run {run_id} in {self.web.source(request).state.describe()}")
        return view

    def _run_context(
        self, request: Request, session: Session, view: RunView, artifacts: bool
    ) -> dict[str, Any]:
        identity = session.identity
        assert identity is not None
        files = {}
        if artifacts:
            source = self.web.source(request)
            files = {j.id: artifacts_of(source, view.run, j.artifacts_digest) for j in view.jobs}
        return {
            "view": view,
            "artifacts": files,
            "run": view.run,
            "csrf": session.csrf,
            "can_approve": identity.can(actions.APPROVE),
            "can_write": identity.can(actions.WRITE),
        }

    def run(self, request: Request, session: Session) -> Response:
        view = self._run_view(request)
        return self.web.render(
            request,
            session,
            "run.html",
            live=f"/runs/{view.run.run_id}/live" if view.live else "",
            **self._run_context(request, session, view, artifacts=True),
        )

    def run_regions(self, request: Request, session: Session) -> tuple[dict[str, str], bool]:
        view = self._run_view(request)
        # A live run's artifacts come with its last update (none exist before its jobs end).
        context = self._run_context(request, session, view, artifacts=not view.live)
        regions = {
            name: self.web.render_text(f"_{name}.html", **context)
            for name in ("run-head", "dag", "timeline", "jobs", "gates")
        }
        return regions, view.live

    # -- logs -----------------------------------------------------------------------------
    def log(self, request: Request, session: Session) -> Response:
        identity = session.identity
        assert identity is not None
        actions.require(identity, "logs.read", "read logs")
        run_id = _path_id(request, "run_id", "run id")
        job = _path_id(request, "job", "job id")
        source = self.web.source(request)
        run = source.state.get_run(run_id)
        if run is None:
            raise NotFoundError(f"no run {run_id}")
        page = read_page(
            source.logs_of(run),
            run_id,
            job,
            start=_int(request, "start", None),
            back=_int(request, "back", 0) or 0,
            size=_int(request, "lines", PAGE_LINES) or PAGE_LINES,
        )
        live = ""
        if page.at_end and run.status not in ("success", "failed", "cancelled"):
            ts, same = page.last_position()
            live = f"/runs/{run_id}/jobs/{job}/log/live?" + _query(
                {"after_ts": ts, "after_same": str(same)}
            )
        return self.web.render(request, session, "log.html", run=run, job=job, page=page, live=live)

    def artifact(self, request: Request, session: Session) -> Response:
        from starlette.responses import Response

        from sparkwing.surfaces.cache.content import fetch_blob_bytes, load_manifest

        run_id = _path_id(request, "run_id", "run id")
        job = _path_id(request, "job", "job id")
        wanted = str(request.path_params["path"])
        source = self.web.source(request)
        run = source.state.get_run(run_id)
        node = next((n for n in source.state.list_nodes(run_id) if n.node_id == job), None)
        if run is None or node is None or not node.artifacts or source.cache_of is None:
            raise NotFoundError(f"no artifacts of job {job} in run {run_id}")
        cache = source.cache_of(run)
        entry = next(
            (e for e in load_manifest(cache, node.artifacts) or [] if e.path == wanted), None
        )
        data = fetch_blob_bytes(cache, entry.digest) if entry is not None else None
        if data is None:
            raise NotFoundError(f"job {job} of run {run_id} has no artifact {wanted!r}")
        name = wanted.rsplit("/", 1)[-1].replace('"', "")
        headers = {
            **SECURITY_HEADERS,
            # Never rendered by the browser: an uploaded .html file must not run here.
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        return Response(data, media_type="application/octet-stream", headers=headers)

    # -- other pages ----------------------------------------------------------------------
    def approvals(self, request: Request, session: Session) -> Response:
        identity = session.identity
        assert identity is not None
        return self.web.render(
            request,
            session,
            "approvals.html",
            view=approvals_data(self.web.source(request)),
            can_approve=identity.can(actions.APPROVE),
        )

    def queue(self, request: Request, session: Session) -> Response:
        view = queue_data(self.web.source(request))
        return self.web.render(request, session, "queue.html", view=view)

    def workers(self, request: Request, session: Session) -> Response:
        view = workers_data(self.web.source(request))
        return self.web.render(request, session, "workers.html", view=view)

    def schedules(self, request: Request, session: Session) -> Response:
        source = self.web.source(request)
        rows = pipelines_data(source)
        return self.web.render(
            request, session, "schedules.html", rows=rows, schedules=schedules_data(source)
        )

    def overview(self, request: Request, session: Session) -> Response:
        stats = overview_data(self.web.source(request))
        return self.web.render(request, session, "overview.html", stats=stats)

    # -- buttons --------------------------------------------------------------------------
    def button(self, do: Button) -> ActionHandler:
        """A form's handler: do the action and go back to the page it came from, with its
        outcome shown there; a refused scope is a 403 instead."""
        from starlette.responses import RedirectResponse

        def handler(request: Request, session: Session, form: dict[str, str]) -> Response:
            identity = session.identity
            assert identity is not None
            run_id = _path_id(request, "run_id", "run id")
            try:
                session.flash("ok", do(self.web.source(request), identity, request, form))
            except actions.Forbidden:
                raise
            except SparkwingError as exc:
                session.flash("error", str(exc))
            target = safe_next(form.get("back"), f"/runs/{run_id}")
            return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)

        return handler

    def routes(self) -> list[BaseRoute]:
        from starlette.routing import Route

        from sparkwing.dashboard import live

        web = self.web

        def get(path: str, handler: Handler, name: str) -> Route:
            return Route(path, web.page(handler), methods=["GET"], name=name)

        def post(path: str, do: Button, name: str) -> Route:
            return Route(path, web.action(self.button(do)), methods=["POST"], name=name)

        streams = live.Streams(web, self.runs_rows, self.run_regions)
        return [
            *web.auth_routes(),
            get("/", self.runs, "dash_home"),
            get("/runs", self.runs, "dash_runs"),
            Route("/runs/live", web.stream(streams.runs), methods=["GET"], name="dash_runs_live"),
            get("/runs/{run_id}", self.run, "dash_run"),
            Route(
                "/runs/{run_id}/live", web.stream(streams.run), methods=["GET"], name="dash_live"
            ),
            get("/runs/{run_id}/jobs/{job}/log", self.log, "dash_log"),
            Route(
                "/runs/{run_id}/jobs/{job}/log/live",
                web.stream(streams.log),
                methods=["GET"],
                name="dash_log_live",
            ),
            get("/runs/{run_id}/jobs/{job}/artifacts/{path:path}", self.artifact, "dash_file"),
            post("/runs/{run_id}/gates/{job}/{kind}", _resolve, "dash_resolve"),
            post("/runs/{run_id}/cancel", _cancel, "dash_cancel"),
            post("/runs/{run_id}/retry", _retry, "dash_retry"),
            get("/approvals", self.approvals, "dash_approvals"),
            get("/queue", self.queue, "dash_queue"),
            get("/workers", self.workers, "dash_workers"),
            get("/schedules", self.schedules, "dash_schedules"),
            get("/overview", self.overview, "dash_overview"),
        ]


def _resolve(source: Source, identity: Identity, request: Request, form: dict[str, str]) -> str:
    return actions.resolve_gate(
        source,
        identity,
        _path_id(request, "run_id", "run id"),
        _path_id(request, "job", "job id"),
        str(request.path_params["kind"]),
        form.get("status", ""),
        form.get("comment"),
    )


def _cancel(source: Source, identity: Identity, request: Request, form: dict[str, str]) -> str:
    return actions.cancel(source, identity, _path_id(request, "run_id", "run id"))


def _retry(source: Source, identity: Identity, request: Request, form: dict[str, str]) -> str:
    return actions.retry(source, identity, _path_id(request, "run_id", "run id"))


def _query(values: dict[str, str]) -> str:
    import urllib.parse

    return urllib.parse.urlencode({k: v for k, v in values.items() if v})
