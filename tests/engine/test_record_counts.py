"""What the batched record writes keep: at 2,000 jobs every node, event and log file is
there, and a command job started directly by the runner logs, masks, fails and times out
as one run inside a Python job process did."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.engine.swtest import Proj

JOBS = 2000
SECRET = "plum-Vx93-secret-value"


def _log_lines(proj: Proj, run_id: str, node_id: str) -> list[dict[str, str]]:
    path = proj.swhome / "logs" / run_id / f"{node_id}.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_2000_jobs_keep_every_node_event_and_log_file(proj: Proj) -> None:
    proj.pipeline(f"""
        import sys

        def say(ctx):
            print("py", ctx.job)
            print("py-err", ctx.job, file=sys.stderr)
            return {{"job": ctx.job}}

        @sw.pipeline("many")
        def plan(plan, args, rc):
            root = plan.job("root", say)
            middle = []
            for i in range({JOBS - 2}):
                if i % 2:
                    middle.append(plan.job(f"py-{{i}}", say).needs(root))
                else:
                    cmd = f"echo out-{{i}}; echo err-{{i}} >&2; echo $SPARKWING_JOB"
                    middle.append(plan.job(f"sh-{{i}}", cmd).needs(root))
            plan.job("sink", say).needs(middle)
    """)
    res = proj.sw("run", "many", "-o", "json", "--sw-parallel", "4", timeout=900)
    assert res.code == 0, res.err[-2000:]
    doc = json.loads(res.out.strip().splitlines()[-1])
    run_id = doc["run"]["run_id"]
    got = proj.sw("runs", "get", "--run", run_id, "--events", "-o", "json")
    assert got.code == 0, got.err
    record = json.loads(got.out)
    nodes = {n["node_id"]: n for n in record["nodes"]}
    assert len(nodes) == JOBS
    assert {n["status"] for n in nodes.values()} == {"success"}
    assert all(n["started_at"] and n["finished_at"] for n in nodes.values())
    assert nodes["py-1"]["output"] == {"job": "py-1"}

    kinds = Counter(e["kind"] for e in record["events"])
    assert kinds["node_started"] == JOBS
    assert kinds["node_finished"] == JOBS
    assert kinds["run_started"] == kinds["run_finished"] == 1
    seqs = [e["seq"] for e in record["events"]]
    assert seqs == list(range(1, len(seqs) + 1))

    logs = sorted(p.name for p in (proj.swhome / "logs" / run_id).iterdir())
    assert logs == sorted(f"{node_id}.ndjson" for node_id in nodes)
    shell = [(r["stream"], r["msg"]) for r in _log_lines(proj, run_id, "sh-10")]
    assert ("info", "$ echo out-10; echo err-10 >&2; echo $SPARKWING_JOB") in shell
    assert ("stdout", "out-10") in shell and ("stdout", "sh-10") in shell
    assert ("stderr", "err-10") in shell
    python = [r["msg"] for r in _log_lines(proj, run_id, "py-11")]
    assert "py py-11" in python and "py-err py-11" in python


def test_command_jobs_mask_fail_and_time_out_like_python_jobs(proj: Proj) -> None:
    proj.secrets(f"TOKEN={SECRET}\n")
    proj.pipeline("""
        from pathlib import Path

        def learn(ctx):
            Path("token.txt").write_text(sw.secret("TOKEN"))

        @sw.pipeline("p")
        def plan(plan, args, rc):
            learn_job = plan.job("learn", learn)
            plan.job("leak", "cat token.txt; echo; cat token.txt >&2").needs(learn_job)
            plan.job("fails", "echo first; echo last-words >&2; exit 3").needs(learn_job)
            plan.job("slow", "sleep 30 & sleep 30").timeout(1).needs(learn_job)
            plan.job("env", 'test "$SPARKWING_PIPELINE" = p && test -d .sparkwing')
            plan.job("closes", "echo before; exec >&- 2>&-; sleep 1")
    """)
    code, doc = proj.run_json("p")
    assert code == 1
    nodes = proj.nodes(doc)
    assert nodes["leak"]["status"] == "success"
    assert nodes["env"]["status"] == "success"
    assert nodes["closes"]["status"] == "success"  # its pipes ended before it did
    assert nodes["fails"]["status"] == "failed"
    assert nodes["fails"]["error"] == (
        "command failed with exit code 3: echo first; echo last-words >&2; exit 3; "
        "last output: last-words"
    )
    assert nodes["slow"]["status"] == "failed"
    assert "timed out" in nodes["slow"]["error"]
    run_id = doc["run"]["run_id"]
    leak = [(r["stream"], r["msg"]) for r in _log_lines(proj, run_id, "leak")]
    assert ("stdout", "***") in leak and ("stderr", "***") in leak
    for path in Path(proj.swhome).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
