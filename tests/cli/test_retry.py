"""`sparkwing runs retry`: the same pipeline again, with the same inputs, as a new run."""

from __future__ import annotations

import json

from tests.engine.swtest import Proj

PIPE = """
from dataclasses import dataclass, field

@dataclass
class Args:
    env: str = "dev"
    count: int = 1
    dry_run: bool = True
    tags: list[str] = field(default_factory=list)

@sw.pipeline("p")
class P:
    def plan(self, plan, args: Args, rc):
        plan.job("show", lambda ctx: [ctx.args.env, ctx.args.count, ctx.args.dry_run,
                                       ctx.args.tags])
"""


def test_retry_runs_again_with_the_recorded_inputs(proj: Proj) -> None:
    proj.pipeline(PIPE)
    code, first = proj.run_json(
        "p", "--env", "prod", "--count", "3", "--no-dry-run", "--tags", "a", "--tags", "b"
    )
    assert code == 0
    res = proj.sw("runs", "retry", "--run", first["run"]["run_id"], "-o", "json")
    assert res.code == 0, res.err
    second = json.loads(res.out.strip().splitlines()[-1])
    assert second["run"]["run_id"] != first["run"]["run_id"]
    assert second["run"]["trigger"] == "retry"
    assert second["run"]["args"] == first["run"]["args"]
    assert second["nodes"][0]["output"] == ["prod", 3, False, ["a", "b"]]


def test_retry_of_an_unknown_run_is_a_clear_error(proj: Proj) -> None:
    proj.pipeline(PIPE)
    assert proj.run_json("p")[0] == 0
    res = proj.sw("runs", "retry", "--run", "run-20200101-000000-zzzz")
    assert res.code == 2
    assert res.err.startswith('error: run "run-20200101-000000-zzzz" not found')
