"""Runs whose runner died: the one rule that says a runner is dead, and finishing such runs
(the record closed as failed with a reason, the job processes the dead runner left behind on
this host ended)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass

from sparkwing import _log
from sparkwing.engine.clock import now_iso, parse_iso
from sparkwing.engine.procutil import process_alive
from sparkwing.status import FINAL_NODE_STATUSES, FINAL_RUN_STATUSES, NodeStatus
from sparkwing.surfaces.state.base import NewEvent, NodeRecord, RunRecord, StateStore

LIVE_RUN_STATUSES = ("pending", "running")
log = _log.get(__name__)


def runner_alive(run: RunRecord) -> bool:
    """Whether the run's runner process is still alive on this host (same pid and start
    time; a zombie counts as dead)."""
    return bool(run.pid) and process_alive(run.pid or 0, run.extra.get("start_ticks"))


def dead_runner(
    run: RunRecord,
    *,
    stale_seconds: float | None = None,
    now: float | None = None,
    found_by: str = "sparkwing doctor",
) -> str | None:
    """Why live ``run``'s runner is dead, or None while it may still be alive (or the run
    is not live). A runner on this host is asked directly (pid and start time); one
    elsewhere counts as dead after ``stale_seconds`` without a heartbeat (None: it is never
    judged from here)."""
    if run.status not in LIVE_RUN_STATUSES:
        return None
    where = f"runner process {run.pid or '?'} on {run.host or 'an unknown host'}"
    if run.host == socket.gethostname() and run.pid:
        if runner_alive(run):
            return None
        return f"{where} died (found by {found_by})"
    if stale_seconds is None:
        return None
    beat = run.heartbeat_at or run.started_at or run.created_at
    try:
        age = (time.time() if now is None else now) - parse_iso(beat).timestamp() if beat else None
    except ValueError:
        age = None
    if age is not None and age <= stale_seconds:
        return None
    since = beat or "the run started"
    return f"no heartbeat since {since} from {where} (found by {found_by})"


@dataclass(frozen=True)
class Reaped:
    """A run :func:`reap_dead_runs` closed (its runner dead), or a finished run whose
    unfinished jobs :func:`finish_left_jobs` cancelled."""

    run: RunRecord
    reason: str
    cancelled_jobs: int


def reap_dead_runs(state: StateStore, stale_seconds: float) -> tuple[list[Reaped], int]:
    """Close every live run of ``state`` whose runner is dead (see :func:`dead_runner`);
    returns those closed and how many live runs remain."""
    now = time.time()
    live: list[RunRecord] = []
    for status in LIVE_RUN_STATUSES:
        cursor = None
        while True:
            page = state.list_runs(status=status, limit=200, cursor=cursor)
            live.extend(page.runs)
            cursor = page.next_cursor
            if cursor is None:
                break
    reaped: list[Reaped] = []
    for run in live:
        reason = dead_runner(run, stale_seconds=stale_seconds, now=now)
        if reason is not None:
            reaped.append(Reaped(run, reason, record_runner_death(state, run.run_id, reason)))
    return reaped, len(live) - len(reaped)


def finish_left_jobs(
    state: StateStore, found_by: str = "sparkwing doctor", newest: int = 2000
) -> list[Reaped]:
    """Cancel the unfinished jobs of finished runs (left so by an engine that died between
    writing its jobs and its run), looking at the ``newest`` runs of each final status (each
    costs a read of its jobs); returns the runs repaired."""
    fixed: list[Reaped] = []
    for status in FINAL_RUN_STATUSES:
        cursor, seen = None, 0
        while seen < newest:
            page = state.list_runs(status=status, limit=min(200, newest - seen), cursor=cursor)
            seen += len(page.runs)
            for run in page.runs:
                if not open_nodes(state, run.run_id):
                    continue
                reason = f"the run ended {run.status} while this job was unfinished"
                reason += f" (found by {found_by})"
                fixed.append(Reaped(run, reason, finalise_nodes(state, run.run_id, reason)))
            cursor = page.next_cursor
            if cursor is None:
                break
    return fixed


def open_nodes(state: StateStore, run_id: str) -> list[NodeRecord]:
    """The run's jobs in a status that is not final (pending, running or waiting)."""
    return [n for n in state.list_nodes(run_id) if n.status not in FINAL_NODE_STATUSES]


def finalise_nodes(
    state: StateStore, run_id: str, reason: str, nodes: list[NodeRecord] | None = None
) -> int:
    """Cancel, with ``reason``, every job of the run not in a final status (``nodes``: the
    records to use instead of the stored ones, when the caller knows better); how many."""
    now = now_iso()
    candidates = open_nodes(state, run_id) if nodes is None else nodes
    pending = [n for n in candidates if n.status not in FINAL_NODE_STATUSES]
    for node in pending:
        node.status, node.reason, node.finished_at = NodeStatus.CANCELLED, reason, now
    if pending:
        state.upsert_nodes(pending)
    return len(pending)


def record_runner_death(state: StateStore, run_id: str, reason: str) -> int:
    """Mark the run failed with ``reason``, its unfinished jobs cancelled, append a
    ``run_finished`` event, and end the orphaned job processes of this run on this host.
    Returns how many jobs it cancelled; does nothing to a run that is already final."""
    run = state.get_run(run_id)
    if run is None or run.status in FINAL_RUN_STATUSES:
        return 0
    now = now_iso()
    unfinished = open_nodes(state, run_id)
    if run.host == os.uname().nodename:
        kill_orphans(run_id, [n.extra.get("pgid") for n in unfinished])
    finalise_nodes(state, run_id, reason, unfinished)
    cancel_dispatched(state, run_id, reason)
    state.append_events(
        run_id, [NewEvent(kind="run_finished", ts=now, data={"status": "failed", "reason": reason})]
    )
    # The run last: a reader that sees it final finds its jobs and events final too.
    state.update_run(run_id, status="failed", reason=reason, finished_at=now)
    return len(unfinished)


def cancel_dispatched(state: StateStore, run_id: str, reason: str) -> int:
    """Ask workers to stop the run's dispatched jobs still queued or running (no runner is
    left to use their results); how many. A job queue that cannot be reached leaves them to
    finish on their own, unused."""
    from sparkwing.errors import SparkwingError

    jobs = state.jobs
    if jobs is None:
        return 0
    try:
        open_jobs = [e for e in jobs.entries(run_id) if e.state != "done"]
        for entry in open_jobs:
            jobs.cancel(entry.ref, reason)
    except SparkwingError as exc:
        log.warning("run %s: could not cancel its dispatched jobs: %s", run_id, exc)
        return 0
    return len(open_jobs)


def kill_orphans(run_id: str, pgids: list[object]) -> int:
    """SIGKILL processes in the jobs' process groups that carry this run's id in their
    environment (set for every job), so a recycled group id can never hit a stranger."""
    groups = {g for g in pgids if isinstance(g, int) and g > 1}
    if not groups:
        return 0
    marker = f"SPARKWING_RUN_ID={run_id}".encode()
    killed = 0
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            if os.getpgid(pid) not in groups:
                continue
            with open(f"/proc/{pid}/environ", "rb") as fh:
                if marker not in fh.read().split(b"\0"):
                    continue
        except OSError:
            continue
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed
