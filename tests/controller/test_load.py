"""Load on loopback: 20 `sparkwing run` processes at once, each a 10-job pipeline writing
logs and an artifact per job, all through one controller; afterwards every one of the 200
jobs' records, logs and artifacts is there, complete and intact."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sparkwing.surfaces.cache.content import fetch_blob_bytes, load_manifest
from sparkwing.surfaces.logs.base import LogStore
from sparkwing.surfaces.open import open_cache, open_logs, open_state
from tests.conftest import sparkwing_command
from tests.controller.harness import Controller, controller, local_profile

if TYPE_CHECKING:
    from tests.conftest import Cli

__all__ = ["controller"]

RUNNERS, JOBS, LINES = 20, 10, 25

PIPELINE = f"""
from pathlib import Path

import sparkwing as sw


def work(ctx):
    me = ctx.job
    for i in range({LINES}):
        print(f"{{me}} line {{i}} of {{ctx.run_id}}")
    Path("out").mkdir(exist_ok=True)
    Path(f"out/{{me}}.txt").write_text(f"artifact of {{me}} in {{ctx.run_id}}\\n" * 100)
    return {{"job": me}}


@sw.pipeline("load")
def load(plan, args, rc):
    previous = None
    for n in range({JOBS}):
        job = plan.job(f"j{{n}}", work).outputs(f"out/j{{n}}.txt")
        if n % 3 == 2 and previous is not None:
            job.needs(previous)
        previous = job
"""


def _log_of(logs: LogStore, run_id: str, node: str) -> list[str]:
    return [r.msg for r in logs.read(run_id, node)]


@pytest.mark.slow
def test_twenty_runners_through_one_controller(
    controller: Controller, tmp_path: Path, cli: Cli
) -> None:
    controller.reset(local_profile(tmp_path / "controller"))
    token = controller.token()
    procs = []
    for i in range(RUNNERS):
        root = tmp_path / f"project-{i}"
        (root / ".sparkwing").mkdir(parents=True)
        (root / ".sparkwing" / "load.py").write_text(PIPELINE)
        (root / ".sparkwing" / "sparkwing.yaml").write_text(
            f"profiles:\n  remote:\n    controller: {{url: {controller.url}, token: {token}}}\n"
        )
        procs.append(
            subprocess.Popen(
                [*sparkwing_command(), "run", "load", "--profile", "remote", "--sw-parallel", "3"],
                cwd=root,
                env=cli.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert [code for code, _, _ in outcomes] == [0] * RUNNERS, outcomes

    spec = controller.spec(token)
    state, logs, cache = open_state(spec), open_logs(spec), open_cache(spec)
    runs = state.list_runs(limit=100).runs
    assert len(runs) == RUNNERS
    assert {r.status for r in runs} == {"success"}
    jobs = 0
    for run in runs:
        nodes = state.list_nodes(run.run_id)
        assert [n.node_id for n in nodes] == [f"j{n}" for n in range(JOBS)]
        kinds = [e.kind for e in state.list_events(run.run_id)]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        for node in nodes:
            assert node.status == "success" and node.output == {"job": node.node_id}
            expected = [f"{node.node_id} line {i} of {run.run_id}" for i in range(LINES)]
            assert _log_of(logs, run.run_id, node.node_id) == expected
            assert node.artifacts, node
            manifest = load_manifest(cache, node.artifacts)
            assert manifest is not None and [e.path for e in manifest] == [
                f"out/{node.node_id}.txt"
            ]
            data = fetch_blob_bytes(cache, manifest[0].digest)
            body = f"artifact of {node.node_id} in {run.run_id}\n" * 100
            assert data == body.encode()
            assert manifest[0].digest == hashlib.sha256(body.encode()).hexdigest()
            jobs += 1
    assert jobs == RUNNERS * JOBS
