"""Scheduling semantics through the real CLI: retries, timeouts, failure propagation,
skips, outputs, artifacts and parallelism."""

from __future__ import annotations

import itertools
import json
import os
import subprocess

from tests.engine.swtest import Proj


def test_retry_succeeds_on_second_attempt_and_records_it(proj: Proj) -> None:
    proj.pipeline("""
        def flaky(ctx):
            marker = ctx.workdir / "attempts.txt"
            n = int(marker.read_text()) if marker.exists() else 0
            marker.write_text(str(n + 1))
            if n == 0:
                raise RuntimeError("first attempt fails")
            return {"attempts": n + 1}

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("flaky", flaky).retry(2, backoff="0.05s")
    """)
    code, doc = proj.run_json("p")
    assert code == 0
    node = proj.nodes(doc)["flaky"]
    assert node["status"] == "success"
    assert node["attempt"] == 2
    assert node["output"] == {"attempts": 2}
    kinds = [
        r[0]
        for r in proj.db().execute(
            "select kind from events where run_id=? order by seq", (doc["run"]["run_id"],)
        )
    ]
    assert kinds.count("node_retry") == 1
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"


def test_retries_exhausted_fail_the_run(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("bad", "echo nope; exit 4").retry(1, backoff=0)
    """)
    code, doc = proj.run_json("p")
    assert code == 1
    node = proj.nodes(doc)["bad"]
    assert node["status"] == "failed" and node["attempt"] == 2
    assert "exit code 4" in node["error"]
    assert doc["run"]["status"] == "failed"


def test_timeout_kills_the_whole_process_group(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("slow", "sleep 37.5 & sleep 37.5; wait").timeout("0.5s")
    """)
    code, doc = proj.run_json("p")
    assert code == 1
    node = proj.nodes(doc)["slow"]
    assert node["status"] == "failed"
    assert node["reason"].startswith("timed out after")
    left = subprocess.run(["pgrep", "-f", "sleep 37.5"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a process of the timed-out job survived"


def test_failure_cancels_dependants_but_optional_and_continue_on_error_do_not(
    proj: Proj,
) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            bad = plan.job("bad", "exit 1")
            plan.job("child", "echo child").needs(bad)
            plan.job("grandchild", "echo gc").needs("child")
            opt = plan.job("opt", "exit 1").optional()
            plan.job("after-opt", "echo ok").needs(opt)
            coe = plan.job("coe", "exit 1").continue_on_error()
            plan.job("after-coe", "echo ok").needs(coe)
            plan.job("independent", "echo fine")
    """)
    code, doc = proj.run_json("p")
    nodes = proj.nodes(doc)
    assert code == 1
    assert nodes["child"]["status"] == "cancelled"
    assert nodes["child"]["reason"].startswith("upstream-failed")
    assert nodes["grandchild"]["status"] == "cancelled"
    assert nodes["after-opt"]["status"] == "success"
    assert nodes["after-coe"]["status"] == "success"
    assert nodes["independent"]["status"] == "success"
    assert doc["run"]["reason"] == "failed jobs: bad, coe"


def test_optional_failure_alone_leaves_the_run_successful(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("opt", "exit 1").optional()
    """)
    code, doc = proj.run_json("p")
    assert code == 0 and doc["run"]["status"] == "success"
    assert proj.nodes(doc)["opt"]["status"] == "failed"


def test_skip_if_skips_and_dependants_still_run(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            s = plan.job("maybe", "exit 1").skip_if(lambda ctx: ctx.args is None)
            plan.job("next", "echo next").needs(s)
    """)
    code, doc = proj.run_json("p")
    nodes = proj.nodes(doc)
    assert code == 0
    assert nodes["maybe"]["status"] == "skipped"
    assert nodes["next"]["status"] == "success"


def test_a_skip_if_that_changes_folder_does_not_move_the_commands(proj: Proj) -> None:
    # The engine starts commands in its own folder; user code it calls must not move it.
    proj.pipeline("""
        import os

        def wander(ctx):
            os.chdir("/")
            return False

        @sw.pipeline("p")
        def plan(plan, args, rc):
            w = plan.job("wander", "pwd > wandered.txt").skip_if(wander)
            plan.job("after", "pwd > after.txt").needs(w)
    """)
    code, doc = proj.run_json("p")
    assert code == 0, doc
    workdir = os.path.realpath(proj.root)
    for name in ("wandered.txt", "after.txt"):
        assert os.path.realpath((proj.root / name).read_text().strip()) == workdir


def test_outputs_flow_downstream_and_env_is_applied(proj: Proj) -> None:
    proj.pipeline("""
        def produce(ctx):
            return {"version": ctx.sh("echo $APP_VERSION").capture(), "lines": ctx.sh(
                "printf 'a\\\\nb\\\\n'").lines()}

        def consume(ctx):
            data = ctx.output("produce")
            ctx.annotate("got " + data["version"])
            return data["version"] + "-" + "".join(data["lines"])

        @sw.pipeline("p")
        def plan(plan, args, rc):
            p = plan.job("produce", produce).env(APP_VERSION="1.2.3")
            plan.job("consume", consume).needs(p)
    """)
    code, doc = proj.run_json("p")
    nodes = proj.nodes(doc)
    assert code == 0, doc
    assert nodes["produce"]["output"] == {"version": "1.2.3", "lines": ["a", "b"]}
    assert nodes["consume"]["output"] == "1.2.3-ab"
    assert nodes["consume"]["extra"]["annotations"] == ["got 1.2.3"]


def test_artifacts_are_restored_for_consumers(proj: Proj) -> None:
    proj.pipeline("""
        import os, shutil

        def build(ctx):
            os.makedirs("dist/sub", exist_ok=True)
            open("dist/app.whl", "w").write("wheel " + ctx.run_id)
            open("dist/sub/notes.txt", "w").write("notes")

        def publish(ctx):
            return sorted(os.listdir("dist")) + [open("dist/sub/notes.txt").read()]

        def wipe(ctx):
            shutil.rmtree("dist")

        @sw.pipeline("p")
        def plan(plan, args, rc):
            b = plan.job("build", build).outputs("dist/**")
            w = plan.job("wipe", wipe).needs(b)
            plan.job("publish", publish).consumes(b).needs(w)
    """)
    code, doc = proj.run_json("p")
    nodes = proj.nodes(doc)
    assert code == 0, doc
    assert nodes["build"]["artifacts"]
    assert nodes["publish"]["output"] == ["app.whl", "sub", "notes"]


def test_non_json_return_value_fails_clearly(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("obj", lambda ctx: object())
    """)
    code, doc = proj.run_json("p")
    assert code == 1
    assert "not JSON-serialisable" in proj.nodes(doc)["obj"]["error"]


def test_parallel_limit_one_never_overlaps(proj: Proj) -> None:
    proj.pipeline("""
        import time

        def work(ctx):
            start = time.time()
            time.sleep(0.05)
            return [start, time.time()]

        @sw.pipeline("p")
        def plan(plan, args, rc):
            for i in range(4):
                plan.job(f"j{i}", work)
    """)
    code, doc = proj.run_json("p", "--sw-parallel", "1")
    assert code == 0
    spans = sorted(n["output"] for n in doc["nodes"])
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end


def test_parallel_default_runs_independent_jobs_concurrently(proj: Proj) -> None:
    proj.pipeline("""
        import time

        def work(ctx):
            start = time.time()
            time.sleep(0.3)
            return [start, time.time()]

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("a", work)
            plan.job("b", work)
    """)
    code, doc = proj.run_json("p", "--sw-parallel", "2")
    assert code == 0
    (_s1, e1), (s2, _e2) = sorted(n["output"] for n in doc["nodes"])
    assert s2 < e1, "independent jobs did not overlap with --sw-parallel 2"


def test_plan_snapshot_is_saved(proj: Proj) -> None:
    proj.pipeline("""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            a = plan.job("a", "true").retry(3).timeout("1m")
            plan.job("b", "true").needs(a)
    """)
    code, doc = proj.run_json("p")
    assert code == 0
    res = proj.sw("runs", "get", "--run", doc["run"]["run_id"], "-o", "json")
    assert res.code == 0, res.err
    plan = json.loads(res.out)["plan"]
    jobs = {j["id"]: j for j in plan["jobs"]}
    assert jobs["a"]["retries"] == 3 and jobs["a"]["timeout_s"] == 60
    assert jobs["b"]["needs"] == ["a"]


def test_huge_unterminated_output_is_logged_in_pieces(proj: Proj) -> None:
    proj.pipeline("""
        import sys

        def spew(ctx):
            sys.stdout.write("x" * (3 * 1024 * 1024))  # 3 MiB and never a newline
            sys.stdout.flush()
            return len("done")

        @sw.pipeline("p")
        def plan(plan, args, rc):
            plan.job("spew", spew)
    """)
    code, doc = proj.run_json("p")
    assert code == 0, doc
    assert proj.nodes(doc)["spew"]["output"] == 4
    res = proj.sw("runs", "logs", "--run", doc["run"]["run_id"], "-o", "json")
    lines = [json.loads(line)["msg"] for line in res.out.splitlines()]
    assert sum(len(m) for m in lines) == 3 * 1024 * 1024
    assert max(len(m) for m in lines) <= 1024 * 1024
