"""``sparkwing runs``: list and inspect the runs recorded in the profile's state, and cancel
a live one. Logs and failure reports live in :mod:`sparkwing.cli.runlogs`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import (
    OUTPUT_OPTION,
    PROFILE_OPTION,
    emit_json,
    emit_ndjson,
    job_modifiers,
    open_state_view,
    runner_gone,
    status_colour,
    table,
)
from sparkwing.cli.gates import approvals_group, pauses_group, resume_cmd
from sparkwing.cli.report import report_cmd
from sparkwing.cli.runlogs import errors_cmd, logs_cmd
from sparkwing.cli.runref import explicit_run_options, find_run, run_arg, run_options
from sparkwing.cli.runs_prune import prune_cmd
from sparkwing.cli.runs_wait import wait_cmd
from sparkwing.cli.submit import submit_cmd, waiting_worker
from sparkwing.engine.concurrency import group_wait
from sparkwing.engine.termsafe import safe_text
from sparkwing.status import RUN_STATUSES

if TYPE_CHECKING:
    from sparkwing.surfaces.state.base import NodeRecord, RunRecord


@click.group("runs", context_settings={"help_option_names": ["-h", "--help"]})
def runs_group() -> None:
    """Inspect past and running runs (list, status, get, logs, errors, report, cancel, retry),
    queue runs (submit) and resolve their human gates (approvals, pauses, resume)."""


runs_group.add_command(logs_cmd)
runs_group.add_command(errors_cmd)
runs_group.add_command(report_cmd)
runs_group.add_command(submit_cmd)
runs_group.add_command(wait_cmd)
runs_group.add_command(approvals_group)
runs_group.add_command(pauses_group)
runs_group.add_command(resume_cmd)
runs_group.add_command(prune_cmd)


def _git(run: RunRecord) -> str:
    sha = str(run.git.get("sha") or "")[:7]
    if not sha:
        return "-"
    return sha + ("-dirty" if run.git.get("dirty") else "")


def _started(run: RunRecord) -> str | None:
    return run.started_at or run.created_at or None


@runs_group.command("list")
@click.option("--pipeline", default=None, metavar="NAME", help="Only runs of this pipeline.")
@click.option(
    "--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs with this status."
)
@click.option(
    "--since",
    default=None,
    metavar="T",
    help="Only runs created since T: an age (2h, 7d), a date (2026-11-01) or an ISO time.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    metavar="N",
    help="Show at most N runs, newest first.",
)
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def list_cmd(
    ctx: click.Context,
    pipeline: str | None,
    status: str | None,
    since: str | None,
    limit: int,
    output: str,
    profile: str | None,
) -> None:
    """List runs, newest first (-o json: one run record per line)."""
    from sparkwing.cli.timefmt import ago, elapsed, parse_since

    since_iso = parse_since(since) if since else None
    # A pipeline pinned to its own profile keeps its runs in that profile's state.
    with open_state_view(ctx, profile, pipeline) as view:
        page = view.state.list_runs(pipeline=pipeline, status=status, since=since_iso, limit=limit)
    if output == "json":
        emit_ndjson(r.to_dict() for r in page.runs)
        return
    if not page.runs:
        if pipeline or status or since:
            click.echo(f"no runs match in {view.where}")
        else:
            click.echo("no runs yet; start one with `sparkwing run <pipeline>`")
        return
    rows = [
        (
            r.run_id,
            r.pipeline,
            r.status,
            ago(_started(r)),
            elapsed(_started(r), r.finished_at) if r.started_at else "-",
            _git(r),
            r.trigger,
        )
        for r in page.runs
    ]
    table(
        ["run", "pipeline", "status", "started", "duration", "git", "trigger"],
        rows,
        styles={2: status_colour},
    )
    for r in page.runs:  # what a run that has not started yet waits for
        if group_wait(r):
            click.echo(f"{r.run_id}: {group_wait(r)}")
    if page.next_cursor:
        click.echo(f"({limit} newest shown; --limit N shows more)", err=True)


def _node_rows(nodes: list[NodeRecord], runner: str | None = None) -> list[tuple[Any, ...]]:
    from sparkwing.cli.timefmt import elapsed

    return [
        (
            _job_label(n),
            n.status,
            n.attempt or "-",
            elapsed(n.started_at, n.finished_at) if n.started_at else "-",
            # Where each job ran, when some went to workers (runner: the run's own machine).
            *([str(n.extra.get("worker") or runner)] if runner is not None else []),
            _first_line(n.why(), 90),
        )
        for n in nodes
    ]


def _job_label(node: NodeRecord) -> str:
    """The job's id, and what it is for when it is a failure handler or a finally job."""
    role = node.extra.get("role") if isinstance(node.extra, dict) else None
    return f"{node.node_id} [{role}]" if role else node.node_id


