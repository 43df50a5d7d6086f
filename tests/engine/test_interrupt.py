"""Ctrl-C and SIGTERM end in a cancelled run with every status written (exit 130)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.engine.swtest import Proj


def _wait_running(proj: Proj, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        db_path = proj.swhome / "state.db"
        if db_path.exists():
            try:
                query = "select count(*) from nodes where status='running'"
                running = proj.db().execute(query).fetchone()[0]
            except sqlite3.OperationalError:  # the schema is not created yet
                running = 0
            if running > 0:
                return
        time.sleep(0.05)
    raise AssertionError("the job never started")


@pytest.mark.parametrize("how", ["sigint-group", "sigterm-cli"])
def test_interrupt_cancels_the_run(proj: Proj, how: str) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            a = plan.job("a", "sleep 41.25")
            plan.job("b", "true").needs(a)
            plan.job("c", "sleep 41.25")
    """)
    proc = proj.popen("run", "p", start_new_session=True, stdin=subprocess.DEVNULL)
    _wait_running(proj)
    if how == "sigint-group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    run = proj.db().execute("select status from runs").fetchone()
    assert run[0] == "cancelled"
    statuses = dict(proj.db().execute("select node_id, status from nodes").fetchall())
    assert statuses == {"a": "cancelled", "b": "cancelled", "c": "cancelled"}
    left = subprocess.run(["pgrep", "-f", "sleep 41.25"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
