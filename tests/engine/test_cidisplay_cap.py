"""The grouped CI display: held lines are capped per job, and GitHub mode needs GitHub's run id."""

from __future__ import annotations

import io

from sparkwing.engine import cidisplay
from sparkwing.engine.cidisplay import GroupedDisplay, ci_kind
from sparkwing.surfaces.state.base import NodeRecord, RunRecord


def test_github_needs_its_run_id_too() -> None:
    assert ci_kind({"GITHUB_ACTIONS": "true"}) is None
    assert ci_kind({"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "7"}) == "github"
    assert ci_kind({"BUILDKITE": "true"}) == "buildkite"
    assert ci_kind({}) is None


def test_a_chatty_job_keeps_its_head_and_tail_only() -> None:
    out = io.StringIO()
    display = GroupedDisplay("buildkite", stream=out)
    display.start(RunRecord(run_id="r1", pipeline="p"), ["loud"])
    total = cidisplay.HEAD_LINES + cidisplay.TAIL_LINES + 500
    for i in range(total):
        display.notify("log", ("loud", "stdout", f"line {i}"))
    held = display._held["loud"]
    assert len(held.head) + len(held.tail) == cidisplay.HEAD_LINES + cidisplay.TAIL_LINES
    display.notify("node", NodeRecord(run_id="r1", node_id="loud", status="success"))
    text = out.getvalue()
    assert "line 0\n" in text
    assert f"line {total - 1}\n" in text
    assert f"line {cidisplay.HEAD_LINES}\n" not in text
    assert "... 500 lines not shown here; the whole log: sparkwing runs logs r1 --job loud" in text
