"""An error in the engine itself (not in a job) still closes the run: failed, with the error
as its reason, and the CLI says so in one line per error, without a traceback."""

from __future__ import annotations

import json

from tests.engine.swtest import Proj

PIPE = """
@sw.pipeline("p")
def plan(plan, args, rc):
    plan.job("a", "true")
"""


def test_an_engine_error_finalizes_the_run_as_failed_with_the_reason(proj: Proj) -> None:
    proj.pipeline(PIPE)
    # The engine reads this when it builds the scheduler, after the run record exists.
    proj.env["SPARKWING_MEMO_LEASE_SECONDS"] = "soon"
    res = proj.sw("run", "p")
    assert res.code == 1, (res.out, res.err)
    assert "Traceback" not in res.err
    errors = [line for line in res.err.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith("error: internal error in the sparkwing runner: ValueError: ")
    assert (
        errors[-1].startswith("error: run ") and "runner process exited with code 70" in errors[-1]
    )

    status = proj.sw("runs", "status", "-o", "json")
    assert status.code == 0, status.err
    run = json.loads(status.out)["run"]
    assert run["status"] == "failed"
    assert run["reason"].startswith("engine error: ValueError: could not convert string to float")
    assert run["finished_at"]
