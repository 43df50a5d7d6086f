"""Fixtures of the dashboard tests: a controller (served from this process) with the
dashboard, a project whose runs go through it with the real CLI, people's tokens, and
Debian's chromium driven by Playwright with axe-core injected into every page checked."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparkwing.surfaces.state.base import Gate, RunRecord
from tests.controller.harness import ALL_SCOPES, Controller, controller, local_profile
from tests.engine.swtest import Proj
from tests.servers import server

__all__ = ["controller"]

PIPES = """
import time
from pathlib import Path


def wait_for(ctx, name):
    # The test creates the marker when it has seen what it wants to see first.
    marker = Path(ctx.workdir) / name
    while not marker.exists():
        time.sleep(0.05)


def work(ctx):
    print("working")
    wait_for(ctx, "finish-slow")
    print("done")


@sw.pipeline("slow")
def slow(plan, args, rc):
    first = plan.job("prepare", "echo preparing")
    plan.job("work", work).needs(first)


def chatty(ctx):
    for i in range(50):
        print(f"line {i}")
    print("<script>alert('from the log')</script>")
    wait_for(ctx, "more-lines")
    print("after the marker")
    return {"note": "<img src=x onerror=alert(1)>"}


@sw.pipeline("chatty")
def chatty_plan(plan, args, rc):
    plan.job("talk", chatty)


@sw.pipeline("release")
def release(plan, args, rc):
    build = plan.job("build", "echo building")
    gate = plan.approval("approve-prod", message="ship to prod?").needs(build)
    plan.job("deploy", "echo deploying").needs(gate)
"""

PERSON = ("runs.read", "runs.write", "runs.approve", "logs.read")
VIEWER = ("runs.read", "logs.read")
WAIT_SECONDS = 60.0


@dataclass
class Site:
    """The controller, its dashboard's URL, a project running through it, and tokens."""

    ctl: Controller
    proj: Proj
    url: str
    tokens: dict[str, str]

    def run(self, pipeline: str) -> Any:
        return self.proj.popen("run", pipeline, "-o", "plain")

    def marker(self, name: str) -> None:
        (self.proj.root / name).write_text("go\n")

    def wait(self, what: str, found: Callable[[], Any]) -> Any:
        """Poll ``found`` until it gives something (a run starting takes a few seconds)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            value = found()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"gave up waiting for {what}")

    def newest_run(self, pipeline: str) -> RunRecord:
        state = self.ctl.backend.state
        return self.wait(
            f"a run of {pipeline}",
            lambda: next(iter(state.list_runs(pipeline=pipeline, limit=1).runs), None),
        )

    def gate(self, run_id: str, node: str) -> Gate:
        gates = self.ctl.backend.state.gates
        assert gates is not None
        return self.wait(f"the gate {node}", lambda: gates.get(run_id, node, "approval"))

    def final(self, run_id: str) -> RunRecord:
        state = self.ctl.backend.state
        return self.wait(
            f"run {run_id} to end",
            lambda: (
                (r := state.get_run(run_id))
                and r.status in ("success", "failed", "cancelled")
                and r
            ),
        )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)

    def session(self, token: str) -> tuple[httpx.Client, str]:
        """A logged-in HTTP client and its CSRF token (read from the page, as a browser)."""
        client = self.client()
        form = client.get("/login")
        csrf = _csrf(form.text)
        done = client.post("/login", data={"csrf": csrf, "token": token, "next": "/runs"})
        assert done.status_code == 303, done.text
        page = client.get("/runs")
        assert page.status_code == 200
        return client, _csrf(page.text)


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def site(controller: Controller, tmp_path: Path) -> Iterator[Site]:
    controller.reset(local_profile(tmp_path / "controller"))
    proj = Proj(tmp_path)
    runner = controller.token(*(s for s in ALL_SCOPES if s != "runs.approve"), name="runner")
    tokens = {
        "ann": controller.token(*PERSON, name="ann"),
        "viewer": controller.token(*VIEWER, name="viewer"),
    }
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(
        f"profiles:\n  team:\n    controller: {{url: '{controller.url}', token: '{runner}'}}\n"
    )
    proj.env["SPARKWING_PROFILES"] = str(profiles)
    proj.env["SPARKWING_PROFILE"] = "team"
    proj.pipeline(PIPES)
    try:
        yield Site(controller, proj, controller.url, tokens)
    finally:
        for marker in ("finish-slow", "more-lines"):
            (proj.root / marker).write_text("go\n")
        proj.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium (never Playwright's own download, which is not reachable)."""
    path = server("chromium")
    from playwright.sync_api import expect, sync_playwright

    # Waits, not timings: a run starting on a loaded machine may take many seconds.
    expect.set_options(timeout=WAIT_SECONDS * 1000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def axe_source() -> str:
    return Path(server("axe")).read_text(encoding="utf-8")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_SECONDS * 1000)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()


def log_in(page: Any, url: str, token: str) -> None:
    page.goto(url + "/runs")
    assert "/login" in page.url
    page.fill("#token", token)
    page.click("form.login button[type=submit]")
    page.wait_for_url(url + "/runs")


AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))
  }));
}"""


def assert_accessible(page: Any, axe: str) -> None:
    """No serious or critical axe-core violation on the page, in the light and dark theme."""
    try:
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            if not page.evaluate("() => typeof window.axe !== 'undefined'"):
                page.evaluate(axe)
            violations = page.evaluate(AXE_RUN)
            bad = [v for v in violations if v["impact"] in ("serious", "critical")]
            assert bad == [], (page.url, scheme, bad)
    finally:
        page.emulate_media(color_scheme="light")
