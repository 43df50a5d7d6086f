"""`.on_failure(fn)` and `plan.finally_(id, fn)` through the real CLI: which of them run on
success, on failure and when the run is cancelled (Ctrl-C to the run's process group,
`runs cancel`), what they see of the failure, and how their own outcome counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.engine.swtest import Proj

PIPE = """
import json
import os
import pathlib

def note(ctx):
    failure = ctx.failure
    seen = None if failure is None else {
        "job": failure.job, "status": failure.status, "error": failure.error,
        "attempts": failure.attempts,
    }
    marks = pathlib.Path(os.environ["MARKS"])
    marks.mkdir(exist_ok=True)
    (marks / ctx.job).write_text(json.dumps(seen))
    if os.environ.get("BREAK") == ctx.job:
        raise RuntimeError(ctx.job + " broke too")

def work(ctx):
    if os.environ.get("BREAK") == "build":
        raise RuntimeError("build is broken")
    if os.environ.get("SLOW"):
        print("working", flush=True)
        import time
        time.sleep(60)
    return "built"

@sw.pipeline("p")
def plan(plan, args, rc):
    build = plan.job("build", work).retry(1, backoff="10ms").on_failure(note)
    plan.job("ship", "echo shipping").needs(build)
    plan.finally_("cleanup", note)
"""


@pytest.fixture
def hproj(proj: Proj, tmp_path: Path) -> Proj:
    proj.env["MARKS"] = str(tmp_path / "marks")
    proj.pipeline(PIPE)
    return proj


def _seen(proj: Proj) -> dict[str, Any]:
    """What each handler recorded of ``ctx.failure``, by job (absent: it did not run)."""
    folder = Path(proj.env["MARKS"])
    if not folder.exists():
        return {}
    return {path.name: json.loads(path.read_text()) for path in folder.iterdir()}


def _statuses(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {n["node_id"]: (n["status"], n["extra"].get("role")) for n in doc["nodes"]}


def test_on_success_the_handler_is_skipped_and_finally_runs(hproj: Proj) -> None:
    code, doc = hproj.run_json("p")
    assert code == 0, doc["run"]["reason"]
    assert _statuses(doc) == {
        "build": ("success", None),
        "build.on_failure": ("skipped", "on_failure"),
        "ship": ("success", None),
        "cleanup": ("success", "finally"),
    }
    assert _seen(hproj) == {"cleanup": None}
    # Shown as such by `runs status`.
    res = hproj.sw("runs", "status")
    assert res.code == 0, res.err
    assert "build.on_failure [on_failure]  skipped" in res.out
    assert "cleanup [finally]" in res.out


def test_on_failure_the_handler_sees_the_failure_after_the_retries(hproj: Proj) -> None:
    hproj.env["BREAK"] = "build"
    code, doc = hproj.run_json("p")
    assert code == 1
    assert doc["run"]["reason"] == "failed jobs: build"
    assert _statuses(doc) == {
        "build": ("failed", None),
        "build.on_failure": ("success", "on_failure"),
        "ship": ("cancelled", None),
        "cleanup": ("success", "finally"),
    }
    failure = {
        "job": "build",
        "status": "failed",
        "error": "RuntimeError: build is broken",
        "attempts": 2,
    }
    assert _seen(hproj) == {"build.on_failure": failure, "cleanup": failure}


def test_a_failing_handler_is_reported_without_hiding_the_failure(hproj: Proj) -> None:
    always_breaks = PIPE.replace('os.environ.get("BREAK") == "build"', "True")
    hproj.env["BREAK"] = "build.on_failure"
    hproj.pipeline(always_breaks)
    code, doc = hproj.run_json("p")
    assert code == 1
    assert doc["run"]["reason"] == (
        "failed jobs: build (failure handlers that failed too: build.on_failure)"
    )
    nodes = hproj.nodes(doc)
    assert nodes["build.on_failure"]["status"] == "failed"
    assert nodes["build.on_failure"]["error"] == "RuntimeError: build.on_failure broke too"
    assert nodes["cleanup"]["status"] == "success"
    # An optional job's failure does not fail the run, and its handler's failure neither.
    hproj.pipeline(always_breaks.replace('"build", work)', '"build", work).optional()'))
    code, doc = hproj.run_json("p")
    assert code == 0
    assert _statuses(doc)["build.on_failure"] == ("failed", "on_failure")


def test_a_failing_finally_job_fails_the_run(hproj: Proj) -> None:
    hproj.env["BREAK"] = "cleanup"
    code, doc = hproj.run_json("p")
    assert code == 1
    assert doc["run"]["reason"] == "failed jobs: cleanup"
    assert _statuses(doc)["ship"] == ("success", None)


def _wait_working(proj: Proj, proc: subprocess.Popen[str]) -> str:
    """The run id once its build job is running."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        res = proj.sw("runs", "status", "-o", "json")
        if res.code == 0:
            doc = json.loads(res.out)
            if any(n["status"] == "running" for n in doc["nodes"]):
                return str(doc["run"]["run_id"])
        time.sleep(0.1)
    raise AssertionError("the build job never started")


