"""Jobs dispatched across machines, end to end through the real CLI: each "machine" has its
own HOME, SPARKWING_HOME and folder (the workers have no checkout), sharing only the
profile's surfaces: sqlite + filesystem (one machine), postgres + filesystem, a controller.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import sparkwing_command

PIPELINE = """
import json, os, time
from pathlib import Path

import sparkwing as sw

HERE = os.environ["SPARKWING_HOME"]


def mark(ctx, what):
    folder = Path(os.environ["DISPATCH_MARKS"])
    name = f"{ctx.job}.{what}.{os.getpid()}"
    doc = {"job": ctx.job, "home": HERE, "worker": os.environ.get("SPARKWING_WORKER")}
    (folder / name).write_text(json.dumps(doc))


def build(ctx):
    Path("dist").mkdir(exist_ok=True)
    Path("dist/model.bin").write_text("weights built in " + HERE)
    return {"home": HERE}


def train(ctx):
    weights = Path("dist/model.bin").read_text()
    Path("out").mkdir(exist_ok=True)
    Path("out/trained.txt").write_text(weights + "; trained in " + HERE)
    print("training on", HERE)
    ctx.annotate("trained on the gpu box")
    return {
        "home": HERE,
        "weights": weights,
        "upstream": ctx.output("build"),
        # A file of the project (not an artifact): the run's code travelled with the job.
        "data": Path("data/labels.txt").read_text().strip(),
    }


def report(ctx):
    return {"home": HERE, "report": Path("out/trained.txt").read_text()}


@sw.pipeline("gpu")
def gpu(plan):
    built = plan.job("build", build).outputs("dist/*")
    trained = plan.job("train", train).requires("gpu").consumes(built).outputs("out/*")
    plan.job("report", report).consumes(trained)


def shard(ctx):
    mark(ctx, "started")
    if os.environ.get("DISPATCH_HANG"):
        time.sleep(600)  # this worker's jobs hang until the worker is killed
    time.sleep(0.2)
    mark(ctx, "done")
    return {"home": HERE}


def flaky(ctx):
    mark(ctx, "started")
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt fails in " + HERE)
    return {"home": HERE, "attempt": ctx.attempt}


def hang(ctx):
    mark(ctx, "started")
    time.sleep(600)


@sw.pipeline("flaky")
def flaky_pipeline(plan):
    plan.job("flaky", flaky).retry(1, backoff="0.1s").memoize(lambda ctx: "flaky-v1")


@sw.pipeline("slow")
def slow(plan):
    plan.job("slow", hang).timeout("1s")


@sw.pipeline("hang")
def hang_pipeline(plan):
    plan.job("hang", hang).requires("gpu")


@sw.pipeline("fanout")
def fanout(plan):
    shards = [plan.job(f"shard-{i:02d}", shard) for i in range(40)]
    plan.job("gather", lambda ctx: sorted(ctx.outputs)).needs(shards)
"""


@dataclass
class Machine:
    """One machine: its environment (own HOME and SPARKWING_HOME) and its folder."""

    name: str
    env: dict[str, str]
    cwd: Path
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*sparkwing_command(), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [*sparkwing_command(), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            # Its own process group, as a terminal's foreground job: Ctrl-C reaches it all.
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def end(self) -> None:
        """Kill what this machine started and is still running (a test that failed)."""
        for proc in self.started:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()

    @staticmethod
    def ctrl_c(proc: subprocess.Popen[str]) -> None:
        os.killpg(proc.pid, signal.SIGINT)


@dataclass
class Fleet:
    runner: Machine
    tmp: Path
    profiles: Path
    marks: Path
    machines: list[Machine] = field(default_factory=list)

    def machine(self, name: str, **env: str) -> Machine:
        base = self.tmp / name
        folder = base / "folder"
        folder.mkdir(parents=True)
        made = Machine(name, {**_machine_env(self.runner.env, base), **env}, folder)
        self.machines.append(made)
        return made


def _machine_env(base_env: dict[str, str], base: Path) -> dict[str, str]:
    return {
        **base_env,
        "HOME": str(base / "home"),
        "SPARKWING_HOME": str(base / "sparkwing-home"),
        "XDG_CONFIG_HOME": str(base / "home" / ".config"),
    }


def _profile_lines(backend: str, tmp: Path, stack: contextlib.ExitStack) -> list[str]:
    files = [
        f"    cache: {{type: filesystem, path: {tmp / 'shared' / 'cache'}}}",
        f"    logs: {{type: filesystem, path: {tmp / 'shared' / 'logs'}}}",
    ]
    if backend == "sqlite":
        return [f"    state: {{type: sqlite, path: {tmp / 'shared' / 'state.db'}}}", *files]
    if backend == "postgres":
        from tests.pgutil import fresh_database

        url = stack.enter_context(fresh_database("dispatch"))
        return [f"    state: {{type: postgres, url: '{url}'}}", *files]
    from tests.controller.harness import Controller, local_profile

    ctl = Controller(local_profile(tmp / "controller"))
    stack.callback(ctl.stop)
    return [f"    controller: {{url: '{ctl.url}', token: '{ctl.token()}'}}"]


@pytest.fixture(params=["sqlite", "postgres", "controller"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    with _fleet(request.param, tmp_path) as made:
        yield made


@pytest.fixture
def one_machine(tmp_path: Path) -> Iterator[Fleet]:
    """The same on sqlite: workers on the runner's machine (what it supports)."""
    with _fleet("sqlite", tmp_path) as made:
        yield made


