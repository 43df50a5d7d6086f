"""No run left half-finished, driven through the real CLI: a pipeline module that ends the
runner at import, an engine error mid-run, `doctor` repairing unfinished jobs, and what a
job starts in a new session ending with it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

from sparkwing.status import FINAL_NODE_STATUSES, FINAL_RUN_STATUSES
from tests.cli.test_doctor_orphans import _pids
from tests.engine.swtest import Proj

OK_PIPE = """
@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "echo hello")
"""


def _runs(proj: Proj) -> list[dict[str, object]]:
    res = proj.sw("runs", "list", "-o", "json")
    assert res.code == 0, res.err
    return [json.loads(line) for line in res.out.splitlines() if line.strip()]


def _one_line_error(proj: Proj) -> str:
    """`sparkwing run p` failing as a usage error: exit 2, one line, no traceback."""
    res = proj.sw("run", "p")
    assert res.code == 2, res.out + res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.err, res.err
    return lines[0]


def test_os_exit_0_at_import_is_an_error_naming_the_module(proj: Proj) -> None:
    proj.pipeline("import os\nos._exit(0)\n" + OK_PIPE)
    line = _one_line_error(proj)
    assert "pipes.py" in line and "imported" in line, line
    # No run was recorded, so none is named and none is left running.
    assert "run-" not in line, line
    assert all(r["status"] in FINAL_RUN_STATUSES for r in _runs(proj))


def test_os_exit_in_plan_is_an_error_naming_the_plan(proj: Proj) -> None:
    proj.pipeline("""
        import os

        @sw.pipeline("p")
        def plan(plan, args, rc):
            os._exit(0)
    """)
    assert 'plan() of pipeline "p"' in _one_line_error(proj)


def test_sys_exit_at_import_names_the_module_and_no_phantom_run(proj: Proj) -> None:
    proj.pipeline("import sys\nsys.exit(3)\n" + OK_PIPE)
    line = _one_line_error(proj)
    assert "pipes.py" in line and "sys.exit(3)" in line, line
    assert "run-" not in line and "runner process" not in line, line
    assert _runs(proj) == []


def _unfinished(proj: Proj) -> list[tuple[str, str, str]]:
    with proj.db() as db:
        runs = db.execute("SELECT run_id, status FROM runs").fetchall()
        nodes = db.execute("SELECT run_id, node_id, status FROM nodes").fetchall()
    left = [(r, "-", s) for r, s in runs if s not in FINAL_RUN_STATUSES]
    left += [(r, n, s) for r, n, s in nodes if s not in FINAL_NODE_STATUSES]
    return left


def test_an_engine_error_writing_logs_leaves_no_job_unfinished(proj: Proj) -> None:
    # The logs folder becomes a regular file once the first job has run: every later log
    # write fails with an OSError (root ignores permissions, not this).
    logs = proj.swhome / "logs"
    proj.pipeline(
        f"""
        import os, shutil, time

        def spoil(ctx):
            print("spoiling the logs")
            shutil.rmtree({str(logs)!r}, ignore_errors=True)
            open({str(logs)!r}, "w").close()

        @sw.pipeline("p")
        def plan(plan, args, rc):
            s = plan.job("spoil", spoil)
            plan.job("after", "echo after").needs(s)
            plan.job("slow", "sleep 2; echo slow")
        """
    )
    res = proj.sw("run", "p")
    assert res.code != 0, res.out + res.err
    assert "Traceback" not in res.err
    assert _unfinished(proj) == []
    (run,) = _runs(proj)
    shown = proj.sw("runs", "status", "--run", str(run["run_id"]), "-o", "json")
    doc = json.loads(shown.out)
    assert doc["run"]["status"] == "failed"
    assert "engine error" in doc["run"]["reason"], doc["run"]
    assert doc["nodes"], doc
    for node in doc["nodes"]:
        assert node["status"] in FINAL_NODE_STATUSES, node
        if node["status"] == "cancelled":
            assert "engine error" in (node["reason"] or ""), node


def _set_nodes(db: sqlite3.Connection, status: str) -> None:
    """Put every job back in ``status``, as an engine that died mid-write would leave it."""
    db.execute(
        "UPDATE nodes SET status = ?, data = json_set(data, '$.status', ?, '$.finished_at', NULL)",
        (status, status),
    )


def test_doctor_cancels_the_unfinished_jobs_of_a_finished_run(proj: Proj) -> None:
    proj.pipeline(OK_PIPE)
    code, doc = proj.run_json("p")
    assert code == 0, doc
    run_id = doc["run"]["run_id"]
    # As an engine that died between writing its run and its jobs would leave them.
    with proj.db() as db:
        _set_nodes(db, "running")
    res = proj.sw("doctor", "-o", "json")
    assert res.code == 0, res.out + res.err
    report = json.loads(res.out)
    fixed = [f for f in report["fixed"] if f["run_id"] == run_id]
    assert fixed and fixed[0]["cancelled_jobs"] == 1, report
    assert _unfinished(proj) == []
    again = json.loads(proj.sw("doctor", "-o", "json").out)
    assert again["fixed"] == []


def test_doctor_reports_the_jobs_of_a_dead_run(proj: Proj) -> None:
    proj.pipeline(OK_PIPE)
    code, doc = proj.run_json("p")
    assert code == 0
    with proj.db() as db:
        # A runner pid that is certainly dead on this host.
        db.execute(
            "UPDATE runs SET status = 'running', finished_at = NULL, data = json_set(data,"
            " '$.status', 'running', '$.pid', 999999999, '$.host', ?)",
            (os.uname().nodename,),
        )
        _set_nodes(db, "pending")
    res = proj.sw("doctor")
    assert res.code == 0, res.out + res.err
    assert f"fixed  {doc['run']['run_id']}" in res.out and "1 job(s) cancelled" in res.out
    assert _unfinished(proj) == []


MARK = "sleep 1000.37"


def _marked() -> list[int]:
    return _pids(MARK)


def test_a_process_a_job_starts_in_a_new_session_ends_with_it(proj: Proj) -> None:
    proj.pipeline(f"""
        @sw.pipeline("p")
        def plan(plan, args, rc):
            a = plan.job("spawn", "setsid {MARK} > /dev/null 2>&1 < /dev/null & echo started")
            plan.job("next", "sleep 0.5; echo next").needs(a)
    """)
    try:
        res = proj.sw("run", "p")
        assert res.code == 0, res.out + res.err
        assert _marked() == []
    finally:
        for pid in _marked():
            os.kill(pid, signal.SIGKILL)


def test_leftovers_end_when_their_job_ends_not_at_run_end(proj: Proj, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    proj.pipeline(f"""
        import subprocess, time

        def watch(ctx):
            # Runs after "spawn": its leftover must already be gone.
            time.sleep(0.3)
            out = subprocess.run(["pgrep", "-f", "{MARK}"], capture_output=True, text=True)
            open({str(seen)!r}, "w").write(out.stdout)

        @sw.pipeline("p")
        def plan(plan, args, rc):
            a = plan.job("spawn", "setsid {MARK} > /dev/null 2>&1 < /dev/null &")
            plan.job("watch", watch).needs(a)
    """)
    try:
        res = proj.sw("run", "p")
        assert res.code == 0, res.out + res.err
        assert seen.read_text().strip() == ""
    finally:
        for pid in _marked():
            os.kill(pid, signal.SIGKILL)
