"""Waiting for a run to end, on any state backend: its record polled with backoff until it is
final, its runner found dead, or a time budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable

from sparkwing.engine.recovery import dead_runner
from sparkwing.errors import NotFoundError, SparkwingError
from sparkwing.status import FINAL_RUN_STATUSES
from sparkwing.surfaces.state.base import RunRecord, StateStore

FIRST_POLL_SECONDS = 0.1
MAX_POLL_SECONDS = 2.0
# The exit code of `sparkwing runs wait` when --timeout passes first (as timeout(1) does).
TIMEOUT_EXIT_CODE = 124


class WaitTimedOut(SparkwingError):
    """The run had not ended when the time budget was spent (it goes on)."""

    exit_code = TIMEOUT_EXIT_CODE


class RunnerGone(SparkwingError):
    """The run is still live in the state, but its runner on this host died."""


def wait_for_run(
    state: StateStore,
    run_id: str,
    *,
    timeout: float | None = None,
    where: str = "the state",
    sleep: Callable[[float], None] = time.sleep,
) -> RunRecord:
    """The run's final record, once it is final; WaitTimedOut after ``timeout`` seconds,
    RunnerGone when its runner (on this host) died without closing it."""
    start = time.monotonic()
    pause = FIRST_POLL_SECONDS
    while True:
        run = state.get_run(run_id)
        if run is None:
            raise NotFoundError(f'run "{run_id}" not found in {where}')
        if run.status in FINAL_RUN_STATUSES:
            return run
        gone = dead_runner(run)
        if gone is not None:
            again = state.get_run(run_id)  # it may have ended just now
            if again is not None and again.status in FINAL_RUN_STATUSES:
                return again
            raise RunnerGone(
                f"run {run_id} is {run.status} but {gone}; `sparkwing doctor` marks it failed"
            )
        left = None if timeout is None else timeout - (time.monotonic() - start)
        if left is not None and left <= 0:
            raise WaitTimedOut(
                f"run {run_id} is still {run.status} after {timeout:g}s (--timeout); it goes on"
            )
        sleep(pause if left is None else min(pause, left))
        pause = min(pause * 1.5, MAX_POLL_SECONDS)
