"""``sparkwing runs logs`` and ``runs errors``: a run's job logs, read from wherever the run
recorded them, filtered, or followed live until the run finishes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from sparkwing.cli.common import OUTPUT_OPTION, PROFILE_OPTION, emit_json, open_state_view
from sparkwing.cli.runref import find_run, run_arg, run_options

if TYPE_CHECKING:
    from sparkwing.cli.common import StateView
    from sparkwing.surfaces.logs.base import LogQuery, LogRecord, LogStore
    from sparkwing.surfaces.state.base import RunRecord

EXCERPT_LINES = 20
HOLD_SECONDS = 1.0  # how long a followed line may wait for earlier ones
POLL_SECONDS = 0.25


def open_run_logs(view: StateView, run: RunRecord) -> LogStore:
    """The logs surface the run wrote to (its record's ``surfaces["logs"]``), so logs are
    found whatever profile or prefix wrote them; the current profile's logs otherwise."""
    from sparkwing.cli.common import surface_spec
    from sparkwing.surfaces.open import open_logs
    from sparkwing.surfaces.spec import SurfaceSpec

    recorded = run.surfaces.get("logs") if isinstance(run.surfaces, dict) else None
    # A controller location needs the current profile's url and token, which records omit.
    if isinstance(recorded, dict) and recorded.get("type") not in (None, "controller"):
        spec = SurfaceSpec.from_record(recorded)
    else:
        spec = surface_spec(
            view.resolved, "logs", run_id=run.run_id, pipeline=run.pipeline, profile=run.profile
        )
    return open_logs(spec)


def stream_ids(view: StateView, logs: LogStore, run: RunRecord) -> list[str]:
    """The run's jobs in plan order, then any other streams its logs hold."""
    ids = [n.node_id for n in view.state.list_nodes(run.run_id)]
    known = set(ids)
    return ids + [n for n in logs.nodes(run.run_id) if n not in known]


class LinePrinter:
    """Prints records as ``job | msg`` (or ``msg`` alone for one job) or as NDJSON. Text
    output shows control characters escaped so one job cannot forge or overwrite another
    job's line; NDJSON keeps the stored text."""

    def __init__(self, output: str, single: bool, width: int) -> None:
        self.json = output == "json"
        self.single = single
        self.width = width

    def __call__(self, node_id: str, rec: LogRecord) -> None:
        if self.json:
            emit_json({"node": node_id, **rec.to_dict()})
            return
        from sparkwing.engine.termsafe import safe_lines

        for line in safe_lines(rec.msg):
            click.echo(line if self.single else f"{node_id.ljust(self.width)} | {line}")


@click.command("logs")
@run_options
@click.option(
    "--node",
    "--job",
    "node",
    default=None,
    metavar="JOB",
    help="Only this job's log (printed without the job prefix).",
)
@click.option(
    "--tail",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Only the last N lines (of each job when showing the whole run).",
)
@click.option(
    "--head",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Only the first N lines (of each job when showing the whole run).",
)
@click.option("--grep", default=None, metavar="TEXT", help="Only lines holding TEXT (a substring).")
@click.option(
    "--grep-re",
    default=None,
    metavar="RE",
    help="Only lines matching this regular expression (RE2 syntax: no backreferences).",
)
@click.option(
    "--since",
    default=None,
    metavar="T",
    help="Only lines since T: an age (10m, 2h), a date or an ISO time.",
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the run ends.")
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def logs_cmd(
    ctx: click.Context,
    run_pos: str | None,
    run_opt: str | None,
    node: str | None,
    tail: int | None,
    head: int | None,
    grep: str | None,
    grep_re: str | None,
    since: str | None,
    follow: bool,
    output: str,
    profile: str | None,
) -> None:
    """Print a run's logs: every job's in plan order as `job | line`, or one job's with
    --job. Example: `sparkwing runs logs latest --job test --tail 50`."""
    from sparkwing.cli.timefmt import parse_since
    from sparkwing.errors import UsageError
    from sparkwing.ids import check_segment
    from sparkwing.surfaces.logs.base import LogQuery

    if follow and head is not None:
        raise click.UsageError("--head cannot be combined with --follow")
    if grep is not None and grep_re is not None:
        raise click.UsageError("--grep and --grep-re cannot be combined")
    query = LogQuery(
        tail=tail,
        head=head,
        grep=grep if grep_re is None else grep_re,
        regex=grep_re is not None,
        since=parse_since(since) if since else None,
    )
    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        logs = open_run_logs(view, run)
        try:
            if node is not None:
                check_segment(node, "job id")
                ids = stream_ids(view, logs, run)
                if node not in ids:
                    raise UsageError(
                        f'job "{node}" not found in run {run.run_id} '
                        f"(jobs: {', '.join(ids) or 'none'})"
                    )
            if follow:
                _follow(view, logs, run, node, query, output)
                return
            ids = [node] if node is not None else stream_ids(view, logs, run)
            show = LinePrinter(output, node is not None, max(map(len, ids), default=0))
            for node_id in ids:
                for rec in logs.read(run.run_id, node_id, query):
                    show(node_id, rec)
        finally:
            logs.close()


def _follow(
    view: StateView, logs: LogStore, run: RunRecord, node: str | None, query: LogQuery, output: str
) -> None:
    """Print what each stream already holds (after the filters), then new lines as they
    arrive, picking up jobs that start later, until the run is final (or, on this host,
    its runner process has died: then an error after the lines found)."""
    import itertools
    import queue
    import threading
    from datetime import UTC, datetime, timedelta

    from sparkwing.cli.common import runner_gone
    from sparkwing.errors import SparkwingError
    from sparkwing.status import FINAL_RUN_STATUSES
    from sparkwing.surfaces.logs.filesystem import apply_query, record_filter

    done = threading.Event()
    arrived: queue.Queue[tuple[str, LogRecord]] = queue.Queue()
    failures: list[BaseException] = []
    keep = record_filter(query)
    width = max((len(i) for i in stream_ids(view, logs, run)), default=0) if node is None else 0
    show = LinePrinter(output, node is not None, width)
    pumps: dict[str, threading.Thread] = {}
    # Lines of several jobs arrive through separate pumps; they are printed in time order,
    # each held back briefly so a slower pump's earlier lines still come first.
    pending: list[tuple[str, int, str, LogRecord]] = []
    counter = itertools.count()

    def pump(node_id: str, seen: int) -> None:
        try:
            for index, rec in enumerate(
                logs.follow(run.run_id, node_id, done.is_set, poll_interval=POLL_SECONDS)
            ):
                if index >= seen and keep(rec):
                    arrived.put((node_id, rec))
        except BaseException as exc:  # reported by the main thread, which owns the terminal
            failures.append(exc)

    def discover() -> None:
        for node_id in [node] if node is not None else stream_ids(view, logs, run):
            if node_id in pumps:
                continue
            existing = logs.read(run.run_id, node_id)
            show.width = max(show.width, len(node_id))
            for rec in apply_query(existing, query):  # --head is refused with --follow
                pending.append((rec.ts, next(counter), node_id, rec))
            thread = threading.Thread(target=pump, args=(node_id, len(existing)), daemon=True)
            pumps[node_id] = thread
            thread.start()

    def drain(wait: float) -> None:
        try:
            item = arrived.get(timeout=wait) if wait > 0 else arrived.get_nowait()
            while True:
                pending.append((item[1].ts, next(counter), *item))
                item = arrived.get_nowait()
        except queue.Empty:
            pass

    def release(everything: bool) -> None:
        pending.sort()
        cutoff = (datetime.now(UTC) - timedelta(seconds=HOLD_SECONDS)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        while pending and (everything or pending[0][0] <= cutoff):
            _, _, node_id, rec = pending.pop(0)
            show(node_id, rec)

    def current() -> RunRecord | None:
        """The run now; None once it is final (or gone from the state)."""
        record = view.state.get_run(run.run_id)
        return None if record is None or record.status in FINAL_RUN_STATUSES else record

    gone: str | None = None
    while True:
        live = current()
        # A run whose runner died stays "running" until doctor marks it: following it would
        # never end. Read the status again after the check, as the runner may just have ended.
        gone = runner_gone(live) if live is not None else None
        if gone and current() is None:
            live, gone = None, None
        discover()
        if live is None or gone or failures:
            break
        drain(POLL_SECONDS)
        release(everything=False)
    done.set()
    for thread in pumps.values():
        thread.join()
    drain(0)
    release(everything=True)
    if failures:
        raise failures[0]
    if gone:
        raise SparkwingError(f"stopped following run {run.run_id}: {gone}")


def _excerpt(logs: LogStore, run_id: str, node_id: str) -> list[str] | None:
    """The last lines of a job's log; None when the logs cannot be read back."""
    from sparkwing.errors import StorageError
    from sparkwing.surfaces.logs.base import LogQuery

    try:
        return [r.msg for r in logs.read(run_id, node_id, LogQuery(tail=EXCERPT_LINES))]
    except StorageError:
        return None


@click.command("errors")
@run_options
@OUTPUT_OPTION
@PROFILE_OPTION
@click.pass_context
def errors_cmd(
    ctx: click.Context, run_pos: str | None, run_opt: str | None, output: str, profile: str | None
) -> None:
    """Why a run failed: its failed and cancelled jobs, each failure's error and the last
    lines of its log."""
    with open_state_view(ctx, profile) as view:
        run = find_run(view, run_arg(run_pos, run_opt))
        bad = [n for n in view.state.list_nodes(run.run_id) if n.status in ("failed", "cancelled")]
        plan = view.state.get_plan(run.run_id) or {}
        optional = {j.get("id") for j in plan.get("jobs", []) if j.get("optional")}
        excerpts: dict[str, list[str] | None] = {}
        if any(n.status == "failed" for n in bad):
            logs = open_run_logs(view, run)
            try:
                excerpts = {
                    n.node_id: _excerpt(logs, run.run_id, n.node_id)
                    for n in bad
                    if n.status == "failed"
                }
            finally:
                logs.close()
    report = [
        {
            "node_id": n.node_id,
            "status": n.status,
            "attempt": n.attempt,
            "reason": n.reason,
            "error": n.error,
            "optional": n.node_id in optional,
            "log_tail": excerpts.get(n.node_id),
        }
        for n in bad
    ]
    if output == "json":
        emit_json(
            {
                "run_id": run.run_id,
                "pipeline": run.pipeline,
                "status": run.status,
                "reason": run.reason,
                "nodes": report,
            }
        )
        return
    _print_errors(run, report)


def _print_errors(run: RunRecord, report: list[dict[str, Any]]) -> None:
    from sparkwing.cli.common import status_colour
    from sparkwing.engine.termsafe import safe_lines, safe_text

    paint = _painter()
    headline = f"run {run.run_id} ({run.pipeline}) {run.status}"
    click.echo(
        paint(
            headline + (f": {safe_text(run.reason)}" if run.reason else ""),
            status_colour(run.status),
        )
    )
    if not report:
        click.echo("no failed or cancelled jobs")
        return
    for item in report:
        click.echo("")
        notes = [f"attempt {item['attempt']}"] if item["attempt"] > 1 else []
        notes += ["optional: does not fail the run"] if item["optional"] else []
        more = f" ({', '.join(notes)})" if notes else ""
        click.echo(
            paint(f"{item['node_id']}: {item['status']}{more}", status_colour(item["status"]))
        )
        if item["error"]:
            click.echo("  error: " + "\n".join(safe_lines(item["error"])))
        if item["reason"] and item["reason"] != item["error"]:
            click.echo(f"  reason: {safe_text(item['reason'])}")
        lines = item["log_tail"]
        if item["status"] != "failed":
            continue
        if lines is None:
            click.echo("  (its log cannot be read back from this logs backend)")
        elif lines:
            click.echo(f"  last {len(lines)} log line{'s' if len(lines) != 1 else ''}:")
            for line in lines:
                click.echo(f"    | {safe_text(line)}")
        else:
            click.echo("  (its log is empty)")


def _painter() -> Callable[[str, str], str]:
    import sys

    if sys.stdout.isatty():
        return lambda text, colour: click.style(text, fg=colour)
    return lambda text, colour: text
