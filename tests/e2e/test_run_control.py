"""Run control through the real CLI on every state backend that keeps history (sqlite,
postgres, s3, a controller): `runs retry --failed` runs again only what did not succeed,
`--sw-only` and `--sw-start-at` run part of a pipeline, `--sw-dry-run` runs nothing.
Which jobs executed is read from marker files the job processes themselves write."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_gates import BACKENDS, use_team_profile
from tests.engine.swtest import Proj

# a -> b -> e -> f, a -> c -> d -> f; c fails until the marker folder holds "fixed"; b
# stores an artifact f consumes; e is memoized.
PIPE = """
import os
import pathlib

def mark(ctx):
    marks = pathlib.Path(os.environ["MARKS"])
    marks.mkdir(exist_ok=True)
    with open(marks / ctx.job, "a") as fh:
        fh.write(ctx.run_id + "\\n")

def plain(ctx):
    mark(ctx)
    return ctx.job + "-output"

def breaks(ctx):
    mark(ctx)
    if not (pathlib.Path(os.environ["MARKS"]) / "fixed").exists():
        raise RuntimeError("c is broken until fixed")
    return "c-output"

def build(ctx):
    mark(ctx)
    (ctx.workdir / "dist").mkdir(exist_ok=True)
    (ctx.workdir / "dist" / "app.txt").write_text("built by " + ctx.run_id)
    return "b-output"

def last(ctx):
    mark(ctx)
    artifact = (ctx.workdir / "dist" / "app.txt").read_text()
    return {"d": ctx.output("d"), "e": ctx.output("e"), "artifact": artifact}

@sw.pipeline("six")
def six(plan, args, rc):
    a = plan.job("a", plain)
    b = plan.job("b", build).needs(a).outputs("dist/app.txt")
    c = plan.job("c", breaks).needs(a)
    d = plan.job("d", plain).needs(c)
    e = plan.job("e", plain).needs(b).memoize(lambda ctx: "e-v1")
    plan.job("f", last).needs(d, e).consumes(b)
"""

JOBS = ["a", "b", "c", "d", "e", "f"]


@pytest.fixture(params=BACKENDS)
def team(request: pytest.FixtureRequest, proj: Proj, tmp_path: Path) -> Iterator[Proj]:
    """The project on a profile whose state, cache and logs live on ``request.param``."""
    stack = contextlib.ExitStack()
    use_team_profile(request.param, proj, tmp_path, stack)
    proj.env["MARKS"] = str(tmp_path / "marks")
    proj.pipeline(PIPE)
    with stack:
        yield proj


def _marks(proj: Proj) -> dict[str, list[str]]:
    """The run ids each job's process wrote, by job."""
    folder = Path(proj.env["MARKS"])
    return {job: (folder / job).read_text().split() for job in JOBS if (folder / job).exists()}


def _ran_in(proj: Proj, run_id: str) -> list[str]:
    return sorted(job for job, runs in _marks(proj).items() if run_id in runs)


def _fix(proj: Proj) -> None:
    folder = Path(proj.env["MARKS"])
    folder.mkdir(exist_ok=True)
    (folder / "fixed").write_text("")


def _json_run(proj: Proj, *args: str) -> tuple[int, dict[str, Any]]:
    res = proj.sw(*args, "-o", "json")
    assert res.out.strip(), res.err
    return res.code, json.loads(res.out.strip().splitlines()[-1])


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in doc["nodes"]}


def _run_ids(proj: Proj) -> list[str]:
    res = proj.sw("runs", "list", "--limit", "100", "-o", "json")
    assert res.code == 0, res.err
    return [json.loads(line)["run_id"] for line in res.out.splitlines() if line.strip()]


def test_retry_failed_runs_only_the_failed_job_and_its_cancelled_dependants(team: Proj) -> None:
    code, first = _json_run(team, "run", "six")
    assert code == 1
    first_id = first["run"]["run_id"]
    assert _statuses(first) == {
        "a": "success",
        "b": "success",
        "c": "failed",
        "d": "cancelled",
        "e": "success",
        "f": "cancelled",
    }
    assert _ran_in(team, first_id) == ["a", "b", "c", "e"]

    # Still broken: only c runs again, and fails again.
    code, second = _json_run(team, "runs", "retry", "--failed", "--run", first_id)
    assert code == 1
    second_id = second["run"]["run_id"]
    assert _ran_in(team, second_id) == ["c"]
    assert _statuses(second) == {
        "a": "reused",
        "b": "reused",
        "c": "failed",
        "d": "cancelled",
        "e": "reused",
        "f": "cancelled",
    }

    # Fixed, and the workspace lost b's artifact: the retry of the retry runs c, d and f;
    # f gets e's output and b's artifact from the first run.
    _fix(team)
    (team.root / "dist" / "app.txt").unlink()
    code, third = _json_run(team, "runs", "retry", "--failed")
    assert code == 0, third["run"]["reason"]
    third_id = third["run"]["run_id"]
    assert _ran_in(team, third_id) == ["c", "d", "f"]
    nodes = team.nodes(third)
    assert {j for j, n in nodes.items() if n["status"] == "reused"} == {"a", "b", "e"}
    assert nodes["b"]["extra"]["reused_from"] == second_id
    assert nodes["f"]["output"] == {
        "d": "d-output",
        "e": "e-output",
        "artifact": f"built by {first_id}",
    }
    res = team.sw("runs", "retry", "--failed")
    assert res.code == 2
    assert res.err.strip() == (
        f"error: run {third_id} has no failed or cancelled job to run again "
        "(without --failed, `runs retry` runs everything again)"
    )
    assert third["run"]["trigger"] == "retry"
    assert third["run"]["extra"]["retry_of"] == second_id

    # Linked both ways.
    res = team.sw("runs", "get", "--run", second_id, "-o", "json")
    assert res.code == 0, res.err
    second_record = json.loads(res.out)["run"]
    assert second_record["extra"]["retry_of"] == first_id
    assert second_record["extra"]["retried_by"] == [third_id]

    # `runs status` and the JUnit report show the reused jobs as such, and as passed.
    res = team.sw("runs", "status", "--run", third_id)
    assert res.code == 0, res.err
    assert [line.split()[1] for line in res.out.splitlines() if line.startswith("b ")] == ["reused"]
    res = team.sw("runs", "report", "--run", third_id, "--format", "junit")
    assert res.code == 0, res.err
    assert "<failure" not in res.out and "<skipped" not in res.out


