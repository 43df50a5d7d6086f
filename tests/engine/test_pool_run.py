"""Warm job processes through a real ``sparkwing run``: jobs one after another in one
process keep their own logs, environment and folder; Ctrl-C ends every job process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.engine.swtest import Proj


def _log_text(proj: Proj, run_id: str, node_id: str) -> list[str]:
    path = proj.swhome / "logs" / run_id / f"{node_id}.ndjson"
    return [json.loads(line)["msg"] for line in path.read_text().splitlines()]


def test_jobs_sharing_a_process_keep_their_own_log_environment_and_folder(proj: Proj) -> None:
    proj.pipeline("""
        import os

        def first(ctx):
            print("first prints this")
            os.environ["POOL_LEAK"] = "set by first"
            os.chdir("/")
            return os.getpid()

        def second(ctx):
            print("second prints this")
            return {"pid": os.getpid(), "leak": os.environ.get("POOL_LEAK"),
                    "cwd": os.getcwd(), "job": os.environ.get("SPARKWING_JOB"),
                    "first": ctx.output("first")}

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("second", second).needs(plan.job("first", first))
    """)
    code, doc = proj.run_json("p", "--sw-parallel", "1")
    assert code == 0, doc
    nodes = proj.nodes(doc)
    first_pid = nodes["first"]["output"]
    seen = nodes["second"]["output"]
    assert seen["pid"] == first_pid, "the second job did not run in the first one's process"
    assert seen["first"] == first_pid
    assert seen["leak"] is None
    assert seen["job"] == "second"
    assert seen["cwd"] == str(proj.root)
    run_id = doc["run"]["run_id"]
    assert "first prints this" in _log_text(proj, run_id, "first")
    assert "second prints this" not in _log_text(proj, run_id, "first")
    assert "second prints this" in _log_text(proj, run_id, "second")
    assert "first prints this" not in _log_text(proj, run_id, "second")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_ends_every_job_process_busy_or_idle(proj: Proj, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    proj.pipeline(f"""
        import os

        def note(ctx):
            open(os.path.join({str(pids)!r}, ctx.job), "w").write(str(os.getpid()))

        def quick(ctx):
            note(ctx)

        def hang(ctx):
            note(ctx)
            ctx.sh("sleep 48.5")

        @sw.pipeline("p")
        def plan(plan, args, rc):
            a, b = plan.job("a", quick), plan.job("b", quick)
            plan.job("c", hang).needs(a, b)
    """)
    proc = proj.popen("run", "p", "--sw-parallel", "2", start_new_session=True)
    deadline = time.time() + 30
    while not (pids / "c").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert (pids / "c").exists(), "the hanging job never started"
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    statuses = dict(proj.db().execute("select node_id, status from nodes").fetchall())
    assert statuses == {"a": "success", "b": "success", "c": "cancelled"}
    job_pids = {int((pids / name).read_text()) for name in ("a", "b", "c")}
    assert len(job_pids) == 2  # a and b ran at once; c took one of their processes
    assert not any(_alive(pid) for pid in job_pids)
    left = subprocess.run(["pgrep", "-f", "sleep 48.5"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
