"""The one write a finished run accepts from a token that did not write it: the back link
to a retry (``extra.retried_by``), and only to runs that really are its retries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparkwing.controller.endpoint import Call


def is_retry_link(call: Call, run_id: str, fields: dict[str, Any]) -> bool:
    """Whether ``fields`` only add runs to ``run_id``'s ``extra.retried_by``, each of them
    a run whose own record says it is a retry of ``run_id``."""
    state = call.backend.state
    run = state.get_run(run_id)
    extra = fields.get("extra")
    if run is None or set(fields) != {"extra"} or not isinstance(extra, dict):
        return False
    before = run.extra.get("retried_by", [])
    after = extra.get("retried_by")
    others = {k: v for k, v in extra.items() if k != "retried_by"}
    if others != {k: v for k, v in run.extra.items() if k != "retried_by"}:
        return False
    if not isinstance(after, list) or after[: len(before)] != before or len(after) <= len(before):
        return False
    for added in after[len(before) :]:
        retry = state.get_run(added) if isinstance(added, str) else None
        if retry is None or retry.extra.get("retry_of") != run_id:
            return False
    return True
