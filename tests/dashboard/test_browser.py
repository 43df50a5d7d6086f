"""The dashboard in a real browser (Debian's chromium through Playwright) against a real
controller with runs made by the real CLI: a run appears and turns green live, its DAG and a
running job's followed log, approving a waiting gate, a read-only token refused the button;
axe-core finds no serious or critical problem on any page, in either theme."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.dashboard.conftest import Site, assert_accessible, log_in

# Set to a folder (docs/img) to write the README's screenshots while the tests run.
SCREENSHOTS = os.environ.get("SPARKWING_DASHBOARD_SCREENSHOTS")


def _shoot(page: Any, name: str) -> None:
    if not SCREENSHOTS:
        return
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}-{scheme}.png"), full_page=True)
    page.emulate_media(color_scheme="light")


def test_a_run_appears_turns_green_live_and_shows_its_dag(
    site: Site, page: Any, axe_source: str
) -> None:
    if SCREENSHOTS:  # a few finished runs, for a fuller picture
        site.marker("more-lines")
        for _ in range(3):
            assert site.proj.sw("run", "chatty").code == 0
    log_in(page, site.url, site.tokens["ann"])
    assert_accessible(page, axe_source)
    proc = site.run("slow")
    row = page.locator("#runs-rows tr", has_text="slow")
    expect(row.locator(".badge")).to_have_text("running")
    run = site.newest_run("slow")
    assert run.status == "running"
    site.marker("finish-slow")
    # No reload: the table is updated over the page's event stream.
    expect(row.locator(".badge")).to_have_text("success")
    assert proc.wait(timeout=60) == 0
    _shoot(page, "runs")

    page.click(f"text={run.run_id}")
    page.wait_for_url(f"{site.url}/runs/{run.run_id}")
    dag = page.locator("svg.dag")
    expect(dag).to_be_visible()
    for job in ("prepare", "work"):
        expect(dag.locator(f'g.node[data-job="{job}"]')).to_have_attribute("data-status", "success")
    assert dag.locator("path.edge").count() == 1  # work needs prepare
    expect(page.locator("svg.gantt g.bar")).to_have_count(2)
    assert_accessible(page, axe_source)


def test_following_a_running_jobs_log(site: Site, page: Any, axe_source: str) -> None:
    log_in(page, site.url, site.tokens["ann"])
    proc = site.run("chatty")
    run = site.newest_run("chatty")
    site.wait(
        "the job to print",
        lambda: any("<script>" in r.msg for r in site.ctl.backend.logs.read(run.run_id, "talk")),
    )
    page.goto(f"{site.url}/runs/{run.run_id}")
    expect(page.locator('svg.dag g.node[data-job="talk"]')).to_have_attribute(
        "data-status", "running"
    )
    page.click('a[href$="/jobs/talk/log"]')
    lines = page.locator("#log-lines")
    expect(lines).to_contain_text("line 49")
    # What a job prints is text on the page, never markup that runs.
    expect(lines).to_contain_text("<script>alert('from the log')</script>")
    assert page.locator("#log-lines script").count() == 0
    assert_accessible(page, axe_source)
    site.marker("more-lines")
    expect(lines).to_contain_text("after the marker")  # appended live, no reload
    expect(page.locator("#log-state")).to_have_text("the run has finished")
    assert lines.locator(".ln", has_text="after the marker").count() == 1
    assert proc.wait(timeout=60) == 0
    page.goto(f"{site.url}/runs/{run.run_id}")
    expect(page.locator("pre.output")).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.locator("#jobs img").count() == 0
    assert page.dialogs == []


def test_approving_a_waiting_gate_lets_the_run_continue(
    site: Site, page: Any, axe_source: str
) -> None:
    log_in(page, site.url, site.tokens["ann"])
    proc = site.run("release")
    run = site.newest_run("release")
    site.gate(run.run_id, "approve-prod")
    page.goto(f"{site.url}/approvals")
    gate = page.locator(".gate", has_text="approve-prod")
    expect(gate).to_contain_text("ship to prod?")
    assert_accessible(page, axe_source)
    page.goto(f"{site.url}/runs/{run.run_id}")
    expect(page.locator('svg.dag g.node[data-job="approve-prod"]')).to_have_attribute(
        "data-status", "approval_pending"
    )
    _shoot(page, "run")
    form = page.locator("#gates form.decide")
    form.locator("input[name=comment]").fill("ship it")
    form.locator("button[value=approved]").click()
    expect(page.locator(".flash-ok")).to_contain_text("approved by ann")
    # The run goes on: the page follows it to the end.
    expect(page.locator("#run-head .badge")).to_have_text("success")
    expect(page.locator('svg.dag g.node[data-job="deploy"]')).to_have_attribute(
        "data-status", "success"
    )
    assert proc.wait(timeout=60) == 0
    gates = site.ctl.backend.state.gates
    assert gates is not None
    resolved = gates.get(run.run_id, "approve-prod", "approval")
    assert resolved is not None
    assert (resolved.status, resolved.resolved_by, resolved.comment) == (
        "approved",
        "ann",
        "ship it",
    )


def test_a_read_only_token_sees_no_buttons_and_is_refused(
    site: Site, page: Any, axe_source: str
) -> None:
    log_in(page, site.url, site.tokens["viewer"])
    expect(page.locator("header .who")).to_contain_text("viewer (read-only)")
    proc = site.run("release")
    run = site.newest_run("release")
    site.gate(run.run_id, "approve-prod")
    page.goto(f"{site.url}/runs/{run.run_id}")
    expect(page.locator("#gates .gate")).to_contain_text("needs the runs.approve scope")
    assert page.locator("button", has_text="Approve").count() == 0
    assert page.locator("button", has_text="Cancel run").count() == 0
    assert_accessible(page, axe_source)
    # The form posted anyway, with the session's own CSRF token: refused by the server.
    csrf = page.locator("header input[name=csrf]").get_attribute("value")
    answer = page.request.post(
        f"{site.url}/runs/{run.run_id}/gates/approve-prod/approval",
        form={"csrf": csrf or "", "status": "approved", "comment": "sneaky"},
    )
    assert answer.status == 403
    assert "runs.approve" in answer.text()
    cancel = page.request.post(f"{site.url}/runs/{run.run_id}/cancel", form={"csrf": csrf or ""})
    assert cancel.status == 403
    gates = site.ctl.backend.state.gates
    assert gates is not None
    still = gates.get(run.run_id, "approve-prod", "approval")
    assert still is not None and still.status == "pending"
    gates.resolve(run.run_id, "approve-prod", "approval", "denied", "test", None)
    assert site.final(run.run_id).status == "failed"
    proc.wait(timeout=60)


def test_the_other_pages_are_accessible(site: Site, page: Any, axe_source: str) -> None:
    page.goto(site.url + "/login")
    assert_accessible(page, axe_source)
    log_in(page, site.url, site.tokens["ann"])
    for path in ("/queue", "/workers", "/schedules", "/overview", "/approvals"):
        page.goto(site.url + path)
        expect(page.locator("h1")).to_be_visible()
        assert_accessible(page, axe_source)
    toggle = page.locator("#theme-toggle")
    expect(toggle).to_be_visible()
    toggle.click()
    assert page.evaluate("document.documentElement.dataset.theme") in ("dark", "light")
