"""A finished run takes one write from another token: the back link to a run that really
is its retry (``extra.retried_by``); anything else is refused as before."""

from __future__ import annotations

from tests.controller.harness import Controller, controller, empty_controller
from tests.controller.test_authority import RUN, _create, _run, call

__all__ = ["controller", "empty_controller"]
RETRY = "run-20260301-120500-retr"
STRANGER = "run-20260301-120600-strn"


def test_only_a_real_retry_links_itself_from_a_finished_run(ctl: Controller) -> None:
    owner, other = ctl.token(), ctl.token()
    _create(ctl, owner)
    done = {"fields": {"status": "failed", "extra": {"jobs": 6}}}
    assert call(ctl, owner, "PATCH", f"/v1/runs/{RUN}", done).status_code == 204
    retry = _run(RETRY, extra={"retry_of": RUN})
    assert call(ctl, other, "POST", "/v1/runs", retry).status_code == 201
    assert call(ctl, other, "POST", "/v1/runs", _run(STRANGER)).status_code == 201

    def link(extra: dict[str, object]) -> int:
        got = call(ctl, other, "PATCH", f"/v1/runs/{RUN}", {"fields": {"extra": extra}})
        return got.status_code

    assert link({"jobs": 6, "retried_by": [STRANGER]}) in (403, 409)
    assert link({"jobs": 7, "retried_by": [RETRY]}) in (403, 409)  # changes more than the link
    assert link({"jobs": 6, "retried_by": [RETRY]}) == 204
    assert link({"jobs": 6, "retried_by": []}) in (403, 409)  # a link is never removed
    run = ctl.backend.state.get_run(RUN)
    assert run is not None and run.extra == {"jobs": 6, "retried_by": [RETRY]}
    assert run.status == "failed"