@contextlib.contextmanager
def _fleet(backend: str, tmp_path: Path) -> Iterator[Fleet]:
    """A project on the runner's machine; other machines share only the profile "team"."""
    with contextlib.ExitStack() as stack:
        lines = _profile_lines(backend, tmp_path, stack)
        profiles = tmp_path / "profiles.yaml"
        profiles.write_text("\n".join(["profiles:", "  team:", *lines]) + "\n")
        marks = tmp_path / "marks"
        marks.mkdir()
        root = tmp_path / "runner" / "project"
        (root / ".sparkwing").mkdir(parents=True)
        (root / ".sparkwing" / "pipelines.py").write_text(PIPELINE)
        (root / "data").mkdir()
        (root / "data" / "labels.txt").write_text("cat, dog\n")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SPARKWING_", "XDG_", "CI", "GITHUB_", "GITLAB_"))
        }
        env.update(
            {
                **_machine_env(env, tmp_path / "runner"),
                "SPARKWING_PROFILES": str(profiles),
                "SPARKWING_PROFILE": "team",
                "DISPATCH_MARKS": str(marks),
                "PYTHONDONTWRITEBYTECODE": "1",
                "NO_COLOR": "1",
            }
        )
        fleet = Fleet(Machine("runner", env, root), tmp_path, profiles, marks)
        try:
            yield fleet
        finally:
            for machine in [fleet.runner, *fleet.machines]:
                machine.end()


class Workers:
    """`sparkwing worker` processes, stopped (and their output kept) at the end."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.names: dict[str, str] = {}

    def start(self, machine: Machine, *args: str) -> subprocess.Popen[str]:
        proc = machine.start(
            "worker", "--profile", "team", "--poll", "0.2s", "--lease", "2s", *args
        )
        self.procs[machine.name] = proc
        return proc

    def name_of(self, machine: str) -> str:
        """The worker's name (its first stderr line says it)."""
        if machine not in self.names:
            proc = self.procs[machine]
            assert proc.stderr is not None
            line = proc.stderr.readline()
            assert line.startswith("worker "), line
            self.names[machine] = line.split()[1].rstrip(":")
        return self.names[machine]

    def stop(self) -> dict[str, str]:
        outs = {}
        for machine, proc in self.procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
            outs[machine] = out
        return outs


@pytest.fixture
def workers() -> Iterator[Workers]:
    started = Workers()
    yield started
    for proc in started.procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _json(text: str) -> Any:
    return json.loads(text)


def _marks(folder: Path, what: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"*.{what}.*"))]


def test_a_job_that_requires_gpu_runs_on_the_gpu_worker_and_artifacts_cross_machines(
    fleet: Fleet, workers: Workers
) -> None:
    gpu = fleet.machine("gpu-box", SPARKWING_LABELS="gpu")
    plain = fleet.machine("plain-box")
    workers.start(gpu)
    workers.start(plain)
    gpu_name = workers.name_of("gpu-box")

    done = fleet.runner.run("run", "gpu", "-o", "json")
    assert done.returncode == 0, done.stderr + done.stdout
    doc = _json(done.stdout)
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    runner_home = fleet.runner.env["SPARKWING_HOME"]
    gpu_home = gpu.env["SPARKWING_HOME"]
    assert nodes["build"]["output"]["home"] == runner_home
    assert nodes["report"]["output"]["home"] == runner_home
    trained = nodes["train"]["output"]
    # The gpu job ran on the gpu worker, with the artifact built on the runner's machine
    # and the output of its upstream job; the artifact it made came back for "report".
    assert trained["home"] == gpu_home
    assert trained["weights"] == f"weights built in {runner_home}"
    assert trained["upstream"] == {"home": runner_home}
    assert trained["data"] == "cat, dog"  # read from the project, on a machine without it
    assert nodes["report"]["output"]["report"] == (
        f"weights built in {runner_home}; trained in {gpu_home}"
    )
    assert nodes["train"]["extra"]["worker"] == gpu_name
    assert "worker" not in nodes["build"]["extra"]

    run_id = doc["run"]["run_id"]
    status = fleet.runner.run("runs", "status", run_id)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines() if line}
    assert "WORKER" in rows["JOB"]
    assert rows["train"][:2] == ["train", "success"] and gpu_name in rows["train"]
    assert gpu_name not in rows["build"] and gpu_name not in rows["report"]
    assert "train: trained on the gpu box" in status.stdout  # annotated on the worker
    # Its log, written on the gpu worker, reads like any job's.
    logs = fleet.runner.run("runs", "logs", run_id, "--job", "train")
    assert f"training on {gpu_home}" in logs.stdout, logs.stderr

    outs = workers.stop()
    assert f"{run_id}  train  attempt 1  success" in outs["gpu-box"]
    assert run_id not in outs["plain-box"]  # it lacks the label: it ran nothing