def _first_line(text: str, width: int) -> str:
    # Job text: no control character of it reaches the terminal.
    line = safe_text(text.split("\n", 1)[0])
    return line if len(line) <= width else line[: width - 3] + "..."


@runs_group.command("status")
@run_options
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def status_cmd(
    ctx: click.Context, run_pos: str | None, run_opt: str | None, output: str, profile: str | None
) -> None:
    """A run's status and its jobs (the newest run when none is named)."""
    from sparkwing.cli.timefmt import ago, elapsed

    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        nodes = view.state.list_nodes(run.run_id)
    if output == "json":
        emit_json({"run": run.to_dict(), "nodes": [n.to_dict() for n in nodes]})
        return
    started = _started(run)
    status = run.status + (f": {run.reason}" if run.reason else "")
    fields: list[tuple[str, str]] = [
        ("run", run.run_id),
        ("status", status),
        ("pipeline", run.pipeline),
        ("profile", f"{run.profile} ({run.profile_source})"),
        ("started", f"{_local(started)} ({ago(started)})" if started else "-"),
        ("duration", elapsed(started, run.finished_at) if run.started_at else "-"),
    ]
    if run.git.get("sha"):
        branch = f" on {run.git['branch']}" if run.git.get("branch") else ""
        fields.append(("git", f"{_git(run)}{branch}"))
    if run.source:
        from sparkwing.source.record import describe_source

        fields.append(("source", describe_source(run.source)))
    if run.status == "queued":
        fields.append(("waiting for", waiting_worker(run)))
    if run.host or run.pid:
        fields.append(("runner", f"{run.host or '?'} pid {run.pid or '?'}"))
    fields.append(("trigger", run.trigger))
    if run.args:
        fields.append(("args", " ".join(f"{k}={json.dumps(v)}" for k, v in run.args.items())))
    note = runner_gone(run)
    if note:
        fields.append(("note", note))
    if run.status in ("pending", "running"):
        fields.append(("waiting on", group_wait(run) or _waiting(nodes)))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        text = f"{key.ljust(width)}  {value}"
        if key == "status" and sys.stdout.isatty():
            text = click.style(text, fg=status_colour(run.status))
        click.echo(text)
    if nodes:
        click.echo("")
        runner = (run.host or "runner") if any(n.extra.get("worker") for n in nodes) else None
        where = ["worker"] if runner is not None else []
        table(
            ["job", "status", "attempt", "duration", *where, "reason"],
            _node_rows(nodes, runner),
            styles={1: status_colour},
        )
    notes = [
        (n.node_id, text)
        for n in nodes
        for text in (n.extra.get("annotations") or [] if isinstance(n.extra, dict) else [])
    ]
    if notes:
        click.echo("")
        click.echo("annotations:")
        for node_id, text in notes:
            click.echo(f"  {node_id}: {safe_text(text)}")


def _waiting(nodes: list[NodeRecord]) -> str:
    """What a live run is busy with: its running jobs, then those still queued."""
    parts = []
    for node in nodes:
        gate = node.extra.get("gate") if isinstance(node.extra, dict) else None
        if node.status in ("approval_pending", "paused") and isinstance(gate, dict):
            what = "approval" if node.status == "approval_pending" else "resume"
            parts.append(f"{what} of {node.node_id} ({gate.get('message') or ''})")
    for label, state in (("running", "running"), ("queued", "pending")):
        ids = [n.node_id for n in nodes if n.status == state]
        if ids:
            parts.append(f"{label} {', '.join(ids)}")
    return "; ".join(parts) or "the runner to start its jobs"


def _local(iso: str) -> str:
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


