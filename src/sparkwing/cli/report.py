"""``sparkwing runs report``: a run as JUnit XML, one test case per job, the format every CI
shows as test results (failures with their reason and the last lines of the job's log)."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sparkwing.cli.common import PROFILE_OPTION, open_state_view
from sparkwing.cli.runlogs import EXCERPT_LINES, open_run_logs
from sparkwing.cli.runref import find_run, run_arg, run_options

if TYPE_CHECKING:
    from sparkwing.surfaces.logs.base import LogStore
    from sparkwing.surfaces.state.base import NodeRecord, RunRecord

# Job statuses that are no test failure: the job did what it should (or was not needed).
_PASSED = ("success", "cached", "reused")
_SKIPPED = ("skipped", "cancelled")


def _seconds(start: str | None, end: str | None) -> float:
    from sparkwing.engine.clock import parse_iso

    if not (start and end):
        return 0.0
    try:
        return max(0.0, (parse_iso(end) - parse_iso(start)).total_seconds())
    except ValueError:
        return 0.0


def _log_tail(logs: LogStore | None, run_id: str, node_id: str) -> str:
    from sparkwing.errors import StorageError
    from sparkwing.surfaces.logs.base import LogQuery

    if logs is None:
        return ""
    try:
        return "\n".join(r.msg for r in logs.read(run_id, node_id, LogQuery(tail=EXCERPT_LINES)))
    except StorageError:
        return ""


def _clean(text: str) -> str:
    # XML 1.0 has no place for most control characters: a job printing one must not make
    # the whole report unreadable.
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else f"\\x{ord(c):02x}" for c in text)


def junit_xml(run: RunRecord, nodes: list[NodeRecord], logs: LogStore | None) -> bytes:
    """The JUnit document of ``run``: one ``<testsuite>`` (the pipeline), one
    ``<testcase>`` per job; failed jobs carry ``<failure>``, skipped and cancelled ones
    ``<skipped>``."""
    suite_time = _seconds(run.started_at, run.finished_at)
    failures = sum(1 for n in nodes if n.status == "failed")
    skipped = sum(1 for n in nodes if n.status in _SKIPPED)
    root = ET.Element("testsuites", name=f"sparkwing {run.pipeline}")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=run.pipeline,
        tests=str(len(nodes)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{suite_time:.3f}",
        timestamp=(run.started_at or run.created_at or "").removesuffix("Z"),
        id=run.run_id,
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", run.run_id), ("status", run.status), ("profile", run.profile)):
        ET.SubElement(props, "property", name=name, value=_clean(str(value or "")))
    for node in nodes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"sparkwing.{run.pipeline}",
            name=node.node_id,
            time=f"{_seconds(node.started_at, node.finished_at):.3f}",
        )
        reason = _clean(node.reason or node.status)
        if node.status == "failed":
            failure = ET.SubElement(case, "failure", message=reason, type="job failed")
            detail = "\n".join(
                p for p in (node.error, _log_tail(logs, run.run_id, node.node_id)) if p
            )
            failure.text = _clean(detail)
        elif node.status in _SKIPPED:
            ET.SubElement(case, "skipped", message=reason)
        elif node.status not in _PASSED:  # a run still going: the job has no result yet
            ET.SubElement(case, "skipped", message=f"not finished ({node.status})")
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file beside it, then rename: a CI reading the file never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # a test report, meant to be read by the CI's other steps
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("report")
@run_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["junit"]),
    default="junit",
    show_default=True,
    help="Report format: JUnit XML, one test case per job.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to FILE (atomically) instead of standard output.",
)
@PROFILE_OPTION
@click.pass_context
def report_cmd(
    ctx: click.Context,
    run_pos: str | None,
    run_opt: str | None,
    fmt: str,
    out: Path | None,
    profile: str | None,
) -> None:
    """A run as a test report (JUnit XML): one test case per job, failures with their reason
    and the last lines of the job's log, skipped and cancelled jobs as skipped."""
    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        nodes = view.state.list_nodes(run.run_id)
        logs = open_run_logs(view, run) if any(n.status == "failed" for n in nodes) else None
        try:
            data = junit_xml(run, nodes, logs)
        finally:
            if logs is not None:
                logs.close()
    if out is None:
        click.echo(data.decode(), nl=False)
        return
    _write_atomically(out, data)
    click.echo(f"wrote {out} ({len(nodes)} test cases)", err=True)