def test_a_dispatched_fan_out_runs_each_job_once_and_survives_a_killed_worker(
    fleet: Fleet, workers: Workers
) -> None:
    victim = fleet.machine("victim", DISPATCH_HANG="1")
    workers.start(victim, "--parallel", "2")
    victim_name = workers.name_of("victim")
    survivors = [fleet.machine(f"box-{i}") for i in range(2)]
    run = fleet.runner.start("run", "fanout", "--sw-dispatch", "-o", "json")
    # The victim takes its first jobs (they hang there) before the others start.
    deadline = time.monotonic() + 120
    while len([m for m in _marks(fleet.marks, "started") if m["worker"] == victim_name]) < 2:
        assert run.poll() is None and time.monotonic() < deadline, "victim claimed nothing"
        time.sleep(0.1)
    for machine in survivors:
        workers.start(machine, "--parallel", "2")
    time.sleep(0.5)
    os.kill(workers.procs["victim"].pid, signal.SIGKILL)

    out, err = run.communicate(timeout=240)
    assert run.returncode == 0, err + out
    doc = _json(out)
    assert doc["run"]["status"] == "success"
    nodes = {n["node_id"]: n for n in doc["nodes"]}
    shards = [f"shard-{i:02d}" for i in range(40)]
    assert nodes["gather"]["output"] == shards

    done = _marks(fleet.marks, "done")
    assert sorted(m["job"] for m in done) == shards  # every job ran to its end exactly once
    by_worker = {m["worker"] for m in done}
    survivor_names = {workers.name_of(m.name) for m in survivors}
    assert by_worker == survivor_names  # both survivors did some, the victim finished none
    hung = {m["job"] for m in _marks(fleet.marks, "started") if m["worker"] == victim_name}
    assert len(hung) >= 2
    for job in hung:  # reclaimed from the dead worker, then completed by a survivor
        assert nodes[job]["status"] == "success"
        assert nodes[job]["extra"]["worker"] in survivor_names
    # The runner's own machine ran none of the shards: every job went to a worker.
    assert {nodes[s]["output"]["home"] for s in shards} <= {
        m.env["SPARKWING_HOME"] for m in survivors
    }
    outs = workers.stop()
    assert any("reclaimed from " + victim_name in text for text in outs.values())


def _wait_for(what: str, check: Any, proc: subprocess.Popen[str] | None = None) -> Any:
    deadline = time.monotonic() + 120
    while not (found := check()):
        assert proc is None or proc.poll() is None, f"ended before {what}"
        assert time.monotonic() < deadline, f"no {what}"
        time.sleep(0.1)
    return found


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):  # a zombie of an exited worker's child counts
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    return True


def _cleaned(fleet: Fleet, machine: str) -> bool:
    """Whether the worker on ``machine`` completed its jobs (it removes their workspaces)."""
    jobs = fleet.tmp / machine / "sparkwing-home" / "work" / "jobs"
    return not jobs.is_dir() or not any(jobs.iterdir())


def test_retries_and_memoize_work_for_dispatched_jobs(one_machine: Fleet, workers: Workers) -> None:
    fleet = one_machine
    workers.start(fleet.machine("box"))
    first = fleet.runner.run("run", "flaky", "--sw-dispatch", "-o", "json")
    assert first.returncode == 0, first.stderr + first.stdout
    [node] = _json(first.stdout)["nodes"]
    assert (node["status"], node["attempt"], node["output"]["attempt"]) == ("success", 2, 2)
    assert "the first attempt fails in" in node["error"]  # kept from the failed attempt
    assert len(_marks(fleet.marks, "started")) == 2
    again = fleet.runner.run("run", "flaky", "--sw-dispatch", "-o", "json")
    assert again.returncode == 0, again.stderr
    [cached] = _json(again.stdout)["nodes"]
    assert cached["status"] == "cached" and cached["output"] == node["output"]
    assert len(_marks(fleet.marks, "started")) == 2  # memoized: no worker ran it again


