"""Finishing runs whose runner died: the record is closed as failed with a reason, and any
job processes the dead runner left behind on this host are ended."""

from __future__ import annotations

import contextlib
import os
import signal

from sparkwing.engine.clock import now_iso
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import NewEvent, StateStore


def record_runner_death(state: StateStore, run_id: str, reason: str) -> int:
    """Mark the run failed with ``reason``, its pending/running jobs cancelled, append a
    ``run_finished`` event, and end the orphaned job processes of this run on this host.
    Returns how many jobs it cancelled; does nothing to a run that is already final."""
    run = state.get_run(run_id)
    if run is None or run.status in FINAL_RUN_STATUSES:
        return 0
    now = now_iso()
    open_nodes = [n for n in state.list_nodes(run_id) if n.status in ("pending", "running")]
    if run.host == os.uname().nodename:
        kill_orphans(run_id, [n.extra.get("pgid") for n in open_nodes])
    for node in open_nodes:
        node.status, node.reason, node.finished_at = "cancelled", reason, now
    state.upsert_nodes(open_nodes)
    state.append_events(
        run_id, [NewEvent(kind="run_finished", ts=now, data={"status": "failed", "reason": reason})]
    )
    # The run last: a reader that sees it final finds its jobs and events final too.
    state.update_run(run_id, status="failed", reason=reason, finished_at=now)
    return len(open_nodes)


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