@runs_group.command("get")
@run_options
@click.option("--events", is_flag=True, help="Include the run's event sequence.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def get_cmd(
    ctx: click.Context,
    run_pos: str | None,
    run_opt: str | None,
    events: bool,
    output: str,
    profile: str | None,
) -> None:
    """Everything recorded about a run: its record, plan snapshot, jobs and their outputs."""
    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        plan = view.state.get_plan(run.run_id)
        nodes = view.state.list_nodes(run.run_id)
        history = view.state.list_events(run.run_id) if events else []
    if output == "json":
        doc: dict[str, Any] = {
            "run": run.to_dict(),
            "plan": plan,
            "nodes": [n.to_dict() for n in nodes],
        }
        if events:
            doc["events"] = [e.to_dict() for e in history]
        emit_json(doc)
        return
    record = run.to_dict()
    width = max(len(k) for k in record)
    for key, value in record.items():
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
        if key == "source":
            from sparkwing.source.record import describe_source

            shown = describe_source(run.source)
        click.echo(f"{key.ljust(width)}  {'-' if shown in (None, '') else shown}")
    if plan:
        click.echo("\nplan:")
        for job in plan.get("jobs", []):
            needs = f" needs {', '.join(job['needs'])}" if job.get("needs") else ""
            click.echo(f"  {job.get('id')}{needs}{job_modifiers(job)}")
    for node in nodes:
        click.echo(f"\njob {node.node_id}: {node.status} (attempt {node.attempt})")
        for key in ("reason", "error", "started_at", "finished_at", "memo_key", "artifacts"):
            value = getattr(node, key)
            if value:
                click.echo(f"  {key}: {value}")
        if node.output is not None:
            click.echo(f"  output: {json.dumps(node.output, default=str)}")
        for key, value in (node.extra or {}).items():
            click.echo(f"  {key}: {json.dumps(value, default=str)}")
    for event in history:
        about = f" {event.node_id}" if event.node_id else ""
        data = f" {json.dumps(event.data, default=str)}" if event.data else ""
        click.echo(f"event {event.seq} {event.ts} {event.kind}{about}{data}")


@runs_group.command("retry")
@run_options
@PROFILE_OPTION
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Choice(["auto", "plain", "json", "quiet"]),
    default="auto",
    show_default=True,
    help="Progress of the new run, as for `sparkwing run`.",
)
@click.option(
    "--failed",
    is_flag=True,
    help="Run again only the jobs that failed or were cancelled (and their dependants "
    "that did not succeed); the others are `reused`: their outputs and artifacts come "
    "from the earlier run.",
)
@click.pass_context
def retry_cmd(
    ctx: click.Context,
    run_pos: str | None,
    run_opt: str | None,
    profile: str | None,
    output: str,
    failed: bool,
) -> int:
    """Run a past run's pipeline again (the newest run when none is named), in this
    project, with the same inputs and profile: a new run whose trigger is `retry`, linked
    to the earlier one (`extra.retry_of`, and `extra.retried_by` there). Exit codes as for
    `sparkwing run`."""
    from sparkwing.cli.run import run_cmd
    from sparkwing.errors import UsageError
    from sparkwing.status import FINAL_RUN_STATUSES

    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        nodes = view.state.list_nodes(run.run_id) if failed else []
    if failed and run.status not in FINAL_RUN_STATUSES:
        raise click.UsageError(f"run {run.run_id} is still {run.status}: retry it once it ended")
    if failed and not any(n.status in ("failed", "cancelled") for n in nodes):
        raise UsageError(
            f"run {run.run_id} has no failed or cancelled job to run again "
            "(without --failed, `runs retry` runs everything again)"
        )
    code: int = ctx.invoke(
        run_cmd,
        pipeline=run.pipeline,
        pipeline_args=tuple(input_flags(run.args)),
        profile=profile or run.profile,
        output=output,
        trigger="retry",
        retry_of=run.run_id,
        retry_failed=failed,
    )
    return code


def input_flags(args: dict[str, Any]) -> list[str]:
    """A run's recorded inputs as the CLI flags that give them again."""
    from sparkwing.sdk.inputs import MASK

    flags: list[str] = []
    for name, value in args.items():
        if value == MASK:
            continue  # a secret input given as a value was never recorded: it is asked for again
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, list):
            for item in value:
                flags += [flag, str(item)]
        elif value is not None:
            flags += [flag, value if isinstance(value, str) else json.dumps(value)]
    return flags


@runs_group.command("cancel")
@explicit_run_options
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def cancel_cmd(
    ctx: click.Context, run_pos: str | None, run_opt: str | None, output: str, profile: str | None
) -> None:
    """Cancel a run: one still waiting in the queue (`runs submit`) is never started; one
    live on this machine has its runner stop every job and record them cancelled. The run
    must be named (`--run latest` for the newest): nothing is cancelled by default."""
    from sparkwing.cli.gates import who
    from sparkwing.engine.cancel import cancel_run

    ref = run_arg(run_pos, run_opt)
    if ref is None:
        raise click.UsageError("name the run to cancel: RUN, --run ID or --run latest")
    with open_state_view(ctx, profile) as view:
        run = find_run(view, ref)
        final = cancel_run(view.state, run, who=who(), where=view.where)
    _print_cancelled(final, output)


def _print_cancelled(run: RunRecord, output: str) -> None:
    if output == "json":
        emit_json(run.to_dict())
        return
    reason = f": {run.reason}" if run.reason else ""
    click.echo(f"run {run.run_id} {run.status}{reason}")
