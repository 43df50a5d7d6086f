"""DAGs of thousands of jobs through the real CLI: a failure at the head of a long chain
cancels everything below it (no recursion limit), and a wide fan-out runs to the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.conftest import Cli, ProjectFiles

JOBS = 5000
# Thousands of forked job processes: on a loaded machine this outlasts the default limit.
pytestmark = pytest.mark.timeout(900)

PIPELINES = f"""
import sparkwing as sw


def noop(ctx):
    return None


@sw.pipeline("chain")
def chain(plan, args, rc):
    prev = plan.job("j0", "exit 1")
    for i in range(1, {JOBS}):
        prev = plan.job(f"j{{i}}", None, needs=[prev])


@sw.pipeline("fan")
def fan(plan, args, rc):
    root = plan.job("root", noop)
    leaves = [plan.job(f"f{{i}}", None, needs=[root]) for i in range({JOBS})]
    plan.job("sink", noop, needs=leaves)
"""


def run(project: ProjectFiles, cli: Cli, pipeline: str) -> tuple[int, str, dict[str, Any]]:
    """Exit code, run status, and the run's nodes as the state surface recorded them (the
    JSON document lists the nodes read back from the store after the run)."""
    project.write("pipes.py", PIPELINES)
    project.yaml("")
    result = cli("run", pipeline, "-o", "json", "--sw-parallel", "8", timeout=900)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert result.stdout.strip(), result.stderr
    doc = result.json()
    return result.code, doc["run"]["status"], {n["node_id"]: n for n in doc["nodes"]}


def test_a_failure_at_the_head_of_a_5000_job_chain_cancels_the_rest(
    project: ProjectFiles, cli: Cli
) -> None:
    code, status, nodes = run(project, cli, "chain")
    assert code == 1
    assert status == "failed"
    assert nodes.pop("j0")["status"] == "failed"
    assert len(nodes) == JOBS - 1
    assert {n["status"] for n in nodes.values()} == {"cancelled"}
    assert all(n["reason"].startswith("upstream-failed: ") for n in nodes.values())
    assert nodes["j1"]["reason"] == "upstream-failed: j0 failed"


def test_a_5000_job_fan_out_succeeds(project: ProjectFiles, cli: Cli) -> None:
    code, status, nodes = run(project, cli, "fan")
    assert code == 0
    assert status == "success"
    assert len(nodes) == JOBS + 2
    assert {n["status"] for n in nodes.values()} == {"success"}
