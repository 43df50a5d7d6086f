"""A runner killed outright leaves its jobs' commands behind; `sparkwing doctor` ends them
(recognised by the run id every job process carries) along with marking the run failed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

from tests.engine.swtest import Proj

MARK = "sleep 33.71"


def _pids(pattern: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_doctor_ends_orphaned_job_processes_of_a_dead_run(proj: Proj) -> None:
    proj.pipeline(f"""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("long", "{MARK}")
    """)
    proc = proj.popen("run", "p", start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while not _pids(MARK) and time.time() < deadline:
            time.sleep(0.05)
        assert _pids(MARK), "the job's command never started"
        runs = proj.sw("runs", "list", "-o", "json")
        run = json.loads(runs.out.splitlines()[0])
        # Kill the CLI and the runner outright, as a crash or OOM kill would.
        os.killpg(proc.pid, signal.SIGKILL)
        # The runner is in that group too; once killed it may be reaped already.
        with contextlib.suppress(ProcessLookupError):
            os.kill(run["pid"], signal.SIGKILL)
        proc.wait(timeout=10)
        time.sleep(0.3)
        assert _pids(MARK), "the job's command should have outlived its runner"
        res = proj.sw("doctor", "-o", "json")
        assert res.code == 0, res.out + res.err
        status = proj.sw("runs", "status", "--run", run["run_id"], "-o", "json")
        doc = json.loads(status.out)
        assert doc["run"]["status"] == "failed"
        assert "died" in doc["run"]["reason"]
        deadline = time.time() + 10
        while _pids(MARK) and time.time() < deadline:
            time.sleep(0.05)
        assert _pids(MARK) == []
    finally:
        for pid in _pids(MARK):
            os.kill(pid, signal.SIGKILL)
