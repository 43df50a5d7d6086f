"""Security of the dashboard on a real controller, over its whole route table: no session is
a redirect to the login page (or a 401), a form without its session's CSRF token is refused,
a scope the API would refuse is refused here too, and nothing a job prints or returns is
rendered as HTML."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import httpx
from starlette.routing import Route

from tests.controller.routes import VALID
from tests.dashboard.conftest import Site

SAMPLE = {**VALID, "job": "build", "path": "dist/app.txt"}


def _routes(site: Site) -> list[tuple[str, str, str]]:
    """(method, path, name) of every dashboard route, parameters filled in."""
    app: Any = site.ctl.app.router.default
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or route.name in ("dash_login", "dash_login_post"):
            continue
        path = re.sub(r"{(\w+)(:\w+)?}", lambda m: SAMPLE[m.group(1)], route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, path, route.name))
    return found


def test_every_route_without_a_session_goes_to_login_or_is_401(site: Site) -> None:
    routes = _routes(site)
    names = {name for _, _, name in routes}
    assert {"dash_runs", "dash_run", "dash_log", "dash_resolve", "dash_approvals"} <= names
    assert len(routes) >= 18
    with site.client() as client:
        for cookie in (None, "not-a-session"):
            client.cookies.clear()
            if cookie:
                client.cookies.set("sw_session", cookie)
            for method, path, name in routes:
                if name == "metrics":
                    answer = client.request(method, path)
                    assert answer.status_code == 401, path
                    continue
                answer = client.request(
                    method, path, data={"csrf": "x"} if method == "POST" else None
                )
                if method == "GET" and not name.endswith("live"):
                    assert answer.status_code == 303, (path, answer.status_code)
                    assert answer.headers["location"].startswith("/login?next=/")
                else:
                    assert answer.status_code == 401, (method, path, answer.status_code)
                streamed = client.get(path, headers={"Accept": "text/event-stream"})
                if method == "GET":
                    assert streamed.status_code in (401, 303), path
                    assert "text/event-stream" not in streamed.headers.get("content-type", "")


def test_forms_without_a_valid_csrf_token_are_refused(site: Site) -> None:
    proc = site.run("release")
    run = site.newest_run("release")
    site.gate(run.run_id, "approve-prod")
    client, csrf = site.session(site.tokens["ann"])
    gate_path = f"/runs/{run.run_id}/gates/approve-prod/approval"
    with contextlib.closing(client):
        for path in (
            gate_path,
            f"/runs/{run.run_id}/cancel",
            f"/runs/{run.run_id}/retry",
            "/logout",
        ):
            for form in ({}, {"csrf": ""}, {"csrf": csrf[:-2] + "xx"}, {"csrf": "a" * 200}):
                answer = client.post(path, data={**form, "status": "approved"})
                assert answer.status_code == 403, (path, form)
            # The right token sent from another site's page is refused as well.
            other = client.post(
                path,
                data={"csrf": csrf, "status": "approved"},
                headers={"Origin": "https://evil.example"},
            )
            assert other.status_code == 403, path
            # A JSON body (no form) is no form.
            assert client.post(path, json={"csrf": csrf}).status_code == 403
        gates = site.ctl.backend.state.gates
        assert gates is not None
        gate = gates.get(run.run_id, "approve-prod", "approval")
        assert gate is not None and gate.status == "pending"
        assert client.get("/runs").status_code == 200  # still logged in: logout was refused
        done = client.post(gate_path, data={"csrf": csrf, "status": "approved", "comment": "ok"})
        assert done.status_code == 303
    assert site.final(run.run_id).status == "success"
    assert proc.wait(timeout=60) == 0


def test_login_cookie_and_refusals(site: Site) -> None:
    with site.client() as client:
        first = client.get("/login")
        assert first.status_code == 200
        before = first.cookies.get("sw_session")
        csrf = re.search(r'name="csrf" value="([^"]+)"', first.text)
        assert csrf and before
        for token in ("swu_not-a-token", "", "<script>x</script>"):
            bad = client.post("/login", data={"csrf": csrf.group(1), "token": token})
            assert bad.status_code == 401
            assert "unknown or revoked token" in bad.text
            assert "<script>x" not in bad.text
        no_read = site.ctl.token("logs.read", name="logs-only")
        refused = client.post("/login", data={"csrf": csrf.group(1), "token": no_read})
        assert refused.status_code == 401 and "lacks runs.read" in refused.text
        ok = client.post(
            "/login",
            data={"csrf": csrf.group(1), "token": site.tokens["ann"], "next": "https://evil/x"},
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/runs"  # never to another site
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        after = ok.cookies.get("sw_session")
        assert after and after != before  # a new session id at login
        page = client.get("/runs")
        assert page.status_code == 200
        assert site.tokens["ann"] not in page.text
        for header, value in (
            ("content-security-policy", "script-src 'self'"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ):
            assert value in page.headers[header]
        # Revoking the token ends its sessions at once.
        site.ctl.backend.tokens.revoke("ann")
        gone = client.get("/runs")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def test_what_jobs_print_and_return_is_text(site: Site) -> None:
    proc = site.run("chatty")
    run = site.newest_run("chatty")
    site.wait(
        "the job to print",
        lambda: any("<script>" in r.msg for r in site.ctl.backend.logs.read(run.run_id, "talk")),
    )
    site.marker("more-lines")
    assert proc.wait(timeout=60) == 0
    client, _ = site.session(site.tokens["ann"])
    with contextlib.closing(client):
        log = client.get(f"/runs/{run.run_id}/jobs/talk/log")
        assert log.status_code == 200
        assert "&lt;script&gt;alert(&#39;from the log&#39;)&lt;/script&gt;" in log.text
        assert "<script>alert" not in log.text
        page = client.get(f"/runs/{run.run_id}")
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
        assert "<img" not in page.text
        # Only the dashboard's own script tag is on any page.
        assert page.text.count("<script") == 1 and log.text.count("<script") == 1


def test_a_read_only_token_is_refused_every_action(site: Site) -> None:
    proc = site.run("release")
    run = site.newest_run("release")
    site.gate(run.run_id, "approve-prod")
    client, csrf = site.session(site.tokens["viewer"])
    with contextlib.closing(client):
        page = client.get(f"/runs/{run.run_id}")
        assert page.status_code == 200
        assert ">Approve<" not in page.text and "Cancel run" not in page.text
        for path, form in (
            (f"/runs/{run.run_id}/gates/approve-prod/approval", {"status": "approved"}),
            (f"/runs/{run.run_id}/cancel", {}),
            (f"/runs/{run.run_id}/retry", {}),
        ):
            answer = client.post(path, data={"csrf": csrf, **form})
            assert answer.status_code == 403, path
    gates = site.ctl.backend.state.gates
    assert gates is not None
    gates.resolve(run.run_id, "approve-prod", "approval", "denied", "test", "cleanup")
    assert site.final(run.run_id).status == "failed"
    proc.wait(timeout=60)


def test_metrics_need_a_token_and_report_runs_jobs_and_requests(site: Site) -> None:
    site.marker("finish-slow")
    done = site.proj.sw("run", "slow")
    assert done.code == 0, done.err
    with httpx.Client(base_url=site.url, timeout=30) as client:
        assert client.get("/metrics").status_code == 401
        assert (
            client.get("/metrics", headers={"Authorization": "Bearer swu_nope"}).status_code == 401
        )
        logs_only = site.ctl.token("logs.read", name="metrics-logs")
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {logs_only}"})
        assert answer.status_code == 403
        client.get("/healthz")
        reader = site.ctl.token("runs.read", name="prometheus")
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert answer.status_code == 200
        text = answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    success = re.search(r'^sparkwing_runs\{status="success"\} (\d+)', text, re.M)
    assert success and int(float(success.group(1))) >= 1
    assert 'sparkwing_queue_depth{state="queued"} 0.0' in text
    assert re.search(
        r'sparkwing_job_duration_seconds_count\{pipeline="slow",status="success"\} 2', text
    )
    assert (
        'sparkwing_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}'
        in text
    )
