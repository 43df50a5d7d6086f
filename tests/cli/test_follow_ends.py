"""``runs logs -f`` always ends: a missing run is an error at once, a finished run prints
what it has, a run whose runner died stops with a note. Every call has a timeout, so a
follow that hangs fails the test."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from tests.cli.conftest import LiveRun, process_gone, run_id_of, wait_for
from tests.conftest import Cli

FOLLOW_TIMEOUT = 60


def test_follow_of_a_missing_run_fails_at_once(fresh: Cli) -> None:
    code, out, err = fresh("runs", "logs", "-f", "run-20200101-000000-nope00", timeout=30)
    assert code == 2
    assert out == ""
    assert err.startswith('error: run "run-20200101-000000-nope00" not found in ')
    assert err.count("\n") == 1
    # With no runs at all, following the newest one is the same kind of error.
    code, _, err = fresh("runs", "logs", "-f", timeout=30)
    assert code == 2 and err.startswith("error: no runs yet in ") and err.count("\n") == 1


def test_follow_of_a_finished_run_prints_its_logs_and_exits(fresh: Cli) -> None:
    run = fresh("run", "ok", "-o", "json")
    assert run.code == 0, run.stderr
    code, out, err = fresh("runs", "logs", "-f", run_id_of(run), timeout=FOLLOW_TIMEOUT)
    assert code == 0, err
    lines = out.splitlines()
    assert [line for line in lines if "line " in line][-1].endswith("| line 30")
    assert lines[-1].startswith("after") and "upstream said" in lines[-1]
    # One job's log alone, unprefixed.
    code, out, _ = fresh("runs", "logs", "-f", "--job", "greet", timeout=FOLLOW_TIMEOUT)
    assert code == 0
    assert out.splitlines()[-1] == "line 30"


def test_follow_of_a_run_whose_runner_died_stops(
    fresh: Cli, start_run: Callable[[str], LiveRun]
) -> None:
    live = start_run("sleepy")
    run_id, pid = live.run["run_id"], int(live.run["pid"])
    wait_for(lambda: "napping" in fresh("runs", "logs", run_id).stdout, "the nap job's line")
    # Kill the CLI and the runner at once: the run stays "running" until doctor marks it.
    os.killpg(live.proc.pid, signal.SIGKILL)
    live.proc.wait(timeout=30)
    wait_for(lambda: process_gone(pid), "the runner to exit")
    code, out, err = fresh("runs", "logs", "-f", run_id, timeout=FOLLOW_TIMEOUT)
    assert code == 1
    assert "nap  | napping" in out.splitlines()
    assert err == (
        f"error: stopped following run {run_id}: its runner process {pid} is gone; "
        "`sparkwing doctor` will mark the run failed\n"
    )
