"""The run queue end to end: `sparkwing runs submit` and `sparkwing worker` processes, on a
postgres state shared like several machines would, and on sqlite (one machine)."""

from __future__ import annotations

import collections
import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ProjectFiles, sparkwing_command
from tests.pgutil import fresh_database

PIPELINE = """
import os, time
from pathlib import Path

import sparkwing as sw


def work(ctx):
    counter = Path(os.environ["QUEUE_COUNTER"])
    before = counter.read_text().split() if counter.exists() else []
    with counter.open("a") as fh:  # the side effect whose count the tests check
        fh.write(ctx.run_id + "\\n")
    if os.environ.get("QUEUE_HANG_FIRST") and ctx.run_id not in before:
        Path(os.environ["QUEUE_PID"]).write_text(str(os.getpid()))
        time.sleep(300)  # the first attempt hangs until its worker is killed
    time.sleep(0.05)
    return {"n": len(before)}


@sw.pipeline("count")
def count(plan, args, rc):
    plan.job("work", work)
"""


@pytest.fixture
def local_queue(project: ProjectFiles, tmp_path: Path) -> dict[str, str]:
    """A project whose profile "shared" keeps state (and so the queue) in a sqlite file."""
    project.write("count.py", PIPELINE)
    project.yaml(
        f"""
        profiles:
          shared:
            state: {{ type: sqlite, path: "{tmp_path / "queue.db"}" }}
        """
    )
    return {"QUEUE_COUNTER": str(tmp_path / "counter"), "QUEUE_PID": str(tmp_path / "pid")}


@pytest.fixture(params=["postgres", "sqlite"])
def queue_env(
    request: pytest.FixtureRequest, project: ProjectFiles, local_queue: dict[str, str]
) -> Iterator[dict[str, str]]:
    """The same, on each backend: sqlite (one machine) or postgres (any number)."""
    if request.param == "sqlite":
        yield local_queue
        return
    project.yaml(
        """
        profiles:
          shared:
            state: { type: postgres, url_source: "env:QUEUE_STATE_URL" }
        """
    )
    with fresh_database("queue") as url:
        yield {**local_queue, "QUEUE_STATE_URL": url}