def _cancelled_run(proj: Proj, proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    res = proj.sw("runs", "status", "-o", "json")
    assert res.code == 0, res.err
    doc: dict[str, Any] = json.loads(res.out)
    assert doc["run"]["status"] == "cancelled"
    return doc


@pytest.mark.parametrize("how", ["ctrl-c", "runs-cancel"])
def test_a_cancelled_run_still_runs_its_finally_job(hproj: Proj, how: str) -> None:
    hproj.env["SLOW"] = "1"
    proc = hproj.popen("run", "p", "-o", "plain", start_new_session=True)
    run_id = _wait_working(hproj, proc)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
        cause = "interrupted by SIGINT"
    else:
        res = hproj.sw("runs", "cancel", "--run", run_id)
        assert res.code == 0, res.err
        cause = "interrupted by SIGTERM"
    doc = _cancelled_run(hproj, proc)
    assert _statuses(doc) == {
        "build": ("cancelled", None),
        "build.on_failure": ("cancelled", "on_failure"),
        "ship": ("cancelled", None),
        "cleanup": ("success", "finally"),
    }
    assert _seen(hproj) == {
        "cleanup": {"job": None, "status": "cancelled", "error": cause, "attempts": 0}
    }


def test_a_finally_job_of_a_cancelled_run_is_ended_after_its_grace_time(hproj: Proj) -> None:
    hproj.env["SLOW"] = "1"
    hproj.pipeline(
        PIPE.replace('plan.finally_("cleanup", note)', 'plan.finally_("cleanup", "sleep 47.5")')
    )
    proc = hproj.popen("run", "p", "-o", "plain", start_new_session=True)
    _wait_working(hproj, proc)
    os.killpg(proc.pid, signal.SIGINT)
    doc = _cancelled_run(hproj, proc)
    cleanup = hproj.nodes(doc)["cleanup"]
    assert cleanup["status"] == "cancelled"
    assert cleanup["reason"] == "interrupted by SIGINT; not finished within the 5.0s grace time"
    left = subprocess.run(["pgrep", "-f", "sleep 47.5"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            'plan.finally_("clean", "true")\n    plan.job("x", "true").needs("clean")',
            'job "x" needs "clean", a finally job, which nothing can need',
        ),
        (
            'plan.finally_("clean", "true").needs(plan.job("x", "true"))',
            'finally job "clean" cannot need other jobs (it runs after all of them)',
        ),
        (
            'plan.job("x", "true").on_failure("true").on_failure("false")',
            'job "x" already has an on_failure handler',
        ),
    ],
)
def test_misplaced_handlers_are_plan_errors(proj: Proj, code: str, message: str) -> None:
    proj.pipeline(f"""
@sw.pipeline("p")
def plan(plan, args, rc):
    {code}
""")
    res = proj.sw("run", "p")
    assert res.code == 2
    assert res.err.strip().splitlines() == [f"error: {message}"]