def test_only_runs_the_jobs_and_what_they_need(team: Proj) -> None:
    _fix(team)
    before = _run_ids(team)
    res = team.sw("run", "six", "--sw-only", "d,nope")
    assert res.code == 2
    assert res.err.strip() == (
        'error: --sw-only: pipeline "six" has no job "nope" (jobs: a, b, c, d, e, f)'
    )
    assert _run_ids(team) == before

    code, doc = _json_run(team, "run", "six", "--sw-only", "d")
    assert code == 0, doc["run"]["reason"]
    run_id = doc["run"]["run_id"]
    assert _ran_in(team, run_id) == ["a", "c", "d"]
    assert list(_statuses(doc)) == ["a", "c", "d"]
    assert doc["run"]["extra"]["selection"] == {"only": ["d"]}

    code, doc = _json_run(team, "run", "six", "--sw-only", "b", "--sw-only", "c")
    assert code == 0
    assert _ran_in(team, doc["run"]["run_id"]) == ["a", "b", "c"]

    # A retry of a partial run keeps to its jobs: c broke, only c runs again.
    (Path(team.env["MARKS"]) / "fixed").unlink()
    assert _json_run(team, "run", "six", "--sw-only", "d")[0] == 1
    _fix(team)
    code, doc = _json_run(team, "runs", "retry", "--failed")
    assert code == 0
    assert _statuses(doc) == {"a": "reused", "c": "success", "d": "success"}


def test_start_at_takes_upstream_results_from_the_latest_successful_run(team: Proj) -> None:
    res = team.sw("run", "six", "--sw-start-at", "d")
    assert res.code == 2
    lines = res.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith('error: --sw-start-at d: no successful run of pipeline "six"')
    assert _run_ids(team) == [] and _marks(team) == {}

    _fix(team)
    code, full = _json_run(team, "run", "six")
    assert code == 0
    full_id = full["run"]["run_id"]
    # A failed run after it is not where outcomes come from.
    (Path(team.env["MARKS"]) / "fixed").unlink()
    assert _json_run(team, "run", "six", "--sw-only", "c")[0] == 1
    _fix(team)

    (team.root / "dist" / "app.txt").unlink()
    code, doc = _json_run(team, "run", "six", "--sw-start-at", "d")
    assert code == 0, doc["run"]["reason"]
    run_id = doc["run"]["run_id"]
    assert _ran_in(team, run_id) == ["d", "f"]
    nodes = team.nodes(doc)
    assert {j: n["status"] for j, n in nodes.items()} == {
        "a": "reused",
        "b": "reused",
        "c": "reused",
        "d": "success",
        "e": "reused",
        "f": "success",
    }
    assert nodes["c"]["extra"]["reused_from"] == full_id
    assert nodes["f"]["output"]["artifact"] == f"built by {full_id}"
    assert doc["run"]["extra"]["selection"] == {"start_at": "d", "from": full_id}

    res = team.sw("run", "six", "--sw-start-at", "zz")
    assert res.code == 2
    assert 'has no job "zz" (jobs: a, b, c, d, e, f)' in res.err


def test_dry_run_shows_the_plan_and_runs_nothing(team: Proj) -> None:
    _fix(team)
    res = team.sw("run", "six", "--sw-dry-run", "-o", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["levels"] == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    jobs = {j["id"]: j for j in doc["jobs"]}
    assert jobs["e"]["memo"]["hit"] is False
    assert jobs["f"]["consumes"] == [{"job": "b", "from": "this run", "artifacts": None}]
    assert jobs["b"]["outputs"] == ["dist/app.txt"]
    assert _run_ids(team) == [] and _marks(team) == {}

    code, full = _json_run(team, "run", "six")
    assert code == 0
    full_id = full["run"]["run_id"]
    res = team.sw("run", "six", "--sw-dry-run", "--sw-start-at", "e", "-o", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    jobs = {j["id"]: j for j in doc["jobs"]}
    assert doc["reused_from"] == full_id
    assert {j: jobs[j]["action"] for j in jobs} == {
        "a": "reuse",
        "b": "reuse",
        "c": "reuse",
        "d": "reuse",
        "e": "run",
        "f": "run",
    }
    assert jobs["e"]["memo"]["hit"] is True  # the full run stored it
    assert jobs["f"]["consumes"][0]["from"] == full_id

    res = team.sw("run", "six", "--sw-dry-run", "--sw-only", "c")
    assert res.code == 0, res.err
    assert res.out.splitlines()[0] == "dry run of six: nothing runs, nothing is recorded"
    assert "not in this run: b, d, e, f" in res.out
    res = team.sw("run", "six", "--sw-dry-run", "--sw-start-at", "nope", "-o", "json")
    assert res.code == 2 and res.out == ""
    error = json.loads(res.err)
    assert error["exit"] == 2 and error["error"].startswith('--sw-start-at: pipeline "six" has no')
    assert _run_ids(team) == [full_id]
    assert _ran_in(team, full_id) == JOBS and len(_marks(team)["a"]) == 1
