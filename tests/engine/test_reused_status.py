"""`reused` is a final, passing node status wherever statuses are shown: the run's live
display, the GitHub step summary and the JUnit report."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from sparkwing.cli.report import junit_xml
from sparkwing.engine.cidisplay import step_summary
from sparkwing.engine.display import PlainDisplay
from sparkwing.status import FINAL_NODE_STATUSES
from sparkwing.surfaces.state.base import NodeRecord, RunRecord

RUN = RunRecord(run_id="run-20261202-010000-abcd", pipeline="p", status="success")
NODE = NodeRecord(
    run_id=RUN.run_id,
    node_id="build",
    status="reused",
    reason="from run-20261202-000000-wxyz",
    extra={"reused_from": "run-20261202-000000-wxyz"},
)


def test_reused_is_final() -> None:
    assert "reused" in FINAL_NODE_STATUSES


def test_the_plain_display_shows_a_reused_job_and_where_from() -> None:
    out = io.StringIO()
    display = PlainDisplay(out)
    display.start(RUN, ["build"])
    display.notify("node", NODE)
    assert "build" in out.getvalue()
    assert "= reused: from run-20261202-000000-wxyz" in out.getvalue()


def test_the_step_summary_lists_a_reused_job() -> None:
    assert "| `build` | ♻️ reused |" in step_summary(RUN, [NODE])


def test_a_reused_job_passes_in_the_junit_report() -> None:
    suite = ET.fromstring(junit_xml(RUN, [NODE], None)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")
    case = suite.find("testcase")
    assert case is not None and list(case) == []
