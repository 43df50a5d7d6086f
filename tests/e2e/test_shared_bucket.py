"""Mode 2 end to end: machines (separate SPARKWING_HOMEs) share one bucket through a user
profile, per cloud. Two runners' runs and logs are visible to a third machine; eight
runners reaching one memoized job run it once; a waiter takes over from a killed leader
once its lease expires; and a run outlives an S3 outage through the outbox."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sparkwing.surfaces.state.objectstore import ObjectStoreState
from sparkwing.surfaces.state.outbox_queue import outbox_summary
from tests.objectstores import (
    KINDS,
    S3_KEY_ID,
    S3_REGION,
    S3_SECRET,
    SPEC_TYPES,
    create_bucket,
    empty,
    emulator_env,
    make_store,
    new_bucket_name,
)

SPARKWING = shutil.which("sparkwing", path=os.path.dirname(sys.executable)) or "sparkwing"

PIPELINES = """
import os
import time
from pathlib import Path

import sparkwing as sw


def greet(ctx):
    print(f"hello from {os.environ['MACHINE']} in {ctx.run_id}")


@sw.pipeline("hello")
def hello(plan, args, rc):
    plan.job("greet", greet)


def build(ctx):
    with open(os.environ["COUNTER"], "a") as fh:
        fh.write(f"start {ctx.run_id}\\n")
    release = os.environ.get("RELEASE")
    while release and not os.path.exists(release):
        time.sleep(0.02)  # the test lets the job finish once every runner waits on it
    time.sleep(float(os.environ.get("BUILD_SLEEP", "0")))
    with open(os.environ["COUNTER"], "a") as fh:
        fh.write(f"done {ctx.run_id}\\n")
    return {"by": ctx.run_id}


@sw.pipeline("memo")
def memo(plan, args, rc):
    plan.job("build", build).memoize(lambda ctx: sw.key("build", os.environ["MEMO_KEY"]))


def wait_for(name):
    # The test drives the outage: it touches go-<name> when this job may finish.
    marks = Path(os.environ["MARKS"])
    (marks / f"started-{name}").touch()
    while not (marks / f"go-{name}").exists():
        time.sleep(0.02)
    print(f"{name} done")
    return {"job": name}


@sw.pipeline("steps")
def steps(plan, args, rc):
    first = plan.job("first", lambda ctx: wait_for("first"))
    second = plan.job("second", lambda ctx: wait_for("second")).needs(first)
    plan.job("third", "echo third").needs(second)
"""


class Machine:
    """One machine: its own HOME, SPARKWING_HOME and checkout of the project."""

    def __init__(self, root: Path, name: str, profiles: Path, env: dict[str, str]) -> None:
        self.name = name
        self.home = root / name / "home"
        self.swhome = root / name / "swhome"
        self.project = root / name / "project"
        (self.project / ".sparkwing").mkdir(parents=True)
        (self.project / ".sparkwing" / "pipes.py").write_text(textwrap.dedent(PIPELINES))
        (self.project / ".sparkwing" / "sparkwing.yaml").write_text("")
        self.home.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SPARKWING")},
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "SPARKWING_HOME": str(self.swhome),
            "SPARKWING_PROFILES": str(profiles),
            "MACHINE": name,
            "NO_COLOR": "1",
            **env,
        }

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [SPARKWING, *args],
            cwd=self.project,
            env={**self.env, **(env or {})},
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a test can kill it whole
        )

    def sw(self, *args: str, timeout: float = 60) -> tuple[int, str, str]:
        proc = self.popen(*args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError(f"sparkwing {' '.join(args)} timed out: {err}") from None
        return proc.returncode, out, err

    def run(self, pipeline: str, profile: str = "shared") -> dict[str, Any]:
        code, out, err = self.sw("run", pipeline, "--profile", profile, "-o", "json")
        assert code == 0, err
        return _last_json(out)


def _last_json(out: str) -> dict[str, Any]:
    assert out.strip(), "no JSON output"
    doc: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return doc


def _profiles(path: Path, name: str, surfaces: dict[str, dict[str, str]]) -> Path:
    lines = ["profiles:", f"  {name}:"]
    for surface, spec in surfaces.items():
        fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in spec.items())
        lines.append(f"    {surface}: {{{fields}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait(what: str, ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Cloud:
    """A fresh bucket on one cloud's test server and one shared profile naming it for state,
    cache and logs; ``machine(name)`` adds a machine that uses it."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind = kind
        self.root = root
        self.bucket = new_bucket_name()
        create_bucket(kind, self.bucket)
        spec = {"type": SPEC_TYPES[kind], "bucket": self.bucket, "prefix": "team"}
        self.profiles = _profiles(
            root / "profiles.yaml", "shared", {s: spec for s in ("state", "cache", "logs")}
        )

    def machine(self, name: str) -> Machine:
        return Machine(self.root, name, self.profiles, emulator_env(self.kind))

    def state(self) -> ObjectStoreState:
        """The shared state, read directly (what every machine's runs wrote)."""
        return ObjectStoreState(make_store(self.kind, self.bucket, "team", role="state"))


