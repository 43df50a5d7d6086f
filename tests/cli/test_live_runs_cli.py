"""Commands on runs that are still going: status while running, ``runs cancel``, and
``sparkwing doctor`` finding a run whose runner was SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
from collections.abc import Callable

from tests.cli.conftest import LiveRun, process_gone, wait_for
from tests.conftest import Cli


def test_status_of_a_live_run_then_cancel(fresh: Cli, start_run: Callable[[str], LiveRun]) -> None:
    live = start_run("sleepy")
    run_id = live.run["run_id"]
    code, out, err = fresh("runs", "status", run_id)
    assert code == 0, err
    assert "status      running" in out
    assert "waiting on  running nap; queued wake" in out
    assert f"runner      {socket.gethostname()} pid {live.run['pid']}" in out

    code, out, err = fresh("runs", "cancel", "--run", run_id)
    assert code == 0, err
    assert out.startswith(f"run {run_id} cancelled")
    assert live.proc.wait(timeout=30) == 130

    doc = fresh("runs", "status", run_id, "-o", "json").json()
    assert doc["run"]["status"] == "cancelled"
    assert doc["run"]["finished_at"]
    assert {n["node_id"]: n["status"] for n in doc["nodes"]} == {
        "nap": "cancelled",
        "wake": "cancelled",
    }

    again = fresh("runs", "cancel", run_id)
    assert again.code == 2
    assert again.stderr == f"error: run {run_id} is not running (it ended cancelled)\n"
    assert fresh("runs", "cancel").code == 2  # which run? never guessed for a cancel


def test_doctor_marks_a_run_whose_runner_was_killed(
    fresh: Cli, start_run: Callable[[str], LiveRun]
) -> None:
    live = start_run("sleepy")
    run_id, pid = live.run["run_id"], int(live.run["pid"])
    # Kill the CLI and the runner at once (the whole session): nobody records the end.
    os.killpg(live.proc.pid, signal.SIGKILL)
    live.proc.wait(timeout=30)
    wait_for(lambda: process_gone(pid), "the runner to exit")
    assert fresh("runs", "status", run_id, "-o", "json").json()["run"]["status"] == "running"
    note = fresh("runs", "status", run_id).stdout
    assert f"its runner process {pid} is gone" in note

    cancel = fresh("runs", "cancel", run_id)
    assert cancel.code == 2 and "is not alive; `sparkwing doctor` marks it failed" in cancel.stderr

    code, out, err = fresh("doctor", "-o", "json")
    assert code == 0, out + err
    doc = json.loads(out)
    reason = f"runner process {pid} on {socket.gethostname()} died (found by sparkwing doctor)"
    assert doc["fixed"] == [
        {
            "run_id": run_id,
            "pipeline": "sleepy",
            "status": "failed",
            "reason": reason,
            "cancelled_jobs": 2,
        }
    ]
    after = fresh("runs", "get", run_id, "--events", "-o", "json").json()
    assert after["run"]["status"] == "failed"
    assert after["run"]["reason"] == reason
    assert after["run"]["finished_at"]
    assert {(n["node_id"], n["status"], n["reason"]) for n in after["nodes"]} == {
        ("nap", "cancelled", reason),
        ("wake", "cancelled", reason),
    }
    assert after["events"][-1]["kind"] == "run_finished"
    assert after["events"][-1]["data"] == {"status": "failed", "reason": reason}

    with sqlite3.connect(fresh.sparkwing_home / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    # A second pass has nothing left to fix.
    code, out, _ = fresh("doctor")
    assert code == 0
    assert "no dead runs" in out and "fixed" not in out