def test_the_runner_enforces_a_dispatched_jobs_timeout(
    one_machine: Fleet, workers: Workers
) -> None:
    fleet = one_machine
    workers.start(fleet.machine("box"))
    done = fleet.runner.run("run", "slow", "--sw-dispatch", "-o", "json")
    assert done.returncode == 1, done.stderr + done.stdout
    [node] = _json(done.stdout)["nodes"]
    assert node["status"] == "failed" and node["error"] == "timed out after 1.0s"
    [started] = fleet.marks.glob("slow.started.*")
    pid = int(started.name.rsplit(".", 1)[1])
    _wait_for("the timed-out job's end on its worker", lambda: _gone(pid))
    _wait_for("the worker to complete it", lambda: _cleaned(fleet, "box"))
    outs = workers.stop()
    assert "slow  attempt 1  cancelled" in outs["box"]


def test_a_job_no_worker_can_take_waits_queued_and_ctrl_c_cancels_it(
    one_machine: Fleet, workers: Workers
) -> None:
    fleet = one_machine
    workers.start(fleet.machine("plain-box"))  # no gpu: it cannot take the job
    run = fleet.runner.start("run", "hang", "-o", "plain")

    def waiting() -> str | None:
        status = fleet.runner.run("runs", "status")
        return status.stdout if "queued for a worker with labels gpu" in status.stdout else None

    text = _wait_for("the queued job in runs status", waiting, run)
    assert "running hang" in text  # what the live run waits on
    Machine.ctrl_c(run)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err + out
    status = _json(fleet.runner.run("runs", "status", "-o", "json").stdout)
    assert status["run"]["status"] == "cancelled"
    assert status["nodes"][0]["status"] == "cancelled"
    # Cancelled in the queue too: a gpu worker that comes later does not run it.
    workers.start(fleet.machine("gpu-box", SPARKWING_LABELS="gpu"))
    workers.name_of("gpu-box")
    time.sleep(1)
    assert not list(fleet.marks.glob("hang.started.*"))


def test_ctrl_c_of_the_run_stops_its_job_on_the_worker(
    one_machine: Fleet, workers: Workers
) -> None:
    fleet = one_machine
    workers.start(fleet.machine("gpu-box", SPARKWING_LABELS="gpu"))
    run = fleet.runner.start("run", "hang", "-o", "plain")
    started = _wait_for(
        "the job to start on the worker", lambda: list(fleet.marks.glob("hang.started.*")), run
    )
    pid = int(started[0].name.rsplit(".", 1)[1])
    Machine.ctrl_c(run)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, err + out
    _wait_for("the cancelled job's end on its worker", lambda: _gone(pid))
    _wait_for("the worker to complete it", lambda: _cleaned(fleet, "gpu-box"))
    outs = workers.stop()
    assert "hang  attempt 1  cancelled" in outs["gpu-box"]
    status = _json(fleet.runner.run("runs", "status", "-o", "json").stdout)
    assert (status["run"]["status"], status["nodes"][0]["status"]) == ("cancelled", "cancelled")


def test_a_bad_label_is_a_plan_error(one_machine: Fleet) -> None:
    fleet = one_machine
    (fleet.runner.cwd / ".sparkwing" / "bad.py").write_text(
        "import sparkwing as sw\n\n\n@sw.pipeline('bad')\ndef bad(plan):\n"
        "    plan.job('x', 'true').requires('has space')\n"
    )
    done = fleet.runner.run("run", "bad")
    assert done.returncode == 2
    assert done.stderr.startswith("error: job \"x\": invalid label 'has space'")
    assert "Traceback" not in done.stderr


def test_a_state_without_a_job_queue_refuses_to_dispatch(tmp_path: Path) -> None:
    from tests.objectstores import create_bucket, emulator_env, new_bucket_name

    env = emulator_env("s3")
    bucket = new_bucket_name()
    create_bucket("s3", bucket)
    with _fleet("sqlite", tmp_path) as fleet:
        fleet.profiles.write_text(
            "profiles:\n  team:\n"
            + "".join(
                f"    {surface}: {{type: s3, bucket: {bucket}, prefix: team}}\n"
                for surface in ("state", "cache", "logs")
            )
        )
        fleet.runner.env.update(env)
        done = fleet.runner.run("run", "hang")
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            'error: job "hang" requires gpu, which this machine lacks (its labels: none; add '
            "some with --sw-label or SPARKWING_LABELS), but s3://"
            f"{bucket}/team/ cannot dispatch jobs to workers: use sqlite, postgres or "
            "controller state\n"
        )
        labelled = fleet.runner.run("run", "hang", "--sw-label", "gpu", "--sw-dispatch")
        assert labelled.returncode == 2
        assert labelled.stderr.startswith("error: --sw-dispatch sends every job to a worker")