@pytest.fixture(params=KINDS)
def cloud(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cloud]:
    shared = Cloud(request.param, tmp_path)
    yield shared
    store = make_store(shared.kind, shared.bucket)
    empty(store)  # keeps the test servers' memory small
    store.close()


def test_a_third_machine_sees_both_runners_runs_and_logs(
    cloud: Cloud,
) -> None:
    a, b, c = cloud.machine("a"), cloud.machine("b"), cloud.machine("c")
    run_a = a.run("hello")["run"]
    run_b = b.run("hello")["run"]
    assert run_a["status"] == run_b["status"] == "success"
    assert run_a["host"] == run_b["host"]  # one host, told apart only by their homes

    code, out, err = c.sw("runs", "list", "--profile", "shared", "-o", "json")
    assert code == 0, err
    listed = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [r["run_id"] for r in listed] == [run_b["run_id"], run_a["run_id"]]
    assert [r["status"] for r in listed] == ["success", "success"]

    for run, machine in ((run_a, "a"), (run_b, "b")):
        code, out, err = c.sw("runs", "logs", "--run", run["run_id"], "--profile", "shared")
        assert code == 0, err
        assert f"hello from {machine} in {run['run_id']}" in out


def test_eight_runners_on_one_memoized_job_execute_it_once(cloud: Cloud, tmp_path: Path) -> None:
    counter, release = tmp_path / "executions.log", tmp_path / "release"
    env = {"COUNTER": str(counter), "MEMO_KEY": uuid.uuid4().hex, "RELEASE": str(release)}
    machines = [cloud.machine(f"runner-{i}") for i in range(8)]
    procs = [m.popen("run", "memo", "--profile", "shared", "-o", "json", env=env) for m in machines]
    state = cloud.state()
    try:

        def waiting() -> list[str]:
            runs = state.list_runs().runs
            return [
                r.run_id
                for r in runs
                if any(e.kind == "memo_wait" for e in state.list_events(r.run_id))
            ]

        # Every runner but the leader reaches the key while the leader holds it, and waits.
        _wait("seven runners to wait on the leader", lambda: len(waiting()) == 7)
        release.touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        release.touch()
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
    assert [p.returncode for p in procs] == [0] * 8, [err for _, err in results]
    docs = [_last_json(out) for out, _ in results]

    executions = counter.read_text().split("\n")
    starts = [line for line in executions if line.startswith("start ")]
    assert len(starts) == 1, executions
    leader = starts[0].split()[1]
    builds = [next(n for n in d["nodes"] if n["node_id"] == "build") for d in docs]
    assert sorted(n["status"] for n in builds) == ["cached"] * 7 + ["success"]
    assert all(n["output"] == {"by": leader} for n in builds)
    assert leader not in waiting()
    state.close()


