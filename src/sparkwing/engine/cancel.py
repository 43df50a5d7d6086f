"""Cancelling a run: one still waiting in the queue is closed so no worker starts it; one live
on this machine has its runner signalled, which stops every job and records them cancelled."""

from __future__ import annotations

import os
import signal
import socket
import time

from sparkwing.engine.clock import now_iso
from sparkwing.engine.recovery import dead_runner
from sparkwing.errors import NotFoundError, SparkwingError, UsageError
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import RunRecord, StateStore, require_queue

CANCEL_WAIT_SECONDS = 10.0


def cancel_run(
    state: StateStore,
    run: RunRecord,
    *,
    who: str,
    where: str,
    wait: float = CANCEL_WAIT_SECONDS,
) -> RunRecord:
    """Cancel ``run`` (found in ``state``, which lives at ``where``) on behalf of ``who``
    and return its final record; a run that cannot be cancelled from here is a UsageError
    saying why."""
    if run.status in FINAL_RUN_STATUSES:
        raise UsageError(f"run {run.run_id} is not running (it ended {run.status})")
    if run.status == "queued":
        if require_queue(state).cancel_queued(
            run.run_id, f"cancelled by {who} while queued", now_iso()
        ):
            return state.get_run(run.run_id) or run
        # A worker claimed it meanwhile: cancel it where it runs, as below.
        current = state.get_run(run.run_id)
        if current is None:
            raise NotFoundError(f'run "{run.run_id}" not found in {where}')
        run = current
    _signal_runner(run)
    deadline = time.monotonic() + wait
    current_run: RunRecord | None = run
    while time.monotonic() < deadline:
        current_run = state.get_run(run.run_id)
        if current_run is None or current_run.status in FINAL_RUN_STATUSES:
            break
        time.sleep(0.1)
    if current_run is None or current_run.status not in FINAL_RUN_STATUSES:
        status = current_run.status if current_run else "gone"
        raise SparkwingError(
            f"sent SIGTERM to runner process {run.pid}, but run {run.run_id} "
            f"is still {status} after {wait:g}s"
        )
    return current_run


def _signal_runner(run: RunRecord) -> None:
    """SIGTERM the run's runner, which must be alive on this host."""
    here = socket.gethostname()
    if run.host and run.host != here:
        raise UsageError(
            f"run {run.run_id} is running on host {run.host} (pid {run.pid}), "
            f"not on this host ({here}); cancel it there"
        )
    if not run.pid or dead_runner(run) is not None:
        raise UsageError(
            f"run {run.run_id} is marked {run.status} but its runner process "
            f"{run.pid or '?'} is not alive; `sparkwing doctor` marks it failed"
        )
    try:
        os.kill(run.pid, signal.SIGTERM)
    except ProcessLookupError:
        raise UsageError(f"run {run.run_id}: its runner process {run.pid} just exited") from None
    except PermissionError:
        raise UsageError(
            f"run {run.run_id}: not permitted to signal its runner process "
            f"{run.pid} (started by another user?)"
        ) from None
