"""The pool of warm job processes, through the supervisor: consecutive jobs share a process
but not its environment, folder or output; a job that overruns its timeout or crashes its
process costs that process (it is replaced) and fails that job only."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from sparkwing.engine.jobproc import JobHost, JobLaunch
from sparkwing.engine.masking import Masker
from sparkwing.engine.supervisor import Exited, Supervisor
from sparkwing.sdk.context import Context, RunContext
from sparkwing.surfaces.cache.base import Cache


class Collected:
    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []

    def __call__(self, key: str, items: list[tuple[str, Any]]) -> None:
        self.items += [(key, kind, item) for kind, item in items]

    def lines(self, key: str) -> list[str]:
        return [item for k, kind, item in self.items if k == key and kind == "line"]


def no_cache() -> Cache:
    raise AssertionError("these jobs move no artifacts")


def make_host(tmp_path: Path, fns: dict[str, Any], outputs: dict[str, Any]) -> JobHost:
    rc = RunContext(run_id="run-pool", pipeline="p", workdir=tmp_path)
    return JobHost(rc, None, fns, outputs, lambda: None, no_cache)


def run_one(sup: Supervisor, key: str, workdir: Path, timeout: float | None = None) -> Exited:
    """Start ``key`` and wait for it alone (so jobs run one after another)."""
    sup.start(key, JobLaunch(key, {"SPARKWING_JOB": key}, str(workdir)), timeout)
    exited: list[Exited] = []
    while not exited:
        exited = sup.wait(0.5)
    [done] = exited
    assert done.key == key
    return done


def pid_of(ctx: Context) -> int:
    return os.getpid()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"


def test_consecutive_jobs_share_a_process_but_not_its_environment_or_folder(
    tmp_path: Path,
) -> None:
    def dirty(ctx: Context) -> int:
        os.environ["POOL_LEAK"] = "from the first job"
        os.environ.pop("HOME", None)
        os.chdir("/")
        os.umask(0o077)
        return os.getpid()

    def look(ctx: Context) -> dict[str, Any]:
        umask = os.umask(0o022)
        os.umask(umask)
        return {
            "pid": os.getpid(),
            "leak": os.environ.get("POOL_LEAK"),
            "home": os.environ.get("HOME"),
            "cwd": os.getcwd(),
            "umask": umask,
        }

    home = os.environ.get("HOME")
    base_umask = os.umask(0o022)
    os.umask(base_umask)
    fns = {"dirty": dirty, "look": look}
    with Supervisor(Collected(), Masker(), make_host(tmp_path, fns, {})) as sup:
        first = run_one(sup, "dirty", tmp_path)
        second = run_one(sup, "look", tmp_path)
    assert first.result is not None and second.result is not None
    seen = second.result["output"]
    assert seen["pid"] == first.result["output"], "the second job did not reuse the process"
    assert seen["leak"] is None
    assert seen["home"] == home
    assert seen["cwd"] == str(tmp_path)
    assert seen["umask"] == base_umask


def test_each_job_gets_its_own_log_and_what_it_leaves_running_is_ended(tmp_path: Path) -> None:
    def first(ctx: Context) -> int:
        print("first says hello")
        # Left running, holding the job's stdout: it would print after the job ended.
        subprocess.Popen("sleep 0.5; echo late from first", shell=True)
        ctx.sh("setsid sleep 47.25 >/dev/null 2>&1 &")
        return os.getpid()

    def second(ctx: Context) -> int:
        print("second says hello")
        ctx.sh("sleep 1")
        return os.getpid()

    seen = Collected()
    fns = {"first": first, "second": second}
    with Supervisor(seen, Masker(), make_host(tmp_path, fns, {})) as sup:
        one = run_one(sup, "first", tmp_path)
        left = subprocess.run(["pgrep", "-f", "sleep 47.25"], capture_output=True, text=True)
        two = run_one(sup, "second", tmp_path)
    assert one.result is not None and two.result is not None
    assert one.result["output"] == two.result["output"]  # the same process ran both
    assert left.stdout.strip() == "", "a command the first job left running survived it"
    assert "first says hello" in seen.lines("first")
    assert seen.lines("second") == ["second says hello"]
    assert not any("late" in line for line in seen.lines("first") + seen.lines("second"))


def test_a_timed_out_job_costs_its_process_and_the_next_job_gets_a_new_one(
    tmp_path: Path,
) -> None:
    def slow(ctx: Context) -> None:
        ctx.sh("sleep 45.5")

    fns = {"warm": pid_of, "slow": slow, "after": pid_of}
    with Supervisor(Collected(), Masker(), make_host(tmp_path, fns, {})) as sup:
        warm = run_one(sup, "warm", tmp_path)
        slow_done = run_one(sup, "slow", tmp_path, timeout=0.5)
        after = run_one(sup, "after", tmp_path)
    assert warm.result is not None and after.result is not None
    assert slow_done.timed_out and os.WIFSIGNALED(slow_done.status)
    assert not alive(warm.result["output"]), "the timed-out job's process was not ended"
    assert after.result["ok"] and after.result["output"] != warm.result["output"]
    left = subprocess.run(["pgrep", "-f", "sleep 45.5"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_a_job_that_ends_its_process_fails_alone(tmp_path: Path) -> None:
    def crash(ctx: Context) -> None:
        print("about to go")
        os._exit(3)

    fns = {"warm": pid_of, "crash": crash, "after": pid_of}
    seen = Collected()
    with Supervisor(seen, Masker(), make_host(tmp_path, fns, {})) as sup:
        warm = run_one(sup, "warm", tmp_path)
        crashed = run_one(sup, "crash", tmp_path)
        after = run_one(sup, "after", tmp_path)
    assert crashed.result is None and not crashed.timed_out
    assert os.waitstatus_to_exitcode(crashed.status) == 3
    assert seen.lines("crash") == ["about to go"]
    assert warm.result is not None and after.result is not None
    assert after.result["ok"] and after.result["output"] != warm.result["output"]


def test_a_job_sees_outputs_and_masks_that_arrived_after_its_process_started(
    tmp_path: Path,
) -> None:
    def read(ctx: Context) -> dict[str, Any]:
        return {"pid": os.getpid(), "outputs": dict(ctx.outputs), "said": "plum-secret-77"}

    outputs: dict[str, Any] = {}
    masker = Masker()
    fns = {"one": read, "two": read}
    with Supervisor(Collected(), masker, make_host(tmp_path, fns, outputs)) as sup:
        one = run_one(sup, "one", tmp_path)
        assert one.result is not None
        outputs["one"] = {"n": 1}  # as the scheduler records a finished job's output
        masker.add(["plum-secret-77"])
        two = run_one(sup, "two", tmp_path)
    assert two.result is not None
    first, second = one.result["output"], two.result["output"]
    assert second["pid"] == first["pid"]
    assert first["outputs"] == {} and first["said"] == "plum-secret-77"
    assert second["outputs"] == {"one": {"n": 1}}
    # The job process masks its result itself, with the values it was sent.
    assert second["said"] == "***"


def test_leaving_the_supervisor_ends_idle_and_busy_job_processes(tmp_path: Path) -> None:
    def hang(ctx: Context) -> None:
        ctx.sh("sleep 46.75")

    fns = {"a": pid_of, "b": pid_of, "busy": hang}
    with Supervisor(Collected(), Masker(), make_host(tmp_path, fns, {})) as sup:
        for key in ("a", "b"):  # at once: two processes
            sup.start(key, JobLaunch(key, {}, str(tmp_path)), None)
        exited: list[Exited] = []
        while len(exited) < 2:
            exited += sup.wait(0.5)
        pids = {e.result["output"] for e in exited if e.result is not None}
        assert len(pids) == 2
        busy = sup.start("busy", JobLaunch("busy", {}, str(tmp_path)), None)
        assert busy in pids and len(sup) == 1  # one busy, one idle
    assert not any(alive(pid) for pid in pids)
    left = subprocess.run(["pgrep", "-f", "sleep 46.75"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_an_interrupt_terminates_busy_job_processes(tmp_path: Path) -> None:
    def hang(ctx: Context) -> None:
        ctx.sh("sleep 44.25")

    with Supervisor(Collected(), Masker(), make_host(tmp_path, {"a": hang, "b": hang}, {})) as sup:
        pids = [sup.start(k, JobLaunch(k, {}, str(tmp_path)), None) for k in ("a", "b")]
        os.kill(os.getpid(), signal.SIGINT)
        sup.wait(0.2)
        assert sup.interrupted == "interrupted by SIGINT"
        exited = sup.terminate_all(grace=5.0)
    assert sorted(e.key for e in exited) == ["a", "b"]
    assert all(e.result is None for e in exited)
    assert not any(alive(pid) for pid in pids)
    left = subprocess.run(["pgrep", "-f", "sleep 44.25"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