def test_a_waiter_takes_over_from_a_killed_leader(cloud: Cloud, tmp_path: Path) -> None:
    counter = tmp_path / "executions.log"
    counter.touch()
    # The engine renews a lease every 5 s, so the lease must be longer than that.
    env = {
        "COUNTER": str(counter),
        "MEMO_KEY": uuid.uuid4().hex,
        "SPARKWING_MEMO_LEASE_SECONDS": "6",
    }
    leader_machine, waiter_machine = cloud.machine("leader"), cloud.machine("waiter")
    state = cloud.state()
    leader = leader_machine.popen(
        "run", "memo", "--profile", "shared", "-o", "json", env={**env, "BUILD_SLEEP": "120"}
    )
    waiter: subprocess.Popen[str] | None = None
    try:
        _wait("the leader to start the job", lambda: "start " in counter.read_text())
        leader_run = counter.read_text().split()[1]
        waiter = waiter_machine.popen(
            "run", "memo", "--profile", "shared", "-o", "json", env={**env, "BUILD_SLEEP": "0.2"}
        )

        def waiting() -> bool:
            others = [r.run_id for r in state.list_runs().runs if r.run_id != leader_run]
            return bool(others) and any(e.kind == "memo_wait" for e in state.list_events(others[0]))

        _wait("the second runner to wait on the leader", waiting)
        os.killpg(leader.pid, signal.SIGKILL)  # the leader dies mid-job, lease and all
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, err
    finally:
        if waiter is not None and waiter.poll() is None:
            os.killpg(waiter.pid, signal.SIGKILL)
            waiter.communicate()
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
        leader.communicate()
        state.close()
    doc = _last_json(out)
    build = next(n for n in doc["nodes"] if n["node_id"] == "build")
    waiter_run = doc["run"]["run_id"]
    assert build["status"] == "success"
    assert build["output"] == {"by": waiter_run}
    assert counter.read_text().split("\n")[:-1] == [
        f"start {leader_run}",
        f"start {waiter_run}",
        f"done {waiter_run}",
    ]


# -- the outage ---------------------------------------------------------------------------


class MotoServer:
    """A moto S3 server in this process: stopping it leaves its data in memory, so a
    restart on the same port is the same store back from an outage."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def moto_server() -> Iterator[MotoServer]:
    pytest.importorskip("moto.server")
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_run_outlives_an_s3_outage_through_the_outbox(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    import boto3

    bucket = new_bucket_name()
    boto3.client(
        "s3",
        endpoint_url=moto_server.endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    ).create_bucket(Bucket=bucket)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {
        "SPARKWING_S3_ENDPOINT": moto_server.endpoint,
        "AWS_ACCESS_KEY_ID": S3_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET,
        "AWS_REGION": S3_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "MARKS": str(marks),
    }
    # State on S3; cache and logs stay local, so only the state store goes dark.
    profiles = _profiles(
        tmp_path / "profiles.yaml",
        "outage",
        {"state": {"type": "s3", "bucket": bucket, "prefix": "team"}},
    )
    runner, reader = (Machine(tmp_path, n, profiles, env) for n in ("runner", "reader"))

    proc = runner.popen("run", "steps", "--profile", "outage", "-o", "json")
    try:
        _wait("the first job", lambda: (marks / "started-first").exists())
        moto_server.stop()
        (marks / "go-first").touch()  # its end is recorded while the store is down
        _wait("the second job", lambda: (marks / "started-second").exists())
        moto_server.start()
        (marks / "go-second").touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    assert "staging state writes" in err
    local = _last_json(out)  # what the runner recorded, as it saw it
    assert local["run"]["status"] == "success"

    outbox = runner.swhome / "outbox.db"
    assert outbox.exists()  # writes were staged...
    assert outbox_summary(outbox) == []  # ...and all of them replayed

    code, out, err = reader.sw(
        "runs",
        "get",
        "--run",
        local["run"]["run_id"],
        "--events",
        "--profile",
        "outage",
        "-o",
        "json",
    )
    assert code == 0, err
    stored = json.loads(out)
    assert stored["run"] == local["run"]
    assert stored["nodes"] == local["nodes"]
    events = stored["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    flow = [(e["kind"], e["node_id"]) for e in events if e["kind"] != "annotation"]
    assert flow == [
        ("run_started", None),
        ("node_started", "first"),
        ("node_finished", "first"),
        ("node_started", "second"),
        ("node_finished", "second"),
        ("node_started", "third"),
        ("node_finished", "third"),
        ("run_finished", None),
    ]