def _worker(cli: Cli, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*sparkwing_command(), "worker", "--profile", "shared", "-o", "json", *args],
        cwd=cli.cwd,
        env={**cli.env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _submit(cli: Cli, env: dict[str, str]) -> str:
    code, out, err = cli("runs", "submit", "count", "--profile", "shared", env=env)
    assert code == 0, err
    return out.strip()


def test_twenty_runs_four_workers_each_run_executes_exactly_once(
    cli: Cli, queue_env: dict[str, str]
) -> None:
    with ThreadPoolExecutor(4) as pool:
        submitted = list(pool.map(lambda _: _submit(cli, queue_env), range(20)))
    assert len(set(submitted)) == 20
    code, out, _ = cli(
        "runs", "list", "--profile", "shared", "--status", "queued", "-o", "json", env=queue_env
    )
    assert code == 0 and {r["run_id"] for r in _events(out)} == set(submitted)

    workers = [_worker(cli, queue_env, "--once", "--poll", "0.2s") for _ in range(4)]
    results = [(w.wait(180), *w.communicate()) for w in workers]
    assert [code for code, _, _ in results] == [0] * 4, [err for _, _, err in results]

    events = [e for _, out, _ in results for e in _events(out)]
    claimed = [e["run_id"] for e in events if e["event"] == "claimed"]
    finished = [(e["run_id"], e["status"]) for e in events if e["event"] == "finished"]
    assert sorted(claimed) == sorted(submitted)
    assert sorted(finished) == sorted((r, "success") for r in submitted)
    executions = collections.Counter(Path(queue_env["QUEUE_COUNTER"]).read_text().split())
    assert executions == {r: 1 for r in submitted}

    code, out, _ = cli(
        "runs", "list", "--profile", "shared", "--limit", "50", "-o", "json", env=queue_env
    )
    runs = _events(out)
    assert sorted(r["run_id"] for r in runs) == sorted(submitted)
    assert {(r["status"], r["trigger"], r["pipeline"]) for r in runs} == {
        ("success", "queue", "count")
    }


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text().strip()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text().strip()


def _gone(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_killed_workers_run_is_reclaimed_and_finished_by_another(
    cli: Cli, queue_env: dict[str, str]
) -> None:
    env = {**queue_env, "QUEUE_HANG_FIRST": "1"}
    run_id = _submit(cli, env)
    first = _worker(cli, env, "--lease", "1s", "--max-runs", "1")
    try:
        job_pid = int(_wait_for(Path(env["QUEUE_PID"]), first))
        first.send_signal(signal.SIGKILL)  # the worker dies mid-run, without any cleanup
        first_out, _ = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    (claim,) = _events(first_out)
    assert (claim["event"], claim["run_id"], claim["attempt"]) == ("claimed", run_id, 1)
    # The dying worker's run was stopped: its hanging job does not live on.
    assert _gone(job_pid)

    second = _worker(cli, env, "--lease", "1s", "--max-runs", "1", "--poll", "0.1s")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    claimed, finished = _events(out)
    assert (claimed["event"], claimed["run_id"], claimed["attempt"]) == ("claimed", run_id, 2)
    assert claimed["previous_worker"] == claim["worker"] != claimed["worker"]
    assert (finished["event"], finished["run_id"], finished["status"]) == (
        "finished",
        run_id,
        "success",
    )

    assert Path(env["QUEUE_COUNTER"]).read_text().split() == [run_id, run_id]
    code, out, _ = cli(
        "runs", "get", "--profile", "shared", "--run", run_id, "--events", "-o", "json", env=env
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["run"]["status"] == "success"
    assert [(n["node_id"], n["status"], n["output"]) for n in doc["nodes"]] == [
        ("work", "success", {"n": 1})
    ]
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds.count("attempt_abandoned") == 1
    assert kinds[-1] == "run_finished"
    # No second worker takes it again: the queue is empty.
    code, out, _ = cli("worker", "--profile", "shared", "--once", "-o", "json", env=env, timeout=60)
    assert (code, out) == (0, "")


def test_a_run_that_cannot_start_fails_with_the_reason(
    cli: Cli, local_queue: dict[str, str]
) -> None:
    code, out, err = cli(
        "runs", "submit", "count", "--bogus", "1", "--profile", "shared", env=local_queue
    )
    assert code == 0, err
    run_id = out.strip()
    code, out, err = cli("worker", "--profile", "shared", "--once", "-o", "json", env=local_queue)
    assert code == 0, err
    claimed, finished = _events(out)
    assert (claimed["run_id"], finished["run_id"], finished["status"]) == (run_id, run_id, "failed")
    assert "unknown flag --bogus" in finished["reason"]
    code, out, _ = cli(
        "runs", "status", "--profile", "shared", "--run", run_id, "-o", "json", env=local_queue
    )
    run = json.loads(out)["run"]
    assert (run["status"], run["reason"]) == ("failed", finished["reason"])
    assert not Path(local_queue["QUEUE_COUNTER"]).exists()


def test_stopping_a_worker_puts_its_run_back_for_another(
    cli: Cli, local_queue: dict[str, str]
) -> None:
    env = {**local_queue, "QUEUE_HANG_FIRST": "1"}
    run_id = _submit(cli, env)
    first = _worker(cli, env)
    try:
        job_pid = int(_wait_for(Path(env["QUEUE_PID"]), first))
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err
    claimed, requeued = _events(out)
    assert (requeued["event"], requeued["run_id"], requeued["status"]) == (
        "requeued",
        run_id,
        "cancelled",
    )
    assert _gone(job_pid)
    code, out, err = cli("worker", "--profile", "shared", "--once", "-o", "json", env=env)
    assert code == 0, err
    again, finished = _events(out)
    assert (again["run_id"], again["attempt"], again["previous_worker"]) == (
        run_id,
        2,
        claimed["worker"],
    )
    assert (finished["run_id"], finished["status"]) == (run_id, "success")


def test_a_queued_run_can_be_cancelled_before_any_worker_starts_it(
    cli: Cli, queue_env: dict[str, str]
) -> None:
    run_id = _submit(cli, queue_env)
    kept = _submit(cli, queue_env)
    env = {**queue_env, "SPARKWING_USER": "ann"}
    code, out, err = cli("runs", "cancel", "--profile", "shared", "--run", run_id, env=env)
    assert code == 0, err
    # The OS user, SPARKWING_USER only a label beside it.
    user = pwd.getpwuid(os.getuid()).pw_name
    assert out.strip() == f"run {run_id} cancelled: cancelled by {user} (ann) while queued"
    code, out, err = cli("worker", "--profile", "shared", "--once", "-o", "json", env=queue_env)
    assert code == 0, err
    assert {e["run_id"] for e in _events(out)} == {kept}  # the cancelled run never started
    code, out, err = cli("runs", "cancel", "--profile", "shared", "--run", run_id, env=env)
    assert code == 2 and "is not running (it ended cancelled)" in err
