"""Fixtures for the CLI command tests: a project with finished runs shared by a module (runs
are cheap but not free), and helpers to start a long run and wait for it to be live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, ProjectFiles, sparkwing_command

PIPELINES = """
import sparkwing as sw


def greet(ctx):
    for i in range(1, 31):
        print(f"line {i}")
    ctx.annotate("greeted 30 times")
    return {"lines": 30}


def after(ctx):
    ctx.log.info(f"upstream said {ctx.output('greet')}")
    return 42


@sw.pipeline("ok")
def ok(plan, args, rc):
    g = plan.job("greet", greet)
    plan.job("after", after).needs(g)


@sw.pipeline("bad")
def bad(plan, args, rc):
    boom = plan.job("boom", "echo about to fail; exit 3")
    plan.job("after-boom", "echo never").needs(boom)
    plan.job("fine", "echo fine")


@sw.pipeline("sleepy")
def sleepy(plan, args, rc):
    plan.job("nap", "echo napping; sleep 30")
    plan.job("wake", "echo awake").needs("nap")


@sw.pipeline("ticker")
def ticker(plan, args, rc):
    t = plan.job("tick", "for i in 1 2 3 4; do echo tick $i; sleep 0.2; done")
    plan.job("later", "echo done-later").needs(t)
"""


@dataclass
class History:
    """A project with one ``ok`` run then one ``bad`` run (the newest)."""

    project: ProjectFiles
    cli: Cli
    ok: str
    bad: str


def write_project(project: ProjectFiles) -> None:
    project.write("pipelines.py", PIPELINES)


def run_id_of(result: Any) -> str:
    doc = json.loads(result.stdout)
    return str(doc["run"]["run_id"])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    base = tmp_path_factory.mktemp("history")
    project = ProjectFiles(base / "project")
    write_project(project)
    cli = Cli(project.root, base)
    ok = cli("run", "ok", "-o", "json")
    assert ok.code == 0, ok.stderr
    # Run ids order runs to the second only: start the next run in a later second so
    # "newest" is well defined.
    stamp = run_id_of(ok)[4:19]
    wait_for(lambda: time.strftime("%Y%m%d-%H%M%S", time.gmtime()) > stamp, "the next second")
    bad = cli("run", "bad", "-o", "json")
    assert bad.code == 1, bad.stderr
    return History(project, cli, run_id_of(ok), run_id_of(bad))


@pytest.fixture
def fresh(project: ProjectFiles, cli: Cli) -> Cli:
    """A CLI in a project with the test pipelines and no runs yet."""
    write_project(project)
    return cli


@dataclass
class LiveRun:
    proc: subprocess.Popen[str]
    run: dict[str, Any]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``check`` until it returns something truthy (the deadline only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def start_run(fresh: Cli) -> Iterator[Callable[[str], LiveRun]]:
    """Start ``sparkwing run PIPELINE`` in its own session and wait until its record says it
    is running with a job running; everything it started is killed at the end."""
    started: list[subprocess.Popen[str]] = []
    pgids: list[tuple[int, int]] = []  # (job process group, session of the run we started)

    def start(pipeline: str) -> LiveRun:
        proc = subprocess.Popen(
            [*sparkwing_command(), "run", pipeline, "-o", "plain"],
            cwd=fresh.cwd,
            env=fresh.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        started.append(proc)

        def live() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise AssertionError(f"sparkwing run {pipeline} exited with {proc.returncode}")
            listed = fresh("runs", "list", "--pipeline", pipeline, "-o", "json").ndjson()
            if not listed or listed[0]["status"] != "running":
                return None
            doc = fresh("runs", "status", listed[0]["run_id"], "-o", "json").json()
            running = [n for n in doc["nodes"] if n["status"] == "running"]
            for node in running:
                if node["extra"].get("pgid"):
                    pgids.append((int(node["extra"]["pgid"]), proc.pid))
            return doc["run"] if running else None

        return LiveRun(proc, wait_for(live, f"a running {pipeline} run"))

    yield start
    for proc in started:
        if proc.poll() is None:
            _kill_group(proc.pid)
            proc.wait()
    for pgid, session in pgids:
        # Job process groups a killed runner left behind; only while still in our session.
        if _session_of(pgid) == session:
            _kill_group(pgid)


def _session_of(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2 :].split()[3])


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def process_gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return data[data.rfind(b")") + 2 :][:1] in (b"Z", b"X")
