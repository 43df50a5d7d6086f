"""Memoize: hits restore outputs and artifacts; concurrent runners elect one leader."""

from __future__ import annotations

import time

from tests.engine.swtest import Proj

MEMO_PIPE = """
import os, time

def build(ctx):
    with open(os.path.join(ctx.workdir, "executions.log"), "a") as fh:
        fh.write(ctx.run_id + "\\n")
    time.sleep(float(os.environ.get("BUILD_SLEEP", "0")))
    os.makedirs("dist", exist_ok=True)
    open("dist/out.txt", "w").write("built by " + ctx.run_id)
    return {"built_by": ctx.run_id}

def check(ctx):
    return open("dist/out.txt").read()

@sw.pipeline("p")
def plan(plan, args, rc):
    b = plan.job("build", build).outputs("dist/**").memoize(
        lambda ctx: sw.key("build", os.environ.get("MEMO_KEY", "k")), ttl=os.environ.get("TTL"))
    plan.job("check", check).consumes(b)
"""


def test_second_run_is_cached_and_restores_output_and_artifacts(proj: Proj) -> None:
    proj.pipeline(MEMO_PIPE)
    code, first = proj.run_json("p")
    assert code == 0, first
    (proj.root / "dist" / "out.txt").unlink()
    code, second = proj.run_json("p")
    assert code == 0, second
    build = proj.nodes(second)["build"]
    assert build["status"] == "cached"
    assert build["output"] == {"built_by": first["run"]["run_id"]}
    assert proj.nodes(second)["check"]["output"] == "built by " + first["run"]["run_id"]
    assert (proj.root / "executions.log").read_text().split() == [first["run"]["run_id"]]


def test_a_different_key_recomputes(proj: Proj) -> None:
    proj.pipeline(MEMO_PIPE)
    assert proj.run_json("p")[0] == 0
    proj.env["MEMO_KEY"] = "other"
    code, doc = proj.run_json("p")
    assert code == 0
    assert proj.nodes(doc)["build"]["status"] == "success"
    assert len((proj.root / "executions.log").read_text().split()) == 2


def test_expired_ttl_recomputes(proj: Proj) -> None:
    proj.pipeline(MEMO_PIPE)
    proj.env["TTL"] = "0.2s"
    assert proj.run_json("p")[0] == 0
    time.sleep(0.4)
    code, doc = proj.run_json("p")
    assert code == 0
    assert proj.nodes(doc)["build"]["status"] == "success"


def test_two_processes_on_one_key_run_the_job_once(proj: Proj) -> None:
    proj.pipeline(MEMO_PIPE)
    proj.env["BUILD_SLEEP"] = "1.5"
    procs = [proj.popen("run", "p", "-o", "json") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    executions = (proj.root / "executions.log").read_text().split()
    assert len(executions) == 1
    statuses = sorted(out.count('"status": "cached"') for out, _ in outs)
    assert statuses == [0, 1]


def test_failed_leader_lets_the_waiter_take_over(proj: Proj) -> None:
    proj.pipeline("""
        import os, time

        def build(ctx):
            marker = os.path.join(ctx.workdir, "leader.lock")
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                time.sleep(1.0)
                raise RuntimeError("leader fails")
            except FileExistsError:
                return "second"

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("build", build).memoize(lambda ctx: "same")
    """)
    procs = [proj.popen("run", "p", "-o", "json") for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    assert any('"output": "second"' in out for out, _ in outs)
