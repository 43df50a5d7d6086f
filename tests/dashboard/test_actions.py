"""The dashboard's cancel and retry buttons on a real controller: the API's rules (runs.write,
and only a run the token created, unless admin), recorded under the token's name."""

from __future__ import annotations

import contextlib
import re

from tests.dashboard.conftest import Site


def _flash(html: str) -> str:
    found = re.search(r'class="flash flash-(\w+)" role="status">([^<]*)<', html)
    assert found, html[:2000]
    return f"{found.group(1)}: {found.group(2)}"


def test_cancel_and_retry_a_queued_run(site: Site) -> None:
    submitted = site.proj.sw("runs", "submit", "slow")
    assert submitted.code == 0, submitted.err
    run_id = submitted.out.strip()
    state = site.ctl.backend.state
    queue = state.queue
    assert queue is not None
    ann, ann_csrf = site.session(site.tokens["ann"])
    admin, admin_csrf = site.session(site.ctl.token("admin", name="ops"))
    with contextlib.closing(ann), contextlib.closing(admin):
        page = ann.get(f"/runs/{run_id}")
        assert "Cancel run" in page.text
        # The runner's token submitted it: another person's token may not cancel it.
        refused = ann.post(f"/runs/{run_id}/cancel", data={"csrf": ann_csrf})
        assert refused.status_code == 403 and "did not create or claim" in refused.text
        done = admin.post(f"/runs/{run_id}/cancel", data={"csrf": admin_csrf})
        assert done.status_code == 303 and done.headers["location"] == f"/runs/{run_id}"
        shown = admin.get(done.headers["location"])
        assert _flash(shown.text) == f"ok: run {run_id} cancelled: cancelled by ops while queued"
        cancelled = state.get_run(run_id)
        assert cancelled is not None and cancelled.status == "cancelled"

        assert "Retry run" in shown.text
        again = ann.post(f"/runs/{run_id}/retry", data={"csrf": ann_csrf})
        assert again.status_code == 303
        message = _flash(ann.get(again.headers["location"]).text)
        found = re.fullmatch(rf"ok: queued (\S+), a retry of {run_id}", message)
        assert found, message
        retry = state.get_run(found.group(1))
        assert retry is not None
        assert (retry.status, retry.trigger, retry.pipeline) == ("queued", "retry", "slow")
        assert retry.extra["submitted_by"] == "ann" and retry.extra["retry_of"] == run_id
        assert queue.spec_of(retry.run_id) == queue.spec_of(run_id)
        # As through the API, the token that queued it may now cancel it.
        assert site.ctl.backend.owners.of(retry.run_id) == {"ann": {"created"}}
        assert ann.post(f"/runs/{retry.run_id}/cancel", data={"csrf": ann_csrf}).status_code == 303
        final = state.get_run(retry.run_id)
        assert final is not None and final.status == "cancelled"


def test_a_run_started_from_a_terminal_is_retried_there(site: Site) -> None:
    site.marker("finish-slow")
    assert site.proj.sw("run", "slow").code == 0
    run = site.newest_run("slow")
    ann, csrf = site.session(site.tokens["ann"])
    with contextlib.closing(ann):
        page = ann.get(f"/runs/{run.run_id}")
        assert "Retry run" not in page.text  # nothing to re-queue
        answer = ann.post(f"/runs/{run.run_id}/retry", data={"csrf": csrf})
        assert answer.status_code == 303
        message = _flash(ann.get(answer.headers["location"]).text)
        assert message == (
            f"error: run {run.run_id} was started from a terminal, not the queue: retry it "
            f"with `sparkwing runs retry {run.run_id}` in its project"
        )
    assert [r.run_id for r in site.ctl.backend.state.list_runs(limit=5).runs] == [run.run_id]
