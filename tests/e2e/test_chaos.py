"""Chaos: runs SIGKILLed at a random moment (the CLI with its runner, the runner alone, or
one job's process), then `sparkwing doctor`: no run or job left unfinished, the state
intact, and every job recorded ``success`` has its whole log. On sqlite and postgres."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkwing.status import FINAL_NODE_STATUSES, FINAL_RUN_STATUSES
from tests.engine.swtest import Proj

RUNS = 50
AT_ONCE = 5
SEED = 1313
TARGETS = ("cli-and-runner", "runner", "job", "job")

PIPE = """
@sw.pipeline("chaos")
def plan(plan, args, rc):
    a = plan.job("a", "for i in 1 2 3; do echo a-$i; sleep 0.05; done; echo final-line-of-a")
    plan.job("b", "echo b-1; sleep 0.1; echo final-line-of-b").needs(a)
    plan.job("c", "echo c-1; sleep 0.2; echo final-line-of-c")
"""


@pytest.fixture(params=["sqlite", "postgres"])
def chaos(request: pytest.FixtureRequest, proj: Proj, tmp_path: Path) -> Iterator[Proj]:
    """The project, its state on the backend under test, cache and logs in folders."""
    with contextlib.ExitStack() as stack:
        if request.param == "postgres":
            from tests.pgutil import fresh_database

            url = stack.enter_context(fresh_database("chaos"))
            proj.secrets(f"RUNS_DSN={url}\n")
            state = "{type: postgres, url_source: RUNS_DSN}"
        else:
            state = f"{{type: sqlite, path: {tmp_path / 'state.db'}}}"
        profiles = tmp_path / "profiles.yaml"
        profiles.write_text(
            "profiles:\n  chaos:\n"
            f"    state: {state}\n"
            f"    cache: {{type: filesystem, path: {tmp_path / 'cache'}}}\n"
            f"    logs: {{type: filesystem, path: {tmp_path / 'logs'}}}\n"
        )
        proj.env["SPARKWING_PROFILES"] = str(profiles)
        proj.env["SPARKWING_PROFILE"] = "chaos"
        proj.pipeline(PIPE)
        yield proj


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _started(proc: subprocess.Popen[str], target: str) -> bool:
    runners = _children(proc.pid)
    return bool(runners) and (target != "job" or bool(_children(runners[0])))


def _wait_for(proc: subprocess.Popen[str], target: str, moment: float) -> None:
    """Until ``moment``, then (a little longer) until a runner or job target has started."""
    while proc.poll() is None:
        now = time.monotonic()
        late = target == "cli-and-runner" or _started(proc, target) or now > moment + 3
        if now >= moment and late:
            return
        time.sleep(0.02)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _strike(proc: subprocess.Popen[str], target: str, rng: random.Random) -> str:
    """SIGKILL one of the run's processes (``target`` when it exists); what was killed."""
    if proc.poll() is not None:
        return "none (finished first)"
    runners = _children(proc.pid)
    if target == "cli-and-runner" or not runners:
        # The whole session but the jobs (each in its own process group): the CLI and the
        # runner, as an OOM kill or a lost machine would.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        return "cli-and-runner"
    if target == "job":
        jobs = _children(runners[0])
        if jobs:
            _kill(rng.choice(jobs))
            return "job"
    _kill(runners[0])
    return "runner"


@pytest.mark.slow
# 50 runs on 2 shared cores: about two minutes, more under the whole suite's load.
@pytest.mark.timeout(900)
def test_runs_killed_at_random_are_all_finished_after_doctor(chaos: Proj, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    struck: dict[str, int] = {}
    for _ in range(RUNS // AT_ONCE):
        start = time.monotonic()
        procs = [
            chaos.popen("run", "chaos", start_new_session=True, stdin=subprocess.DEVNULL)
            for _ in range(AT_ONCE)
        ]
        # Each run's moment and victim, struck in time order while the batch runs.
        plan = sorted(
            (start + rng.uniform(0.2, 2.0), i, rng.choice(TARGETS)) for i in range(AT_ONCE)
        )
        for moment, i, target in plan:
            _wait_for(procs[i], target, moment)
            what = _strike(procs[i], target, rng)
            struck[what] = struck.get(what, 0) + 1
        for proc in procs:
            proc.communicate(timeout=60)
    assert struck.get("job", 0) and struck.get("runner", 0), struck
    print("struck:", struck)

    doctor = chaos.sw("doctor", "-o", "json")
    report = json.loads(doctor.out)
    state_check = [c for c in report["checks"] if c["check"] == "state"]
    assert state_check and state_check[0]["status"] == "ok", report
    again = json.loads(chaos.sw("doctor", "-o", "json").out)
    assert again["fixed"] == [], again
    if (tmp_path / "state.db").exists():
        with sqlite3.connect(tmp_path / "state.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    listed = chaos.sw("runs", "list", "--limit", "200", "-o", "json")
    assert listed.code == 0, listed.err
    runs = [json.loads(line) for line in listed.out.splitlines() if line.strip()]
    assert runs, "no run was recorded"
    complete = 0
    for run in runs:
        assert run["status"] in FINAL_RUN_STATUSES, run
        shown = chaos.sw("runs", "status", "--run", run["run_id"], "-o", "json")
        doc = json.loads(shown.out)
        for node in doc["nodes"]:
            assert node["status"] in FINAL_NODE_STATUSES, (run["run_id"], node)
            if node["status"] != "success":
                continue
            logs = chaos.sw("runs", "logs", "--run", run["run_id"], "--job", node["node_id"])
            assert f"final-line-of-{node['node_id']}" in logs.out, (run["run_id"], logs)
            complete += 1
    assert complete, "no job ran to its end: the strikes came too early to test logs"
