"""The one rule that says a run's runner is dead (``runs status``, ``runs cancel`` and
``doctor`` all ask it), on real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from sparkwing.engine.procutil import process_start_ticks
from sparkwing.engine.recovery import dead_runner
from sparkwing.surfaces.state.base import RunRecord


def _run(**fields: object) -> RunRecord:
    base: dict[str, object] = {
        "run_id": "20260101-000000-abcd",
        "pipeline": "p",
        "status": "running",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "host": socket.gethostname(),
    }
    return RunRecord(**{**base, **fields})  # type: ignore[arg-type]


def _exited_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_runner_here_is_alive() -> None:
    me = os.getpid()
    assert dead_runner(_run(pid=me, extra={"start_ticks": process_start_ticks(me)})) is None


def test_a_runner_here_that_exited_is_dead() -> None:
    pid = _exited_pid()
    reason = dead_runner(_run(pid=pid), found_by="a test")
    assert reason == f"runner process {pid} on {socket.gethostname()} died (found by a test)"


def test_a_recycled_pid_is_not_the_runner() -> None:
    me = os.getpid()
    ticks = process_start_ticks(me)
    assert ticks is not None
    assert dead_runner(_run(pid=me, extra={"start_ticks": ticks + 1})) is not None


def test_a_final_run_is_never_dead() -> None:
    assert dead_runner(_run(pid=_exited_pid(), status="failed")) is None


def test_a_runner_elsewhere_is_judged_by_its_heartbeat_only_when_asked() -> None:
    beat = "2026-01-01T00:01:00.000000Z"
    run = _run(host="elsewhere", pid=42, heartbeat_at=beat)
    at = 1767225660.0  # that heartbeat's time
    assert dead_runner(run) is None  # no staleness limit: never judged from here
    assert dead_runner(run, stale_seconds=120, now=at + 60) is None
    assert dead_runner(run, stale_seconds=120, now=at + 600) == (
        f"no heartbeat since {beat} from runner process 42 on elsewhere (found by sparkwing doctor)"
    )
